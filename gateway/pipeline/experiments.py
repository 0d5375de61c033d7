"""Sticky weighted experiments: which arm of an alias's experiment a unit (key, user, request)
gets, by weighted rendezvous hashing.

Each arm scores a unit ``-ln(u) / weight`` with ``u`` a uniform number hashed from (alias, salt,
arm, unit); the lowest score wins. That gives each arm exactly its weight's share, keeps a unit
on its arm while weights stay put, and, when weights change, moves units only towards arms
whose weight grew (an arm that shrank loses units, none arrive at it): consistent bucketing, no
re-hashing of everyone. No table is kept, so every replica agrees without sharing state beyond
the weights. Changing ``salt`` (a new experiment revision) reshuffles everyone, on purpose.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from gateway.errors import InvalidRequest
from gateway.targets import Target

StickyBy = Literal["key", "user", "request"]
_SCALE = float(2**64)


@dataclass(frozen=True)
class Arm:
    name: str
    targets: tuple[Target, ...]


def unit_draw(alias: str, salt: str, arm: str, unit: str) -> float:
    """A number in (0, 1), uniform over units, fixed for (alias, salt, arm, unit)."""
    digest = hashlib.blake2b(
        f"{alias}\x00{salt}\x00{arm}\x00{unit}".encode(), digest_size=8
    ).digest()
    return (int.from_bytes(digest, "big") + 0.5) / _SCALE


class Experiment:
    def __init__(
        self,
        alias: str,
        arms: Mapping[str, Arm],
        weights: Mapping[str, float],
        *,
        sticky_by: StickyBy = "key",
        salt: str = "1",
        name: str | None = None,
    ) -> None:
        if not arms:
            raise ValueError("an experiment needs at least one variant")
        self.alias = alias
        # What the ledger records it under: the alias for a strata.yaml experiment.
        self.name = name or alias
        self.sticky_by: StickyBy = sticky_by
        self.salt = salt
        self.arms = dict(arms)
        self._weights: dict[str, float] = {}
        self.set_weights(weights)

    @property
    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def set_weights(self, weights: Mapping[str, object]) -> None:
        """Replace the weights; every arm must be named, each weight a number >= 0, and at
        least one above 0. Errors name the field (``weights.<arm>``)."""
        unknown = sorted(set(weights) - set(self.arms))
        if unknown:
            raise InvalidRequest(
                f"weights.{unknown[0]}: no such variant; variants are "
                f"{', '.join(sorted(self.arms))}",
                param=f"weights.{unknown[0]}",
            )
        missing = sorted(set(self.arms) - set(weights))
        if missing:
            raise InvalidRequest(
                f"weights.{missing[0]}: missing; give a weight for every variant",
                param=f"weights.{missing[0]}",
            )
        checked: dict[str, float] = {}
        for name, value in weights.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidRequest(f"weights.{name}: must be a number", param=f"weights.{name}")
            if not math.isfinite(value) or value < 0:
                raise InvalidRequest(
                    f"weights.{name}: must be a finite number >= 0", param=f"weights.{name}"
                )
            checked[name] = float(value)
        if not any(checked.values()):
            raise InvalidRequest("weights: at least one weight must be above 0", param="weights")
        self._weights = checked

    def choose(self, unit: str) -> Arm:
        best_name = ""
        best = math.inf
        for name, weight in self._weights.items():
            if weight <= 0:
                continue
            score = -math.log(unit_draw(self.alias, self.salt, name, unit)) / weight
            if score < best:
                best, best_name = score, name
        return self.arms[best_name]
