"""Hyper-parameters given as ``name=value`` pairs, checked against the family's documented ranges.

Everything here runs before any AWS call, so a typo costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from customize.catalog import HyperParameterSpec, hyperparameter_tables
from customize.errors import UsageError


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise UsageError(f"hyper-parameter {item!r} must look like name=value")
        if name in values:
            raise UsageError(f"hyper-parameter {name!r} is given twice")
        values[name] = value
    return values


def _format_number(value: float) -> str:
    return f"{value:g}"


def _check_one(name: str, raw: str, spec: HyperParameterSpec) -> tuple[str | None, str | None]:
    """(normalized value, None) or (None, reason)."""
    if spec.type == "bool":
        lowered = raw.lower()
        if lowered not in ("true", "false"):
            return None, f"{name} must be true or false, got {raw!r}"
        return lowered, None
    try:
        number = float(raw)
    except ValueError:
        return None, f"{name} must be a number, got {raw!r}"
    if not math.isfinite(number):
        return None, f"{name} must be a finite number, got {raw!r}"
    if spec.type == "int" and not number.is_integer():
        return None, f"{name} must be a whole number, got {raw!r}"
    low, high = spec.min, spec.max
    if (low is not None and number < low) or (high is not None and number > high):
        lowest = _format_number(low) if low is not None else "-inf"
        highest = _format_number(high) if high is not None else "inf"
        bounds = f"{lowest}..{highest}"
        return None, f"{name}={raw} is outside the allowed range {bounds}"
    return (str(int(number)) if spec.type == "int" else raw), None


def validate_hyperparameters(family: str, values: dict[str, str]) -> dict[str, str]:
    """Checked values as the strings Bedrock expects; raises ``UsageError`` naming every problem."""
    tables = hyperparameter_tables()
    if family not in tables:
        raise UsageError(f"no hyper-parameter table for family {family!r}")
    specs = tables[family].parameters
    checked: dict[str, str] = {}
    problems: list[str] = []
    for name, raw in values.items():
        if name not in specs:
            problems.append(
                f"unknown hyper-parameter {name!r} for {family} (allowed: {', '.join(specs)})"
            )
            continue
        value, reason = _check_one(name, raw, specs[name])
        if reason is not None:
            spec = specs[name]
            doubt = f" (this rule is not confirmed: {spec.note})" if spec.unconfirmed else ""
            problems.append(reason + doubt)
        elif value is not None:
            checked[name] = value
    if problems:
        raise UsageError("; ".join(problems))
    return checked


def rft_hyperparameters(values: dict[str, str]) -> dict[str, int | float | str]:
    """``rftConfig.hyperParameters``: typed as botocore's RFTHyperParameters shape says; the
    ranges are checked with the rest of the request (customize.shapes)."""
    from customize.shapes import service_model

    members = service_model("bedrock").shape_for("RFTHyperParameters").members  # type: ignore[attr-defined]
    typed: dict[str, int | float | str] = {}
    problems: list[str] = []
    for name, raw in values.items():
        if name not in members:
            problems.append(f"unknown RFT hyper-parameter {name!r} (allowed: {', '.join(members)})")
            continue
        kind = members[name].type_name
        try:
            typed[name] = int(raw) if kind == "integer" else float(raw) if kind == "float" else raw
        except ValueError:
            problems.append(
                f"{name} must be {'a whole number' if kind == 'integer' else 'a number'}"
            )
    if problems:
        raise UsageError("; ".join(problems))
    return typed
