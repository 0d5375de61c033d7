"""Search spaces and objectives for hyper-parameter tuning, shared by SageMaker HPO and Optuna.

``--param r=4..64:int:log``, ``--param lr=1e-5..1e-3:log``, ``--param style=pfeiffer|houlsby``;
``--objective eval_loss:min``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from customize.errors import UsageError
from customize.sagemaker.hyperparams import TUNABLE, canonical

Kind = Literal["int", "float", "categorical"]
Strategy = Literal["bayesian", "random", "hyperband"]
STRATEGIES: tuple[Strategy, ...] = ("bayesian", "random", "hyperband")
OBJECTIVE_METRICS = ("eval_loss", "loss")

_RANGE = re.compile(
    r"^(?P<low>[^.:]+(?:\.\d+)?(?:e-?\d+)?)\.\.(?P<high>[^:]+?)(?P<flags>(?::\w+)*)$"
)


@dataclass(frozen=True)
class ParamRange:
    name: str
    kind: Kind
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Objective:
    metric: str
    minimize: bool


def parse_param(text: str, method: str) -> ParamRange:
    name, sep, spec = text.partition("=")
    name = canonical(name.strip())
    if not sep or not spec:
        raise UsageError(f"--param {text!r}: expected NAME=LOW..HIGH[:int][:log] or NAME=A|B|C")
    if name not in TUNABLE[method]:
        raise UsageError(
            f"--param {name!r} cannot be tuned for {method}; "
            f"choose from {', '.join(TUNABLE[method])}"
        )
    if "|" in spec or ".." not in spec:
        choices = tuple(c.strip() for c in spec.split("|") if c.strip())
        if len(choices) < 2:
            raise UsageError(f"--param {text!r}: a categorical range needs two or more values")
        return ParamRange(name, "categorical", choices=choices)
    match = _RANGE.match(spec)
    if match is None:
        raise UsageError(f"--param {text!r}: expected LOW..HIGH[:int][:log]")
    flags = {f for f in match["flags"].split(":") if f}
    unknown = flags - {"int", "log", "float"}
    if unknown:
        raise UsageError(f"--param {text!r}: unknown flag(s) {', '.join(sorted(unknown))}")
    try:
        low, high = float(match["low"]), float(match["high"])
    except ValueError:
        raise UsageError(f"--param {text!r}: LOW and HIGH must be numbers") from None
    if not low < high:
        raise UsageError(f"--param {text!r}: LOW must be below HIGH")
    if "log" in flags and low <= 0:
        raise UsageError(f"--param {text!r}: a log scale needs LOW above 0")
    kind: Kind = "int" if "int" in flags else "float"
    if kind == "int" and (low != int(low) or high != int(high)):
        raise UsageError(f"--param {text!r}: an int range needs whole-number bounds")
    return ParamRange(name, kind, low, high, "log" in flags)


def parse_params(texts: list[str], method: str) -> tuple[ParamRange, ...]:
    params = tuple(parse_param(text, method) for text in texts)
    if not params:
        raise UsageError("pass at least one --param to tune")
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise UsageError(f"--param names a hyper-parameter twice: {', '.join(names)}")
    return params


def parse_objective(text: str) -> Objective:
    metric, _, direction = text.partition(":")
    if metric not in OBJECTIVE_METRICS:
        raise UsageError(
            f"--objective metric {metric!r} is not one the trainer reports "
            f"({', '.join(OBJECTIVE_METRICS)})"
        )
    if direction not in ("min", "max"):
        raise UsageError(f"--objective {text!r}: expected METRIC:min or METRIC:max")
    return Objective(metric, direction == "min")
