"""Issue 14: a SageMaker job trains with the recipe for its base, as ``strata train`` does locally.

The entry point used to build ``TrainSettings`` with the old defaults (lr 2e-4, r=8 on
``q_proj,v_proj``), which do not learn on the built-in model. The job's worker runs here
in-process (one rank, CPU, two steps) and its published report.json says what it trained with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters_local.data.tasks import NEW_TASKS, make_items, to_jsonl_record
from adapters_local.training.recipes import PRESETS
from customize.sagemaker import entry


def _job(root: Path, monkeypatch: pytest.MonkeyPatch, hps: dict[str, str]) -> dict[str, Any]:
    items = make_items([NEW_TASKS["rot13"]], 60, seed=1)
    for channel, chosen in (("train", items[:50]), ("eval", items[50:])):
        (root / channel).mkdir()
        (root / channel / f"{channel}.jsonl").write_text(
            "".join(json.dumps(to_jsonl_record(i)) + "\n" for i in chosen)
        )
    env = {
        "SM_HOSTS": '["algo-1"]',
        "SM_CURRENT_HOST": "algo-1",
        "SM_NUM_GPUS": "0",
        "SM_CHANNEL_TRAIN": str(root / "train"),
        "SM_CHANNEL_EVAL": str(root / "eval"),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_HPS": json.dumps({"method": "lora", "base": "builtin", "steps": "2", **hps}),
        "STRATA_CHECKPOINT_DIR": str(root / "checkpoints"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert entry.worker() == 0
    report: dict[str, Any] = json.loads((root / "model" / "adapter" / "report.json").read_text())
    return report


def test_a_job_without_hyper_parameters_uses_the_recipe_for_its_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = _job(tmp_path, monkeypatch, {})
    tiny = PRESETS["tiny"]
    hp = report["hyper_parameters"]
    assert report["recipe"] == "tiny"
    assert hp["lr"] == tiny.lora_lr
    assert hp["options"]["rank"] == tiny.lora.rank
    assert hp["options"]["alpha"] == tiny.lora.alpha
    assert hp["options"]["targets"] == list(tiny.lora.targets)
    assert hp["row_len"] == tiny.row_len and hp["rows_per_step"] == tiny.rows_per_step


def test_a_job_hyper_parameter_overrides_one_value_and_a_preset_picks_the_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = _job(tmp_path, monkeypatch, {"rank": "4", "preset": "small"})
    small = PRESETS["small"]
    hp = report["hyper_parameters"]
    assert report["recipe"] == "small (--preset)"
    assert hp["options"]["rank"] == 4 and hp["options"]["alpha"] == 8
    assert hp["lr"] == small.lora_lr
    assert hp["options"]["targets"] == list(small.lora.targets)
