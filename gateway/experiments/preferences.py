"""Preference pairs from rated traffic: what ``strata feedback export`` writes.

Input rows are rated answers with stored bodies (``store_bodies: true`` routes): a prompt, an
answer, its score (``POST /v1/feedback``: a score in [0, 1], up = 1, down = 0), its tenant. The
rules, in order:

1. **Tenant filter**: ``tenants`` (when given) keeps only those tenants' rows; answers of
   different tenants are never paired, even for the same prompt.
2. **Grouping**: answers are grouped by (tenant, prompt), the prompt being the whole
   conversation before the answer (system and turns).
3. **Deduplication**: identical answer texts in a group are one answer whose score is the mean
   of their ratings (whichever arm or sample produced them).
4. **Pairs**: every two answers of a group whose scores differ by at least ``margin`` form a
   pair (the higher one chosen). Smaller differences are dropped: equal scores (ties) always,
   near-ties because a rating's noise could flip them.
5. **Cap**: at most ``cap_per_prompt`` pairs per group, the widest margins first (ties broken
   by the answers' text, so the export is deterministic), so a popular prompt cannot dominate.
6. **SFT** (``--sft``): per group, the best answer if its score is at least ``sft_min_score``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rated:
    tenant: str
    prompt: str  # the stored JSON of the prompt turns
    answer: str
    score: float


@dataclass(frozen=True)
class Rules:
    margin: float = 0.25
    cap_per_prompt: int = 4
    tenants: frozenset[str] = frozenset()  # empty: every tenant
    sft_min_score: float = 0.75

    def __post_init__(self) -> None:
        if not 0 < self.margin <= 1:
            raise ValueError("margin must be in (0, 1]")
        if self.cap_per_prompt < 1:
            raise ValueError("cap per prompt must be at least 1")


@dataclass
class ExportStats:
    rated_answers: int = 0
    prompts: int = 0
    duplicates_merged: int = 0
    ties_dropped: int = 0
    below_margin_dropped: int = 0
    capped: int = 0
    pairs: int = 0
    sft: int = 0
    other_tenants: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Export:
    pairs: list[dict[str, Any]] = field(default_factory=list)
    sft: list[dict[str, Any]] = field(default_factory=list)
    stats: ExportStats = field(default_factory=ExportStats)


def _prompt_value(prompt: str) -> Any:
    """A single user turn is written as a plain string (the ``prompt`` shape Bedrock and the
    local trainers read); anything longer as the list of turns."""
    turns = json.loads(prompt)
    if len(turns) == 1 and turns[0]["role"] == "user":
        return turns[0]["content"]
    return turns


def build(rows: Iterable[Rated], rules: Rules) -> Export:
    out = Export()
    stats = out.stats
    groups: dict[tuple[str, str], dict[str, list[float]]] = {}
    for row in rows:
        if rules.tenants and row.tenant not in rules.tenants:
            stats.other_tenants += 1
            continue
        stats.rated_answers += 1
        answers = groups.setdefault((row.tenant, row.prompt), {})
        if row.answer in answers:
            stats.duplicates_merged += 1
        answers.setdefault(row.answer, []).append(row.score)
    stats.prompts = len(groups)
    for (_, prompt), answers in sorted(groups.items()):
        scored = sorted(
            ((sum(s) / len(s), text) for text, s in answers.items()), key=lambda x: (-x[0], x[1])
        )
        candidates = []
        for i, (high, chosen) in enumerate(scored):
            for low, rejected in scored[i + 1 :]:
                gap = high - low
                if gap == 0:
                    stats.ties_dropped += 1
                elif gap < rules.margin:
                    stats.below_margin_dropped += 1
                else:
                    candidates.append((gap, chosen, rejected, high, low))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        stats.capped += max(0, len(candidates) - rules.cap_per_prompt)
        value = _prompt_value(prompt)
        for gap, chosen, rejected, high, low in candidates[: rules.cap_per_prompt]:
            out.pairs.append(
                {"prompt": value, "chosen": chosen, "rejected": rejected,
                 "chosen_score": round(high, 4), "rejected_score": round(low, 4),
                 "margin": round(gap, 4)}
            )  # fmt: skip
        best_score, best = scored[0]
        if best_score >= rules.sft_min_score:
            out.sft.append({"prompt": value, "completion": best})
    stats.pairs, stats.sft = len(out.pairs), len(out.sft)
    return out


_QUERY = (
    "SELECT b.tenant, b.prompt, b.answer, f.score FROM bodies b "
    "JOIN feedback f ON f.request_id = b.request_id "
    "WHERE b.alias = ? AND b.ts >= ? ORDER BY b.ts"
)


def rated_rows(db: Any, alias: str, since: float) -> list[Rated]:
    """Rated answers of ``alias`` since ``since`` (a unix time) with their stored bodies."""
    rows = db.query(_QUERY, (alias, since))
    return [Rated(str(t), str(p), str(a), float(s)) for t, p, a, s in rows]


def write_jsonl(path: Any, records: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
