"""What an experiment is made from: ``POST /admin/experiments`` bodies and the strata.yaml
sections that seed the store, checked into ``ExperimentRecord``s. Pure: routability of a target
is asked of the caller's ``check_target`` (the gateway knows its local bases and variants).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.errors import InvalidRequest
from gateway.experiments import stats
from gateway.experiments.store import ExperimentRecord

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_METRIC = re.compile(r"^(feedback|grader:[A-Za-z0-9][A-Za-z0-9._-]{0,63})$")
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

CheckTarget = Callable[[str], None]  # raises InvalidRequest(param=…) when not routable


def parse_split(text: str) -> tuple[float, float]:
    """``"90/10"`` → (90, 10): control/candidate percentages that sum to 100."""
    parts = text.split("/")
    try:
        control, candidate = (float(p) for p in parts)
    except ValueError:
        raise InvalidRequest(
            f"split: expected CONTROL/CANDIDATE percentages such as 90/10, got {text!r}",
            param="split",
        ) from None
    if control < 0 or candidate < 0 or abs(control + candidate - 100) > 1e-9:
        raise InvalidRequest(
            f"split: {text!r} must be two numbers >= 0 that sum to 100", param="split"
        )
    return control, candidate


def parse_duration(text: str, param: str = "step_every") -> float:
    """``30m`` → 1800.0; ``ms``, ``s`` (the default), ``m`` and ``h`` are accepted."""
    m = _DURATION.match(text)
    if m is None or float(m.group(1)) <= 0:
        raise InvalidRequest(
            f"{param}: expected a duration such as 30s, 30m or 1h, got {text!r}", param=param
        )
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def parse_ramp(text: str | Sequence[float]) -> list[float]:
    """``"10,25,50,100"`` → the candidate's share at each step: increasing, ending at 100."""
    try:
        steps = (
            [float(p) for p in text.split(",") if p.strip()]
            if isinstance(text, str)
            else [float(p) for p in text]
        )
    except ValueError:
        raise InvalidRequest(
            f"ramp: expected percentages such as 10,25,50,100, got {text!r}", param="ramp"
        ) from None
    if not steps or steps[-1] != 100 or any(not 0 < s <= 100 for s in steps):
        raise InvalidRequest("ramp: percentages in (0, 100], ending at 100", param="ramp")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise InvalidRequest("ramp: each step must be above the one before", param="ramp")
    return steps


def parse_guardrails(texts: Sequence[str]) -> list[str]:
    for text in texts:
        try:
            stats.Guardrail.parse(text)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="guardrails") from None
    return [t.strip() for t in texts]


class CreateBody(BaseModel):
    """``POST /admin/experiments``: one control and one candidate target on an alias."""

    model_config = ConfigDict(extra="forbid")

    name: str
    alias: str = Field(min_length=1, max_length=200)
    control: str = Field(min_length=1, max_length=2000)
    candidate: str = Field(min_length=1, max_length=2000)
    split: str = "90/10"
    sticky_by: Literal["key", "user", "request"] = "key"
    metric: str = "feedback"
    guardrails: list[str] = Field(default_factory=list, max_length=20)
    min_samples: int = Field(default=100, ge=2, le=10_000_000)
    alpha: float = Field(default=stats.DEFAULT_ALPHA, gt=0, lt=0.5)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "letters, digits, '.', '_' and '-' (first a letter or digit), at most 64"
            )
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if not _METRIC.match(value):
            raise ValueError("feedback or grader:NAME")
        return value


def record_from(body: CreateBody, check_target: CheckTarget, actor: str) -> ExperimentRecord:
    """The new experiment; InvalidRequest naming the field for an unroutable target, a split
    that does not sum to 100 or a guardrail that does not parse."""
    for param, target in (("control", body.control), ("candidate", body.candidate)):
        try:
            check_target(target)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{param}: {exc.message}", param=param) from None
    if body.control == body.candidate:
        raise InvalidRequest("candidate: must differ from control", param="candidate")
    control, candidate = parse_split(body.split)
    split = {"control": control, "candidate": candidate}
    return ExperimentRecord(
        name=body.name,
        alias=body.alias,
        arms={"control": [body.control], "candidate": [body.candidate]},
        control="control",
        candidate="candidate",
        split=split,
        weights=dict(split),
        sticky_by=body.sticky_by,
        salt=body.name,  # a new experiment reshuffles units, on purpose
        metric=body.metric,
        guardrails=parse_guardrails(body.guardrails),
        min_samples=body.min_samples,
        alpha=body.alpha,
        created_by=actor,
    )


def seeded_record(
    alias: str,
    sticky_by: str,
    salt: str,
    chains: dict[str, list[str]],
    weights: dict[str, float],
) -> ExperimentRecord:
    """A strata.yaml experiment, named after its alias. The control is the arm named
    ``control`` (else the first); the candidate the first other arm."""
    names = list(chains)
    control = "control" if "control" in names else names[0]
    others = [n for n in names if n != control]
    section = {"sticky_by": sticky_by, "salt": salt, "arms": chains, "weights": weights}
    digest = hashlib.sha256(json.dumps(section, sort_keys=True).encode()).hexdigest()[:16]
    return ExperimentRecord(
        name=alias,
        alias=alias,
        arms=chains,
        control=control,
        candidate=others[0] if others else control,
        split=dict(weights),
        weights=dict(weights),
        sticky_by=sticky_by,
        salt=salt,
        source="config",
        seed_hash=digest,
        created_by="config",
    )
