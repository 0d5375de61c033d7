"""The synthetic preference task and the traffic-export rules (pure, no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters_local.data.tasks import BUILTIN_TASKS
from adapters_local.preference.pairs import (
    STYLE_MARK,
    read_pairs,
    styled,
    unstyled,
    write_synthetic,
)
from gateway.experiments.preferences import Rated, Rules, build


def test_synthetic_pairs_are_both_correct_and_differ_only_in_style(tmp_path: Path) -> None:
    paths = write_synthetic(tmp_path, train=200, test=40)
    pairs, held = read_pairs(paths["pairs"]), read_pairs(paths["test_pairs"])
    assert len(pairs) == 200 and len(held) == 40
    solve = {t.instruction: t.solve for t in BUILTIN_TASKS}
    for pair in pairs + held:
        instruction, word = pair.prompt[0].content.split(": ", 1)
        answer = solve[instruction](word)
        assert pair.rejected == answer and pair.chosen == answer + STYLE_MARK
        assert styled(pair.chosen) and not styled(pair.rejected)
        assert unstyled(pair.chosen) == unstyled(pair.rejected)
    train_words = {p.prompt[0].content.split(": ", 1)[1] for p in pairs}
    assert not train_words & {p.prompt[0].content.split(": ", 1)[1] for p in held}
    prompts = [json.loads(line) for line in paths["prompts"].read_text().splitlines()]
    assert [p["completion"] for p in prompts] == [p.rejected for p in held]


def test_bad_pair_lines_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "x", "chosen": "a", "rejected": "b"}\n{"prompt": "x"}\n')
    with pytest.raises(ValueError, match=r"p.jsonl:2: missing chosen, rejected"):
        read_pairs(path)
    path.write_text('{"prompt": "x", "chosen": "a", "rejected": "a"}\n')
    with pytest.raises(ValueError, match="same answer"):
        read_pairs(path)


def _p(text: str) -> str:
    return json.dumps([{"role": "user", "content": text}])


def test_export_rules_margin_ties_dedup_cap_and_tenants() -> None:
    rows = [
        Rated("acme", _p("q1"), "best", 1.0),
        Rated("acme", _p("q1"), "best", 0.8),  # duplicate text: merged, mean 0.9
        Rated("acme", _p("q1"), "mid", 0.7),  # 0.9 - 0.7 = 0.2 < margin 0.25: dropped
        Rated("acme", _p("q1"), "bad", 0.0),
        Rated("acme", _p("q1"), "bad2", 0.0),  # tie with "bad": no pair between them
        Rated("acme", _p("q2"), "same", 1.0),
        Rated("acme", _p("q2"), "other", 1.0),  # a tie only: no pair
        Rated("zeta", _p("q1"), "foreign", 0.0),  # another tenant: never paired with acme's
    ]
    out = build(rows, Rules(margin=0.25, cap_per_prompt=3, tenants=frozenset({"acme"})))
    stats = out.stats
    assert stats.other_tenants == 1 and stats.rated_answers == 7
    assert stats.duplicates_merged == 1 and stats.prompts == 2
    assert stats.ties_dropped == 2  # bad/bad2, same/other
    assert stats.below_margin_dropped == 1  # best/mid
    # best>bad, best>bad2, mid>bad, mid>bad2: four candidates, cap 3, widest first.
    assert stats.capped == 1 and stats.pairs == 3
    got = [(p["chosen"], p["rejected"], p["margin"]) for p in out.pairs]
    assert got == [("best", "bad", 0.9), ("best", "bad2", 0.9), ("mid", "bad", 0.7)]
    assert all(p["prompt"] == "q1" for p in out.pairs)
    assert out.sft == [
        {"prompt": "q1", "completion": "best"},
        {"prompt": "q2", "completion": "other"},
    ]
    everyone = build(rows, Rules(margin=0.25, cap_per_prompt=10))
    assert everyone.stats.other_tenants == 0
    assert not any(p["chosen"] == "foreign" or p["rejected"] == "foreign" for p in everyone.pairs)


def test_export_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="margin"):
        Rules(margin=0)
    with pytest.raises(ValueError, match="cap"):
        Rules(cap_per_prompt=0)
