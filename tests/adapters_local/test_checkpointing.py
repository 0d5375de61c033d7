"""Gradient checkpointing (the GPU default) forced on the CPU: same training, less memory.

Recomputation re-runs each decoder layer's forward during backward; if the bottleneck adapter's
routing is gone by then, the recomputed graph differs from the saved one and torch raises
``CheckpointError`` (issue 14 item 6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters_local.training.loop import train
from adapters_local.training.settings import BottleneckOptions, LoraOptions, TrainSettings


def _weights(folder: Path, name: str) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(folder / name))


def _settings(method: str, data: Path, out: Path, **overrides: Any) -> TrainSettings:
    chosen: dict[str, Any] = {
        "steps": 3, "lr": 1e-2, "row_len": 128, "rows_per_step": 2, "warmup_steps": 1,
        "device": "cpu",
        "bottleneck": BottleneckOptions(style="houlsby", reduction_factor=4),
        "lora": LoraOptions(rank=4, alpha=8, targets=("q_proj", "v_proj", "down_proj")),
        **overrides,
    }  # fmt: skip
    kind = "bottleneck" if method == "bottleneck" else "lora"
    return TrainSettings(method=kind, base="builtin", data=data, out=out, **chosen)


@pytest.mark.parametrize(
    ("method", "weights"),
    [("bottleneck", "bottleneck.safetensors"), ("lora", "adapter_model.safetensors")],
)
def test_checkpointed_training_matches_plain_training(
    method: str, weights: str, task_data: dict[str, Any], tmp_path: Path
) -> None:
    import torch

    data = tmp_path / "small.jsonl"
    data.write_text("".join(task_data["rot13"].train.read_text().splitlines(True)[:24]))
    runs = {}
    for checkpointing in (False, True):
        out = tmp_path / f"ckpt-{checkpointing}"
        report = train(_settings(method, data, out, gradient_checkpointing=checkpointing))
        assert report["steps_done"] == 3
        runs[checkpointing] = _weights(out, weights)
    assert runs[True].keys() == runs[False].keys()
    for key, plain in runs[False].items():
        torch.testing.assert_close(runs[True][key], plain, rtol=1e-5, atol=1e-6)
    # Training moved the weights, so the comparison above compares trained adapters.
    train(_settings(method, data, tmp_path / "fresh", steps=1, lr=1e-12))
    untrained = _weights(tmp_path / "fresh", weights)
    assert any(not torch.allclose(untrained[k], v) for k, v in runs[True].items())
