"""Start-up checks of ``strata.yaml``'s ``local`` section, before any model loads.

A missing base folder or adapter folder used to fail the whole base on the first request (the
``default`` alias then answered 503 forever). Now each problem is found at start and only the
targets it touches are marked unavailable: the base still loads without the missing adapter, the
log names file, key and reason, and ``/readyz`` lists the unavailable targets.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters_local.compose.spec import (
    CompositionError,
    Parallel,
    Routed,
    parallel_parts,
    parse_composition,
    to_value,
)
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.config import LocalBase

log = logging.getLogger("strata.config")

BUILTIN = "builtin"


class CompositionSection(BaseModel):
    """``compositions.<name>``: adapters of one local base served together under one name.

    ``mode: parallel`` averages the members' logits (``weights``, else equal; or gated per
    request by ``router``); ``mode: route`` serves each request with the member ``router``
    picks. See ``adapters_local.compose``."""

    model_config = ConfigDict(extra="forbid")
    base: str = BUILTIN
    mode: Literal["parallel", "route"]
    adapters: list[str] = Field(min_length=1)
    weights: list[float] | dict[str, float] | None = None
    router: dict[str, Any] | None = None


def add_compositions(
    config_path: Path | None, compositions: dict[str, CompositionSection], bases: dict[str, Any]
) -> dict[str, str]:
    """Each composition becomes an adapter of its base (``local:<base>@<name>``); returns
    composition name → that target, for the aliases the caller adds."""
    where = f"{config_path}: " if config_path else ""
    targets: dict[str, str] = {}
    for name, section in compositions.items():
        key = f"{where}compositions.{name}"
        base = bases.get(section.base)
        if base is None:
            raise ConfigError(
                f"{key}.base: local base {section.base!r} is not defined under local.bases "
                f"(known: {', '.join(sorted(bases))})"
            )
        if name in base.adapters:
            raise ConfigError(f"{key}: local.bases.{section.base}.adapters has a {name!r} too")
        try:
            value = to_value(section.mode, section.adapters, section.weights, section.router)
        except CompositionError as exc:
            raise ConfigError(f"{key}: {exc}") from None
        base.adapters[name] = value
        targets[name] = f"local:{section.base}@{name}"
    return targets


def adapter_names(adapter: str) -> tuple[str, ...]:
    """The adapters a target's ``@…`` names: one, or the members of an ad-hoc ``a+b``."""
    try:
        return parallel_parts(adapter) or (adapter,)
    except CompositionError as exc:
        raise ConfigError(str(exc)) from None


def check_local_bases(config_path: Path | None, bases: dict[str, LocalBase]) -> dict[str, str]:
    """Drop unusable adapters from ``bases`` (in place); returns target → reason for every
    local target that cannot be served. Reasons name the config key, never a file's contents."""
    where = f"{config_path}: " if config_path else ""
    unavailable: dict[str, str] = {}
    for name, base in bases.items():
        key = f"{where}local.bases.{name}"
        problem = _base_problem(base.path)
        if problem:
            unavailable[f"local:{name}"] = f"{key}.path: {problem}"
            continue
        usable: dict[str, str] = {}
        for adapter, value in base.adapters.items():
            problem = _adapter_problem(value, usable)
            if problem:
                unavailable[f"local:{name}@{adapter}"] = f"{key}.adapters.{adapter}: {problem}"
            else:
                usable[adapter] = value
        base.adapters = usable
    for target, reason in unavailable.items():
        log.warning("local target %s is unavailable: %s", target, reason)
    return unavailable


def _base_problem(path: str) -> str | None:
    if path == BUILTIN:
        return None
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return f"model folder {folder.resolve()} does not exist"
    if not (folder / "config.json").is_file():
        return f"{folder.resolve()} is not a Hugging Face model folder (no config.json)"
    return None


def _adapter_problem(value: str, usable: dict[str, str]) -> str | None:
    try:
        composition = parse_composition(value)
    except CompositionError as exc:
        return str(exc)
    if composition is not None:
        missing = [n for n in composition.members if n not in usable]
        if not missing and isinstance(composition, Parallel | Routed) and composition.router:
            from adapters_local.compose.routers import check_router

            try:  # numpy only: a router's mistakes are found before any model loads
                check_router(composition.router, composition.adapters)
            except CompositionError as exc:
                return str(exc)
    else:
        folder = Path(value).expanduser()
        if not folder.is_dir():
            return f"adapter folder {folder.resolve()} does not exist (train it first)"
        return None
    if missing:
        return f"composes adapters that are not available: {', '.join(missing)}"
    return None
