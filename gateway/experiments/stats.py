"""Pure statistics for an A/B experiment: per-arm summaries, the candidate - control
difference, an always-valid sequential test, a sample-ratio-mismatch check, guardrails and
the verdict. No I/O; every function takes plain numbers or numpy arrays.

The sequential test is the **mixture sequential probability ratio test (mSPRT)** with a normal
mixing distribution, as in Johari, Koomen, Pekelis and Walsh, "Peeking at A/B Tests: Why it
matters, and what to do about it" (KDD 2017; "Always Valid Inference", Operations Research
2022). For the difference of two means ``d`` with estimator variance ``v`` (= var_a/n_a +
var_b/n_b, plug-in estimates) and mixing variance ``tau2`` on the effect, the likelihood ratio
against "no difference" is

    Lambda = sqrt(v / (v + tau2)) * exp(tau2 * d^2 / (2 v (v + tau2)))

and, by Ville's inequality, the chance that Lambda *ever* reaches 1/alpha under the null is at
most alpha, however often someone looks. The always-valid p-value is the running minimum of
1/Lambda; the matching confidence sequence is ``d +- sqrt(v (v + tau2) / tau2 *
(2 ln(1/alpha) + ln((v + tau2) / v)))``. Why this rule rather than a Bayesian one: its error
guarantee holds for any stopping time with no prior to defend, and it needs only running sums,
so a status page can recompute it from the ledger at every look. ``tau2`` is set in units of
the outcome's standard deviation (``tau_sd``, default 0.2, a "small" standardised effect),
which tunes the test's power to effects of about that size; a Bernoulli outcome near 0.5 gets
tau = 0.1, i.e. ten points.

Proportions (error rate, thumbs up/down) are means of 0/1 values and use the same test.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

DEFAULT_ALPHA = 0.05
DEFAULT_TAU_SD = 0.2
SRM_P = 0.001  # the usual threshold for a broken split (Fabijan et al., KDD 2019)
_VAR_FLOOR = 1e-12


# -- per-arm summary --------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmSummary:
    """What one arm's records say. ``n`` counts requests routed to the arm; the outcome
    figures cover only the requests that have an outcome (a rating or a grade)."""

    name: str
    n: int
    errors: int
    error_rate: float
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    cost_per_request_usd: float | None
    outcomes: int
    outcome_mean: float | None
    outcome_ci: tuple[float, float] | None
    outcome_var: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n": self.n,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p50_latency_ms": self.p50_latency_ms,
            "p95_latency_ms": self.p95_latency_ms,
            "cost_per_request_usd": self.cost_per_request_usd,
            "outcomes": self.outcomes,
            "outcome_mean": self.outcome_mean,
            "outcome_ci": list(self.outcome_ci) if self.outcome_ci else None,
        }


def _z(alpha: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - alpha / 2)


def summarize(
    name: str,
    *,
    errors: ArrayLike,
    latencies_ms: ArrayLike,
    costs_usd: ArrayLike,
    outcomes: ArrayLike,
    alpha: float = DEFAULT_ALPHA,
) -> ArmSummary:
    """One arm's summary. ``errors`` is one 0/1 per request; ``latencies_ms`` and
    ``costs_usd`` one value per request where known (NaN or absent values are skipped);
    ``outcomes`` one value in [0, 1] per rated request. The outcome interval is the usual
    fixed-n normal interval (for display; decisions use the confidence sequence)."""
    err = np.asarray(errors, dtype=float)
    lat = np.asarray(latencies_ms, dtype=float)
    lat = lat[~np.isnan(lat)]
    cost = np.asarray(costs_usd, dtype=float)
    cost = cost[~np.isnan(cost)]
    out = np.asarray(outcomes, dtype=float)
    n = int(err.size)
    mean = var = None
    ci = None
    if out.size:
        mean = float(out.mean())
        var = float(out.var(ddof=1)) if out.size > 1 else 0.0
        half = _z(alpha) * math.sqrt(var / out.size)
        ci = (max(mean - half, 0.0), min(mean + half, 1.0))  # outcomes lie in [0, 1]
    return ArmSummary(
        name=name,
        n=n,
        errors=int(err.sum()),
        error_rate=float(err.mean()) if n else 0.0,
        p50_latency_ms=float(np.percentile(lat, 50)) if lat.size else None,
        p95_latency_ms=float(np.percentile(lat, 95)) if lat.size else None,
        cost_per_request_usd=float(cost.mean()) if cost.size else None,
        outcomes=int(out.size),
        outcome_mean=mean,
        outcome_ci=ci,
        outcome_var=var,
    )


# -- the sequential test ----------------------------------------------------------------------


def msprt_log_lr(diff: ArrayLike, var: ArrayLike, tau2: ArrayLike) -> FloatArray:
    """log Lambda of the normal-mixture SPRT for an observed difference ``diff`` whose
    estimator has variance ``var`` (vectorised)."""
    d = np.asarray(diff, dtype=float)
    v = np.maximum(np.asarray(var, dtype=float), _VAR_FLOOR)
    t = np.asarray(tau2, dtype=float)
    return np.asarray(0.5 * np.log(v / (v + t)) + t * d * d / (2 * v * (v + t)), dtype=float)


def always_valid_p(log_lr: ArrayLike) -> FloatArray:
    """Always-valid p-values along the last axis: the running minimum of min(1, 1/Lambda)."""
    p = np.minimum(1.0, np.exp(-np.asarray(log_lr, dtype=float)))
    return np.asarray(np.minimum.accumulate(p, axis=-1), dtype=float)


def cs_half_width(var: ArrayLike, tau2: ArrayLike, alpha: float) -> FloatArray:
    """Half width of the (1 - alpha) confidence sequence for the difference."""
    v = np.maximum(np.asarray(var, dtype=float), _VAR_FLOOR)
    t = np.asarray(tau2, dtype=float)
    return np.asarray(
        np.sqrt(v * (v + t) / t * (2 * math.log(1 / alpha) + np.log((v + t) / v))), dtype=float
    )


def mean_var(n: ArrayLike, s: ArrayLike, ss: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Mean and (unbiased, where n > 1) variance from count, sum and sum of squares."""
    n_ = np.maximum(np.asarray(n, dtype=float), 1.0)
    mean = np.asarray(s, dtype=float) / n_
    var = (np.asarray(ss, dtype=float) - n_ * mean * mean) / np.maximum(n_ - 1, 1.0)
    return mean, np.maximum(var, 0.0)


def tau2_for(var_a: ArrayLike, var_b: ArrayLike, tau_sd: float = DEFAULT_TAU_SD) -> FloatArray:
    """The mixing variance: ``tau_sd`` pooled standard deviations, squared."""
    pooled = (np.asarray(var_a, dtype=float) + np.asarray(var_b, dtype=float)) / 2
    return np.asarray(np.maximum(pooled, _VAR_FLOOR) * tau_sd * tau_sd, dtype=float)


@dataclass(frozen=True)
class Difference:
    """candidate - control on the outcome: the point estimate, the always-valid interval, the
    always-valid p-value (running minimum over the looks given) and the current log Lambda."""

    diff: float
    ci: tuple[float, float]
    p_value: float
    log_lr: float

    def as_json(self) -> dict[str, Any]:
        return {"diff": self.diff, "ci": list(self.ci), "p_value": self.p_value}


def difference(
    control: Sequence[float] | FloatArray,
    candidate: Sequence[float] | FloatArray,
    *,
    order: Sequence[bool] | None = None,
    alpha: float = DEFAULT_ALPHA,
    tau_sd: float = DEFAULT_TAU_SD,
) -> Difference | None:
    """The sequential comparison of two arms' outcomes. ``order`` (optional) interleaves the
    two in arrival order (True = candidate) so the p-value is the running minimum over every
    look; without it only the current look counts (still valid, just never smaller). None
    until each arm has two outcomes."""
    a = np.asarray(control, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if a.size < 2 or b.size < 2:
        return None
    if order is not None:
        is_b = np.asarray(order, dtype=bool)
        values = np.empty(is_b.size)
        values[is_b] = b
        values[~is_b] = a
        na, nb = np.cumsum(~is_b), np.cumsum(is_b)
        sa, sb = np.cumsum(np.where(is_b, 0, values)), np.cumsum(np.where(is_b, values, 0))
        qa = np.cumsum(np.where(is_b, 0, values**2))
        qb = np.cumsum(np.where(is_b, values**2, 0))
        ok = (na >= 2) & (nb >= 2)
        ma, va = mean_var(na[ok], sa[ok], qa[ok])
        mb, vb = mean_var(nb[ok], sb[ok], qb[ok])
        var = va / na[ok] + vb / nb[ok]
        llr = msprt_log_lr(mb - ma, var, tau2_for(va, vb, tau_sd))
        p = float(always_valid_p(llr)[-1])
    else:
        llr = msprt_log_lr(
            b.mean() - a.mean(),
            a.var(ddof=1) / a.size + b.var(ddof=1) / b.size,
            tau2_for(a.var(ddof=1), b.var(ddof=1), tau_sd),
        )
        p = float(always_valid_p(np.atleast_1d(llr))[-1])
    d = float(b.mean() - a.mean())
    var_now = float(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    half = float(cs_half_width(var_now, tau2_for(a.var(ddof=1), b.var(ddof=1), tau_sd), alpha))
    return Difference(d, (d - half, d + half), p, float(np.atleast_1d(llr)[-1]))


def samples_needed(
    diff: float,
    var_a: float,
    var_b: float,
    n_now: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    tau_sd: float = DEFAULT_TAU_SD,
    cap: int = 10**9,
) -> int:
    """About how many more samples per arm the test needs to decide, if the difference stays
    at ``diff`` (or at the smallest effect the test is tuned for, ``tau_sd`` pooled standard
    deviations, when the observed one is smaller) and the variances stay put."""
    tau2 = float(tau2_for(var_a, var_b, tau_sd))
    effect = max(abs(diff), math.sqrt(tau2))
    goal = math.log(1 / alpha)

    def decides(n: int) -> bool:
        return float(msprt_log_lr(effect, (var_a + var_b) / n, tau2)) >= goal

    lo, hi = max(n_now, 2), max(n_now, 2)
    while not decides(hi):
        lo, hi = hi, hi * 2
        if hi > cap:
            return cap
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if decides(mid) else (mid, hi)
    return max(hi - n_now, 0)


# -- sample ratio mismatch --------------------------------------------------------------------


def chi2_sf(x: float, df: int) -> float:
    """Upper tail of the chi-square distribution for an integer ``df`` >= 1 (closed forms)."""
    if x <= 0:
        return 1.0
    half = x / 2
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= half / i
            total += term
        return min(1.0, math.exp(-half) * total)
    total = math.erfc(math.sqrt(half))
    term = math.sqrt(x) * math.exp(-half) * math.sqrt(2 / math.pi)
    for i in range(1, (df + 1) // 2):
        total += term
        term *= x / (2 * i + 1)
    return min(1.0, total)


@dataclass(frozen=True)
class SampleRatio:
    chi2: float
    p_value: float
    mismatch: bool
    expected: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        return {
            "chi2": self.chi2,
            "p_value": self.p_value,
            "mismatch": self.mismatch,
            "expected": self.expected,
        }


def sample_ratio(
    counts: Mapping[str, int], weights: Mapping[str, float], *, threshold: float = SRM_P
) -> SampleRatio:
    """Chi-square goodness of fit of the arms' request counts to their weights (arms with
    weight 0 expect no requests and are left out). A mismatch means the split is broken (or
    the records are) and no verdict should be read."""
    live = {a: w for a, w in weights.items() if w > 0}
    total = sum(counts.get(a, 0) for a in live)
    wsum = sum(live.values())
    if total == 0 or len(live) < 2:
        return SampleRatio(0.0, 1.0, False, {a: 0.0 for a in live})
    expected = {a: total * w / wsum for a, w in live.items()}
    chi2 = sum((counts.get(a, 0) - e) ** 2 / e for a, e in expected.items())
    p = chi2_sf(chi2, len(live) - 1)
    return SampleRatio(chi2, p, p < threshold, expected)


# -- guardrails -------------------------------------------------------------------------------

GuardMetric = Literal[
    "p50_latency_ms", "p95_latency_ms", "latency_ms", "cost_per_request", "error_rate"
]
_METRICS = ("p50_latency_ms", "p95_latency_ms", "latency_ms", "cost_per_request", "error_rate")
_SPEC = re.compile(r"^\s*([a-z0-9_]+)\s*<\s*\+?\s*([0-9]*\.?[0-9]+)\s*(%|pt)?\s*$")


@dataclass(frozen=True)
class Guardrail:
    """The candidate's ``metric`` may exceed the control's by at most ``margin``: relative
    (``+20%``), in points for rates (``+1pt`` = 0.01) or absolute in the metric's unit."""

    metric: GuardMetric
    margin: float
    kind: Literal["relative", "absolute"]
    text: str

    @classmethod
    def parse(cls, text: str) -> Guardrail:
        m = _SPEC.match(text)
        if m is None or m.group(1) not in _METRICS:
            raise ValueError(
                f"guardrail {text!r}: expected METRIC<+N%, METRIC<+Npt or METRIC<+N with METRIC "
                f"one of {', '.join(_METRICS)}"
            )
        value, unit = float(m.group(2)), m.group(3)
        if unit == "pt" and m.group(1) != "error_rate":
            raise ValueError(f"guardrail {text!r}: points (pt) apply to error_rate only")
        metric: GuardMetric = m.group(1)  # type: ignore[assignment]
        if unit == "%":
            return cls(metric, value / 100, "relative", text.strip())
        return cls(metric, value / 100 if unit == "pt" else value, "absolute", text.strip())


@dataclass(frozen=True)
class GuardResult:
    guardrail: str
    failed: bool
    control: float | None
    candidate: float | None
    limit: float | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class ArmData:
    """The raw per-request values a guardrail reads."""

    errors: FloatArray
    latencies_ms: FloatArray
    costs_usd: FloatArray

    @classmethod
    def of(cls, errors: ArrayLike, latencies_ms: ArrayLike, costs_usd: ArrayLike) -> ArmData:
        def clean(x: ArrayLike) -> FloatArray:
            a = np.asarray(x, dtype=float)
            return np.asarray(a[~np.isnan(a)], dtype=float)

        return cls(np.asarray(errors, dtype=float), clean(latencies_ms), clean(costs_usd))


def check_guardrail(
    rail: Guardrail, control: ArmData, candidate: ArmData, *, alpha: float = DEFAULT_ALPHA
) -> GuardResult:
    """A one-sided always-valid test: the guardrail fails only when the confidence sequence
    shows the candidate above the allowed limit (so noise alone fails it at most alpha of the
    time, looks included). Quantiles are tested through the exceedance rate: if the
    candidate's p95 is within the limit, at most 5% of its requests lie above the limit (the
    control's quantile is treated as known; it is estimated from the control's records)."""
    if rail.metric in ("p50_latency_ms", "p95_latency_ms"):
        q = 50.0 if rail.metric == "p50_latency_ms" else 95.0
        a, b = control.latencies_ms, candidate.latencies_ms
        if a.size < 2 or b.size < 2:
            return GuardResult(rail.text, False, None, None, None, "not enough latencies yet")
        base = float(np.percentile(a, q))
        limit = base * (1 + rail.margin) if rail.kind == "relative" else base + rail.margin
        above = (b > limit).astype(float)
        allowed = 1 - q / 100
        f = float(above.mean())
        var = max(f * (1 - f), allowed * (1 - allowed)) / b.size
        tau2 = allowed * (1 - allowed) * DEFAULT_TAU_SD**2
        lower = f - allowed - float(cs_half_width(var, tau2, alpha))
        return GuardResult(
            rail.text,
            lower > 0,
            base,
            float(np.percentile(b, q)),
            limit,
            f"{f:.1%} of candidate requests above {limit:.1f} ms (allowed {allowed:.0%})",
        )
    values = {
        "latency_ms": (control.latencies_ms, candidate.latencies_ms),
        "cost_per_request": (control.costs_usd, candidate.costs_usd),
        "error_rate": (control.errors, candidate.errors),
    }[rail.metric]
    a, b = values
    if a.size < 2 or b.size < 2:
        return GuardResult(rail.text, False, None, None, None, "not enough records yet")
    ma, mb = float(a.mean()), float(b.mean())
    limit = ma * (1 + rail.margin) if rail.kind == "relative" else ma + rail.margin
    va, vb = float(a.var(ddof=1)), float(b.var(ddof=1))
    if rail.metric == "error_rate":  # a rate at 0 still has Bernoulli uncertainty
        va, vb = max(va, 1 / a.size), max(vb, 1 / b.size)
    var = va / a.size + vb / b.size
    lower = (mb - limit) - float(cs_half_width(var, tau2_for(va, vb), alpha))
    return GuardResult(
        rail.text, lower > 0, ma, mb, limit, f"candidate {mb:.6g} vs limit {limit:.6g}"
    )


# -- the verdict ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """``kind`` is one of ``candidate better``, ``candidate worse``, ``no difference yet``,
    ``guardrail failed``, ``sample ratio mismatch``; ``text`` is the sentence to print."""

    kind: str
    text: str
    more_samples_per_arm: int | None = None
    guardrails_failed: list[str] = field(default_factory=list)


def verdict(
    srm: SampleRatio,
    guards: Sequence[GuardResult],
    diff: Difference | None,
    control: ArmSummary,
    candidate: ArmSummary,
    *,
    alpha: float = DEFAULT_ALPHA,
    tau_sd: float = DEFAULT_TAU_SD,
    min_samples: int = 100,
) -> Verdict:
    """In order: a broken split blocks everything; then a failed guardrail; then the outcome
    test, which decides only once both arms have ``min_samples`` outcomes."""
    if srm.mismatch:
        return Verdict(
            "sample ratio mismatch",
            f"sample ratio mismatch (chi-square {srm.chi2:.1f}, p = {srm.p_value:.2g}): "
            "the split is broken; no verdict until it is fixed",
        )
    failed = [g for g in guards if g.failed]
    if failed:
        names = [g.guardrail for g in failed]
        return Verdict(
            "guardrail failed",
            "guardrail failed: " + "; ".join(f"{g.guardrail} ({g.detail})" for g in failed),
            guardrails_failed=names,
        )
    n_min = min(control.outcomes, candidate.outcomes)
    if diff is None or control.outcome_var is None or candidate.outcome_var is None:
        return Verdict("no difference yet", "no difference yet (no outcomes recorded yet)")
    if n_min >= min_samples and diff.p_value <= alpha:
        kind = "candidate better" if diff.diff > 0 else "candidate worse"
        return Verdict(kind, f"{kind} ({diff.diff:+.3f}, p = {diff.p_value:.2g})")
    more = samples_needed(
        diff.diff,
        control.outcome_var,
        candidate.outcome_var,
        n_min,
        alpha=alpha,
        tau_sd=tau_sd,
    )
    more = max(more, min_samples - n_min)
    return Verdict(
        "no difference yet",
        f"no difference yet (about {more} more samples per arm)",
        more_samples_per_arm=more,
    )
