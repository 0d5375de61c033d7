"""The experiment statistics on simulated data (seeded numpy, vectorised over experiments)."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.experiments import stats
from gateway.experiments.stats import ArmData, Guardrail

ALPHA = 0.05
SIMS, N, PEEK = 1000, 1000, 50


def _rejections(p_control: float, p_candidate: float, seed: int) -> np.ndarray:
    """For SIMS experiments of N Bernoulli outcomes per arm, looked at every PEEK samples per
    arm: whether the mSPRT ever rejected "no difference" (the peeking user stops there)."""
    rng = np.random.default_rng(seed)
    a = rng.random((SIMS, N)) < p_control
    b = rng.random((SIMS, N)) < p_candidate
    looks = np.arange(PEEK, N + 1, PEEK)
    sa, sb = np.cumsum(a, axis=1)[:, looks - 1], np.cumsum(b, axis=1)[:, looks - 1]
    # 0/1 values: the sum of squares is the sum.
    ma, va = stats.mean_var(looks, sa, sa)
    mb, vb = stats.mean_var(looks, sb, sb)
    llr = stats.msprt_log_lr(mb - ma, va / looks + vb / looks, stats.tau2_for(va, vb))
    p = stats.always_valid_p(llr)
    return np.asarray(p[:, -1] <= ALPHA)


def test_no_true_difference_keeps_false_positives_under_alpha_with_peeking() -> None:
    rejected = _rejections(0.5, 0.5, seed=12)
    rate = float(rejected.mean())
    print(f"false-positive rate with {N // PEEK} looks: {rate:.3f} over {SIMS} experiments")
    # alpha plus three binomial standard errors of the simulation (0.021).
    assert rate <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / SIMS)


def test_a_naive_fixed_n_test_with_the_same_peeking_does_inflate() -> None:
    """The control: the same data and looks with a plain z-test rejects far more often, so
    the test above is not passing by being blind."""
    rng = np.random.default_rng(12)
    a = rng.random((SIMS, N)) < 0.5
    b = rng.random((SIMS, N)) < 0.5
    looks = np.arange(PEEK, N + 1, PEEK)
    ma = np.cumsum(a, axis=1)[:, looks - 1] / looks
    mb = np.cumsum(b, axis=1)[:, looks - 1] / looks
    z = (mb - ma) / np.sqrt((ma * (1 - ma) + mb * (1 - mb)) / looks + 1e-12)
    naive = float((np.abs(z) > 1.96).any(axis=1).mean())
    print(f"naive z-test with peeking: {naive:.3f}")
    assert naive > 2 * ALPHA


def test_a_ten_point_difference_is_found_in_most_runs_at_n_1000() -> None:
    rejected = _rejections(0.5, 0.6, seed=13)
    power = float(rejected.mean())
    print(f"power for +10 points at n={N} per arm: {power:.3f}")
    assert power >= 0.8


def test_difference_reports_the_sign_interval_and_needed_samples() -> None:
    rng = np.random.default_rng(5)
    control = (rng.random(800) < 0.5).astype(float)
    better = (rng.random(800) < 0.65).astype(float)
    d = stats.difference(control, better)
    assert d is not None and d.diff > 0.05 and d.p_value <= ALPHA and d.ci[0] > 0
    order = np.arange(1600) % 2 == 1  # alternate arrivals
    d2 = stats.difference(control, better, order=order)
    assert d2 is not None and d2.p_value <= d.p_value  # running minimum over all looks
    same = stats.difference(control[:100], (rng.random(100) < 0.5).astype(float))
    assert same is not None and same.ci[0] < 0 < same.ci[1]
    more = stats.samples_needed(0.0, 0.25, 0.25, 100)
    assert 100 < more < 10_000  # tuned to a 10-point effect at p = 0.5
    assert stats.samples_needed(0.3, 0.25, 0.25, 100) < more
    assert stats.difference([1.0], [0.0, 1.0]) is None


def test_srm_fires_on_52_48_at_20000_and_not_on_a_fair_split() -> None:
    srm = stats.sample_ratio({"control": 10_400, "tuned": 9_600}, {"control": 50, "tuned": 50})
    assert srm.mismatch and srm.chi2 == pytest.approx(32.0) and srm.p_value < 1e-6
    rng = np.random.default_rng(3)
    fired = 0
    for _ in range(200):
        k = int(rng.binomial(20_000, 0.5))
        fired += stats.sample_ratio({"a": k, "b": 20_000 - k}, {"a": 1, "b": 1}).mismatch
    assert fired <= 2  # threshold p < 0.001
    three = stats.sample_ratio({"a": 700, "b": 200, "c": 100}, {"a": 70, "b": 20, "c": 10})
    assert not three.mismatch and three.p_value == pytest.approx(1.0)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7])
def test_chi2_tail_matches_known_quantiles(df: int) -> None:
    # 95th percentiles of chi-square (standard tables).
    q95 = {1: 3.841459, 2: 5.991465, 3: 7.814728, 4: 9.487729, 7: 14.06714}[df]
    assert stats.chi2_sf(q95, df) == pytest.approx(0.05, abs=1e-5)


def test_guardrail_specs_parse_and_bad_ones_name_the_problem() -> None:
    g = Guardrail.parse("p95_latency_ms<+20%")
    assert (g.metric, g.kind, g.margin) == ("p95_latency_ms", "relative", pytest.approx(0.2))
    assert Guardrail.parse("error_rate<+1pt").margin == pytest.approx(0.01)
    assert Guardrail.parse("cost_per_request < +0.002").kind == "absolute"
    with pytest.raises(ValueError, match="METRIC"):
        Guardrail.parse("throughput<+5%")
    with pytest.raises(ValueError, match="error_rate only"):
        Guardrail.parse("latency_ms<+1pt")


def _arm(rng: np.random.Generator, n: int, lat: float, err: float, cost: float) -> ArmData:
    return ArmData.of(
        rng.random(n) < err, rng.gamma(4.0, lat / 4.0, n), rng.normal(cost, cost / 10, n)
    )


def test_guardrails_fail_on_a_clear_regression_only() -> None:
    rng = np.random.default_rng(9)
    control = _arm(rng, 2000, 100.0, 0.01, 0.001)
    same = _arm(rng, 2000, 100.0, 0.01, 0.001)
    slow = _arm(rng, 2000, 300.0, 0.01, 0.001)
    costly = _arm(rng, 2000, 100.0, 0.01, 0.0013)
    failing = _arm(rng, 2000, 100.0, 0.08, 0.001)
    rails = [
        Guardrail.parse(t)
        for t in (
            "p95_latency_ms<+20%",
            "cost_per_request<+10%",
            "error_rate<+1pt",
            "latency_ms<+20%",
        )
    ]

    def failed(candidate: ArmData) -> set[str]:
        return {r.metric for r in rails if stats.check_guardrail(r, control, candidate).failed}

    assert failed(same) == set()
    assert failed(slow) == {"p95_latency_ms", "latency_ms"}
    assert failed(costly) == {"cost_per_request"}
    assert failed(failing) == {"error_rate"}


def _summary(name: str, outcomes: np.ndarray) -> stats.ArmSummary:
    n = outcomes.size
    return stats.summarize(
        name,
        errors=np.zeros(n),
        latencies_ms=np.full(n, 50.0),
        costs_usd=np.full(n, 1e-3),
        outcomes=outcomes,
    )


def test_verdict_order_srm_then_guardrails_then_outcome() -> None:
    rng = np.random.default_rng(21)
    c = (rng.random(1000) < 0.5).astype(float)
    t = (rng.random(1000) < 0.7).astype(float)
    sc, st = _summary("control", c), _summary("tuned", t)
    fair = stats.sample_ratio({"control": 1000, "tuned": 1000}, {"control": 1, "tuned": 1})
    d = stats.difference(c, t)
    assert stats.verdict(fair, [], d, sc, st).kind == "candidate better"
    assert stats.verdict(fair, [], stats.difference(t, c), st, sc).kind == "candidate worse"
    broken = stats.sample_ratio({"control": 1000, "tuned": 1000}, {"control": 9, "tuned": 1})
    assert stats.verdict(broken, [], d, sc, st).kind == "sample ratio mismatch"
    bad = stats.GuardResult("error_rate<+1pt", True, 0.01, 0.1, 0.02, "candidate 0.1")
    v = stats.verdict(fair, [bad], d, sc, st)
    assert v.kind == "guardrail failed" and v.text.startswith("guardrail failed: error_rate")
    few_c, few_t = c[:60], (rng.random(60) < 0.5).astype(float)
    wait = stats.verdict(
        fair,
        [],
        stats.difference(few_c, few_t),
        _summary("control", few_c),
        _summary("tuned", few_t),
    )
    assert wait.kind == "no difference yet" and wait.more_samples_per_arm
    assert f"about {wait.more_samples_per_arm} more samples per arm" in wait.text
    assert sc.outcome_ci is not None and sc.outcome_ci[0] < 0.5 < sc.outcome_ci[1]
