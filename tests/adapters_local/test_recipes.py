"""Recipes per base size, explicit flags over them, and held-out splits that never overlap."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters_local.data.messages import ChatMessage
from adapters_local.data.records import Record
from adapters_local.data.splits import make_splits, split_off
from adapters_local.training.recipes import PATIENCE, eval_every, recipe_for, resolve
from adapters_local.training.settings import ALL_LINEAR, TrainRequest


def _request(**fields: object) -> TrainRequest:
    return TrainRequest(
        method="lora",
        base="builtin",
        data=Path("d.jsonl"),
        out=Path("o"),
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("parameters", "name"),
    [(866_304, "tiny"), (1_240_000_000, "small"), (8_030_000_000, "7b"), (70e9, "large")],
)
def test_the_recipe_follows_the_base_size(parameters: float, name: str) -> None:
    assert recipe_for(int(parameters)).name == name


def test_real_bases_get_the_usual_lora_on_attention_and_mlp() -> None:
    settings = resolve(_request(), 8_030_000_000)
    assert settings.recipe == "7b" and settings.lora.targets == ALL_LINEAR
    assert 8 <= settings.lora.rank <= 16 and 1e-4 <= settings.lr <= 2e-4
    assert settings.patience == PATIENCE
    tiny = resolve(_request(), 866_304)
    assert tiny.lr > 10 * settings.lr  # tiny models want much higher rates


def test_flags_override_single_values_and_preset_picks_a_row() -> None:
    settings = resolve(_request(preset="tiny", rank=4, lr=1e-3, patience=0), 8_030_000_000)
    assert settings.recipe == "tiny (--preset)"
    assert (settings.lora.rank, settings.lora.alpha, settings.lr) == (4, 8, 1e-3)
    assert settings.patience is None  # 0 turns early stopping off
    assert settings.row_len == recipe_for(0, "tiny").row_len
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        resolve(_request(preset="huge"), 1)


def test_bottleneck_defaults_come_from_the_same_table() -> None:
    request = TrainRequest(method="bottleneck", base="b", data=Path("d"), out=Path("o"))
    tiny, big = resolve(request, 866_304), resolve(request, 8_030_000_000)
    assert tiny.bottleneck.reduction_factor < big.bottleneck.reduction_factor
    assert tiny.lr > big.lr


def test_eval_points_scale_with_the_run() -> None:
    settings = resolve(_request(), 866_304)
    assert eval_every(settings, 300) == 25 and eval_every(settings, 20) == 5


def _records(words: list[str]) -> list[Record]:
    return [Record((ChatMessage("user", f"Encode: {w}"),), w[::-1]) for w in words]


def test_carved_splits_are_disjoint_and_keep_duplicates_together() -> None:
    words = [f"w{i}" for i in range(200)] + ["dup"] * 5
    splits = make_splits(
        _records(words), None, None, holdout=0.1, seed=3, names=("t.jsonl", "", "")
    )
    parts = (splits.train, splits.validation, splits.test)
    prompts = [{r.messages for r in part} for part in parts]
    assert not (prompts[0] & prompts[1]) and not (prompts[0] & prompts[2])
    assert not (prompts[1] & prompts[2])
    assert len(splits.train) + len(splits.validation) + len(splits.test) == len(words)
    assert 8 <= len(splits.validation) <= 13 and 8 <= len(splits.test) <= 13
    assert splits.validation_source == "carved from t.jsonl (half)"


def test_a_test_file_keeps_all_held_out_data_for_validation() -> None:
    train, test = _records(["a", "b", "c"] * 20), _records(["x", "y"])
    splits = make_splits(train, None, test, holdout=0.1, seed=0, names=("t", "", "q.jsonl"))
    assert splits.test == test and splits.test_source == "q.jsonl"
    assert splits.validation and splits.validation_source == "carved from t"


def test_too_little_data_trains_on_everything() -> None:
    splits = make_splits(_records(["a", "b", "c"]), None, None, holdout=0.1, seed=0,
                         names=("t", "", ""))  # fmt: skip
    assert len(splits.train) == 3 and not splits.validation and not splits.test
    kept, held = split_off(_records(["a", "b"]), 0.5, 0)
    assert len(kept) == len(held) == 1
