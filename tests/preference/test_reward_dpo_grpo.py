"""Acceptance 1 and 2 on the built-in model, CPU, tiny step counts (each run tens of seconds):
the synthetic preference task's reward model, DPO with and without its SFT anchor, GRPO with a
programmatic reward; the reports' figures are what is asserted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters_local.preference.pairs import write_synthetic
from gateway.cli import _mount, app

DPO_STEPS = "60"  # lr 1e-3 and --sft-weight 2 are the defaults


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_synthetic(tmp_path_factory.mktemp("pref"), train=800, test=100)


def _train(args: list[str]) -> dict[str, Any]:
    _mount()
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 0, result.output
    out = Path(args[args.index("--out") + 1])
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    report["_output"] = result.output
    return report


@pytest.fixture(scope="module")
def reward_model(task: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rm")
    report = _train(
        ["reward", "--data", str(task["pairs"]), "--test", str(task["test_pairs"]),
         "--out", str(out), "--steps", "20"]
    )  # fmt: skip
    # Acceptance 1: held-out pairwise accuracy of at least 90%.
    assert report["held_out_pairwise_accuracy"] >= 0.9, report
    assert report["held_out_pairs"] == 100 and report["steps_done"] == 20
    assert "held-out pairwise accuracy" in report["_output"]
    return out


@pytest.mark.slow
def test_reward_model_scores_the_preferred_style_higher_as_a_grader(
    reward_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters_local.preference import scorer

    monkeypatch.setenv(scorer.ENV, str(reward_model))
    scorer.scorer_for.cache_clear()
    assert scorer.score("Reverse: strata", "atarts!") > scorer.score("Reverse: strata", "atarts")
    assert scorer.score("Copy: gateway", "gateway!") > scorer.score("Copy: gateway", "gateway")
    chat = [{"role": "user", "content": "Sort letters: dcba"}]
    styled, plain = scorer.grade(chat, "abcd!", None), scorer.grade(chat, "abcd", None)
    assert 0.0 <= plain < styled <= 1.0
    monkeypatch.delenv(scorer.ENV)
    with pytest.raises(ValueError, match="STRATA_REWARD_MODEL"):
        scorer.score("Copy: a", "a")


@pytest.fixture(scope="module")
def dpo_runs(
    task: dict[str, Path], reward_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    runs = {}
    for name, weight in (("rpo", "2.0"), ("plain", "0")):
        out = tmp_path_factory.mktemp(f"dpo-{name}")
        runs[name] = _train(
            ["dpo", "--data", str(task["pairs"]), "--test", str(task["prompts"]),
             "--out", str(out), "--steps", DPO_STEPS, "--sft-weight", weight,
             "--judge", str(reward_model)]
        )  # fmt: skip
        runs[name]["_out"] = str(out)
    return runs


@pytest.mark.slow
def test_dpo_with_the_sft_anchor_learns_the_style_and_keeps_the_task(
    dpo_runs: dict[str, dict[str, Any]],
) -> None:
    report = dpo_runs["rpo"]
    before, after = report["before"], report["after"]
    assert before["preferred_style_rate"] <= 0.05  # the base never writes the mark
    assert after["preferred_style_rate"] >= 0.8, report["sample_answers"]
    assert after["task_exact_match"] >= before["task_exact_match"] - 0.05, report["sample_answers"]
    assert report["win_rate_vs_reference"] > 0.5
    assert report["win_rate_judged_by"].startswith("reward model")
    assert report["kl_to_reference"] > 0
    assert report["hyper_parameters"]["sft_weight"] == 2.0
    assert report["train_loss_curve"] and report["reward_margin_curve"]


@pytest.mark.slow
def test_dpo_without_the_sft_term_degrades(dpo_runs: dict[str, dict[str, Any]]) -> None:
    plain, rpo = dpo_runs["plain"], dpo_runs["rpo"]
    assert plain["hyper_parameters"]["sft_weight"] == 0
    # Same steps and rate: without the NLL term greedy answers fall apart.
    assert plain["after"]["task_exact_match"] < rpo["after"]["task_exact_match"] - 0.3
    assert plain["after"]["task_exact_match"] < plain["before"]["task_exact_match"] - 0.3


@pytest.mark.slow
def test_dpo_reference_is_the_base_with_the_adapter_off_not_a_copy(
    dpo_runs: dict[str, dict[str, Any]],
) -> None:
    report = dpo_runs["rpo"]
    memory = report["parameters"]
    assert memory["reference_model"] is False
    # The base once plus the LoRA: a second model copy would double the base's count.
    assert memory["total_parameters"] == report["base_parameters"] + memory["trainable_parameters"]
    assert 0 < memory["trainable_parameters"] < report["base_parameters"]


@pytest.mark.slow
def test_dpo_adapter_exports_like_a_lora(
    dpo_runs: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    _mount()
    out = tmp_path / "export"
    result = CliRunner().invoke(
        app, ["export", "--adapter", dpo_runs["rpo"]["_out"], "--out", str(out), "--dtype", "fp32"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "config.json").is_file() and list(out.glob("*.safetensors"))


@pytest.mark.slow
def test_dpo_from_a_start_adapter_keeps_only_an_adapter_copy_as_reference(
    task: dict[str, Path], dpo_runs: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    report = _train(
        ["dpo", "--data", str(task["pairs"]), "--adapter", dpo_runs["plain"]["_out"],
         "--out", str(tmp_path / "again"), "--steps", "2"]
    )  # fmt: skip
    memory = report["parameters"]
    assert report["reference"] == "frozen copy of the start adapter's weights"
    # base + trained adapter + its frozen copy: twice the adapter, once the base.
    assert (
        memory["total_parameters"] == report["base_parameters"] + 2 * memory["trainable_parameters"]
    )
    saved = json.loads((tmp_path / "again" / "adapter_config.json").read_text())
    assert saved["peft_type"] == "LORA" and not (tmp_path / "again" / "ref").exists()


@pytest.mark.slow
def test_grpo_raises_held_out_reward_with_bounded_kl(task: dict[str, Path], tmp_path: Path) -> None:
    report = _train(
        ["grpo", "--data", str(task["long_prompts"]), "--test", str(task["long_test"]),
         "--out", str(tmp_path / "grpo"), "--steps", "30", "--beta", "0.04",
         "--reward", "match", "--lr", "2e-3"]
    )  # fmt: skip
    held = report["held_out_mean_reward"]
    assert held["after"] > held["before"] + 0.01, report["held_out_reward_curve"]
    assert report["win_rate_vs_reference"] > 0.5
    # Bounded: per-token KL (trl's, every step) stays small; summed over an answer, a few nats.
    assert max(kl for _, kl in report["train_kl_curve"]) < 5
    assert 0 < report["kl_to_reference"] < 20
    assert report["held_out_reward_curve"][0][0] == 0 and len(report["held_out_reward_curve"]) >= 3
    assert report["train_kl_curve"] and report["train_reward_curve"]


def test_bad_options_are_refused_before_loading_anything(tmp_path: Path) -> None:
    _mount()
    missing = CliRunner().invoke(
        app, ["train", "dpo", "--data", str(tmp_path / "none.jsonl"), "--out", str(tmp_path)]
    )
    assert missing.exit_code == 2 and "no such file" in " ".join(missing.output.split())
    beta = CliRunner().invoke(
        app, ["train", "dpo", "--data", "x", "--out", str(tmp_path), "--beta", "0"]
    )
    assert beta.exit_code == 2 and "beta must be positive" in " ".join(beta.output.split())
    groups = CliRunner().invoke(
        app, ["train", "grpo", "--data", "x", "--out", str(tmp_path), "--batch-size", "6"]
    )
    assert groups.exit_code == 2 and "multiple of --generations" in " ".join(groups.output.split())


@pytest.mark.slow
def test_a_reward_model_folder_is_a_live_grader(reward_model: Path, tmp_path: Path) -> None:
    """`kind: reward:FOLDER` in strata.yaml's graders: the trained model scores live answers."""
    import asyncio

    from gateway.experiments.graders.base import Sample
    from gateway.experiments.graders.config import GraderSection, build_grader

    section = GraderSection.model_validate({"kind": f"reward:{reward_model}"})
    grader = build_grader("rm", section, None)
    chat = [{"role": "user", "content": "Reverse: strata"}]

    async def both() -> tuple[float, float]:
        styled = await grader.grade(Sample("r1", chat, "atarts!"))
        plain = await grader.grade(Sample("r2", chat, "atarts"))
        return styled.score, plain.score

    styled, plain = asyncio.run(both())
    assert 0.0 <= plain < styled <= 1.0
    with pytest.raises(ValueError, match=r"folder: .*not a reward model folder"):
        build_grader("rm", GraderSection.model_validate({"kind": f"reward:{tmp_path}"}), None)
