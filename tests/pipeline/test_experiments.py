"""Sticky weighted experiments: shares, stability, consistent moves when weights change."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.pipeline.experiments import Arm, Experiment
from gateway.targets import Target

USERS = [f"user-{i}" for i in range(10_000)]


def experiment(control: float, tuned: float, salt: str = "1") -> Experiment:
    arms = {
        "control": Arm("control", (Target("bedrock", "base"),)),
        "tuned": Arm("tuned", (Target("variant", "support-v2"), Target("bedrock", "base"))),
    }
    return Experiment("support", arms, {"control": control, "tuned": tuned}, salt=salt)


def assign(exp: Experiment) -> dict[str, str]:
    return {u: exp.choose(u).name for u in USERS}


def test_shares_within_two_points_and_stable() -> None:
    exp = experiment(70, 30)
    first = assign(exp)
    tuned_share = sum(v == "tuned" for v in first.values()) / len(USERS)
    assert abs(tuned_share - 0.30) <= 0.02
    assert assign(exp) == first  # every user keeps their arm
    assert assign(experiment(70, 30)) == first  # and another replica agrees


def test_moving_weights_moves_only_control_users_to_tuned() -> None:
    exp = experiment(70, 30)
    before = assign(exp)
    exp.set_weights({"control": 50, "tuned": 50})
    after = assign(exp)
    moved = [u for u in USERS if before[u] != after[u]]
    assert all(before[u] == "control" and after[u] == "tuned" for u in moved)
    # About 20 % of everyone had to move; no more than that did.
    assert abs(len(moved) / len(USERS) - 0.20) <= 0.02
    assert abs(sum(v == "tuned" for v in after.values()) / len(USERS) - 0.50) <= 0.02


def test_a_new_salt_reshuffles() -> None:
    a, b = assign(experiment(50, 50, "1")), assign(experiment(50, 50, "2"))
    changed = sum(a[u] != b[u] for u in USERS) / len(USERS)
    assert 0.4 < changed < 0.6


def test_zero_weight_gets_nobody() -> None:
    exp = experiment(100, 0)
    assert set(assign(exp).values()) == {"control"}


@pytest.mark.parametrize(
    ("weights", "param"),
    [
        ({"control": 50, "tuned": 50, "ghost": 1}, "weights.ghost"),
        ({"control": 50}, "weights.tuned"),
        ({"control": -1, "tuned": 5}, "weights.control"),
        ({"control": "50", "tuned": 5}, "weights.control"),
        ({"control": True, "tuned": 5}, "weights.control"),
        ({"control": float("inf"), "tuned": 5}, "weights.control"),
        ({"control": 0, "tuned": 0}, "weights"),
    ],
)
def test_bad_weights_name_the_field(weights: dict[str, object], param: str) -> None:
    exp = experiment(70, 30)
    with pytest.raises(InvalidRequest) as info:
        exp.set_weights(weights)
    assert info.value.param == param
    assert info.value.message.startswith(param)
    assert exp.weights == {"control": 70.0, "tuned": 30.0}  # unchanged
