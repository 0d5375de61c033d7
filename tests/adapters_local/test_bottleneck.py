"""Bottleneck adapters: both styles learn a new task; KV cache on and off give the same output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters_local.bottleneck.config import BottleneckConfig
from adapters_local.bottleneck.modules import BottleneckAdapter, BottleneckHost
from adapters_local.cli import train_app
from adapters_local.models.loading import BUILTIN_DIR, load_model, load_tokenizer
from adapters_local.training.evaluate import Reference, exact_match, user_turn
from tests.adapters_local.conftest import scored_split

LEARNED = 0.7  # held-out exact match after 300 CPU steps; see the report for measured figures


def _refs(data: Any) -> list[Reference]:
    return [Reference(user_turn(i.prompt), i.answer) for i in data.eval_items]


def _with_adapter(folder: Path) -> tuple[Any, BottleneckHost]:
    model = load_model(BUILTIN_DIR, "cpu").eval()
    host = BottleneckHost(model)
    host.add("x", BottleneckAdapter.load(folder))
    return model, host


@pytest.fixture(scope="module")
def pfeiffer(task_data: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained through the CLI."""
    data = task_data["rot13"]
    out = tmp_path_factory.mktemp("bn-pfeiffer")
    result = CliRunner().invoke(
        train_app,
        ["bottleneck", "--style", "pfeiffer", "--reduction-factor", "2",
         "--data", str(data.train), "--eval", str(data.eval), "--out", str(out),
         "--steps", "300", "--lr", "1e-2", "--row-len", "256", "--rows-per-step", "4",
         "--eval-every", "100"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_pfeiffer_learns_rot13(task_data: dict[str, Any], pfeiffer: Path) -> None:
    data = task_data["rot13"]
    tokenizer = load_tokenizer(BUILTIN_DIR)
    before = exact_match(load_model(BUILTIN_DIR, "cpu"), tokenizer, _refs(data))
    model, host = _with_adapter(pfeiffer)
    with host.activate("x", len(data.eval_items)):
        after = exact_match(model, tokenizer, _refs(data), batch_size=len(data.eval_items))
    report = json.loads((pfeiffer / "report.json").read_text())
    print(f"pfeiffer rot13: before {before:.2f} after {after:.2f}", report["eval_loss_curve"])
    assert before <= 0.05 and after >= LEARNED
    test_refs = scored_split(data)
    with host.activate("x", len(test_refs)):
        scored = exact_match(model, tokenizer, test_refs, batch_size=len(test_refs))
    assert report["test_exact_match"] == pytest.approx(scored)
    assert BottleneckConfig.load(pfeiffer).sites == ("layer",)


@pytest.mark.slow
def test_houlsby_learns_shift1(task_data: dict[str, Any], bottleneck_houlsby: Any) -> None:
    data = task_data["shift1"]
    before = exact_match(load_model(BUILTIN_DIR, "cpu"), load_tokenizer(BUILTIN_DIR), _refs(data))
    report = bottleneck_houlsby.report
    print(f"houlsby shift1: before {before:.2f} after {report['test_exact_match']:.2f}")
    assert before <= 0.05 and report["test_exact_match"] >= LEARNED
    assert BottleneckConfig.load(bottleneck_houlsby.folder).sites == ("attn", "mlp")


def test_fresh_adapter_starts_at_the_base_model() -> None:
    import torch

    model = load_model(BUILTIN_DIR, "cpu").eval()
    host = BottleneckHost(model)
    config = BottleneckConfig("houlsby", hidden_size=128, num_layers=4, reduction_factor=4)
    host.add("fresh", BottleneckAdapter(config))
    inputs = torch.tensor([[3, 40, 41, 42, 5, 4]])
    with torch.no_grad():
        plain = model(input_ids=inputs).logits
        with host.activate("fresh", 1):
            adapted = model(input_ids=inputs).logits
    assert 0 < (plain - adapted).abs().max().item() < 1e-2


@pytest.mark.parametrize("which", ["pfeiffer", "houlsby"])
def test_generation_with_and_without_kv_cache_is_identical(
    which: str, request: pytest.FixtureRequest, task_data: dict[str, Any]
) -> None:
    import torch

    folder = request.getfixturevalue(which) if which == "pfeiffer" else None
    if folder is None:
        folder = request.getfixturevalue("bottleneck_houlsby").folder
    model, host = _with_adapter(folder)
    tokenizer = load_tokenizer(BUILTIN_DIR)
    from adapters_local.data.chat_format import prompt_ids

    prompts = [prompt_ids(tokenizer, user_turn(i.prompt)) for i in task_data["rot13"].eval_items]
    outputs = {}
    for use_cache in (True, False):
        rows = []
        with host.activate("x", 1), torch.no_grad():
            for ids in prompts[:12]:
                out = model.generate(
                    input_ids=torch.tensor([ids]),
                    max_new_tokens=12,
                    do_sample=False,
                    use_cache=use_cache,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
                rows.append(out[0, len(ids) :].tolist())
        outputs[use_cache] = rows
    assert outputs[True] == outputs[False]
    # And the adapter is active in both: outputs differ from the base model's.
    with torch.no_grad():
        base = model.generate(
            input_ids=torch.tensor([prompts[0]]), max_new_tokens=12, do_sample=False,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )  # fmt: skip
    assert base[0, len(prompts[0]) :].tolist() != outputs[True][0]
