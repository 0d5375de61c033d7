"""LoRA fine-tuning teaches the built-in model a task it cannot do (rot13)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters_local.cli import train_app
from adapters_local.models.loading import BUILTIN_DIR, load_model, load_tokenizer
from adapters_local.training.evaluate import Reference, exact_match, user_turn


def _refs(data: Any) -> list[Reference]:
    return [Reference(user_turn(i.prompt), i.answer) for i in data.eval_items]


@pytest.mark.slow
def test_lora_defaults_learn_rot13(task_data: dict[str, Any], lora_rot13: Any) -> None:
    """Acceptance (issue 14 item 1): `strata train lora` with no hyper-parameter flags learns.

    ``lora_rot13`` is trained through the CLI with only --data, --test and --out; the test file's
    words never occur in the training file, and it plays no part in choosing the checkpoint."""
    from peft import PeftModel

    data = task_data["rot13"]
    tokenizer = load_tokenizer(BUILTIN_DIR)
    before = exact_match(load_model(BUILTIN_DIR, "cpu"), tokenizer, _refs(data))
    tuned = PeftModel.from_pretrained(load_model(BUILTIN_DIR, "cpu"), str(lora_rot13.folder))
    after = exact_match(tuned, tokenizer, _refs(data))
    report = lora_rot13.report
    print(f"rot13 held-out exact match: before {before:.2f}, after {after:.2f}")
    print("eval loss curve:", report["eval_loss_curve"], "steps", report["steps_done"])
    assert before <= 0.05
    assert after >= 0.9
    assert report["test_exact_match"] == pytest.approx(after)
    assert report["held_out"]["test"] == {"source": data.eval.name, "examples": len(_refs(data))}
    # The effective settings are shown before the first step.
    table = lora_rot13.output.split("saved adapter")[0]
    assert "effective settings" in table and "tiny" in table and "all-linear" in table
    assert f"test exact match {after:.3f}" in lora_rot13.output


def test_report_describes_the_run(task_data: dict[str, Any], lora_rot13: Any) -> None:
    report = json.loads((lora_rot13.folder / "report.json").read_text())
    data = task_data["rot13"]
    assert report["data_sha256"] == hashlib.sha256(data.train.read_bytes()).hexdigest()
    assert report["recipe"] == "tiny" and report["base_parameters"] < 100e6
    options = report["hyper_parameters"]["options"]
    assert options["rank"] == 16 and options["targets"] == ["all-linear"]
    assert report["hyper_parameters"]["lr"] == 5e-3
    # 10% of the training file was carved off to pick the checkpoint; the rest was trained on.
    validation = report["held_out"]["validation"]
    assert validation["source"] == f"carved from {data.train.name}"
    assert validation["examples"] == 250 and report["examples"] == 2250
    assert not report["interrupted"] and report["steps_done"] <= report["steps_planned"]
    evals = [loss for _, loss in report["eval_loss_curve"]]
    assert len(evals) >= 3 and min(evals) < evals[0] / 10
    assert report["best_eval_loss"] == pytest.approx(min(evals), abs=1e-4)
    assert report["padding_fraction"] < 0.05  # packing: almost no padding
    assert report["tokens_per_second"] > 0 and report["peak_memory"]["process_peak_rss_mb"] > 0
    assert (lora_rot13.folder / "adapter_model.safetensors").is_file()


def test_cli_trains_from_claude_style_messages(tmp_path: Path) -> None:
    lines = [
        {
            "system": "You encode words.",
            "messages": [
                {"role": "user", "content": f"Encode: {w}"},
                {"role": "assistant", "content": w.upper()},
            ],
        }
        for w in ("abc", "hello", "zzz", "query", "lorem", "ipsum")
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "run"
    result = CliRunner().invoke(
        train_app,
        [
            "lora",
            "--data",
            str(data),
            "--eval",
            str(data),
            "--out",
            str(out),
            "--steps",
            "3",
            "--row-len",
            "128",
            "--rows-per-step",
            "2",
            "--eval-every",
            "2",
            "--lr",
            "1e-3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "saved adapter" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["steps_done"] == 3 and report["examples"] == 6
    assert [s for s, _ in report["eval_loss_curve"]] == [2, 3]


def test_cli_reports_bad_data_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A terminal wide enough for the path: rich wraps at 80 columns, inside the file name
    # when the temp folder is deep (pytest-xdist adds popen-gwN/ to it).
    monkeypatch.setenv("COLUMNS", "200")
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "only"}\n')
    result = CliRunner().invoke(
        train_app, ["lora", "--data", str(data), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "bad.jsonl:1" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_ctrl_c_leaves_a_usable_checkpoint_and_resume_finishes(
    task_data: dict[str, Any], tmp_path: Path
) -> None:
    data = task_data["rot13"]
    out = tmp_path / "run"
    args = [
        "lora",
        "--data",
        str(data.train),
        "--eval",
        str(data.eval),
        "--out",
        str(out),
        "--steps",
        "60",
        "--row-len",
        "256",
        "--rows-per-step",
        "2",
        "--eval-every",
        "5",
        "--lr",
        "5e-3",
        "--threads",
        "1",
        "--patience",
        "0",
    ]
    code = "import sys; from adapters_local.cli import train_app; train_app(sys.argv[1:])"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        marker = out / "checkpoint" / "state.pt"
        while not marker.exists() and process.poll() is None:
            subprocess.run(["sleep", "0.2"], check=True)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    interrupted = json.loads((out / "report.json").read_text())
    assert interrupted["interrupted"] and 0 < interrupted["steps_done"] < 60
    # The adapter left behind loads on its own.
    from peft import PeftModel

    PeftModel.from_pretrained(load_model(BUILTIN_DIR, "cpu"), str(out))

    resumed = CliRunner().invoke(train_app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    final = json.loads((out / "report.json").read_text())
    assert final["steps_done"] == 60 and not final["interrupted"]
    # One run's history: the curves continue the interrupted run's instead of restarting.
    assert [s for s, _ in final["train_loss_curve"]] == list(range(10, 61, 10))
    assert [s for s, _ in final["eval_loss_curve"]] == list(range(5, 61, 5))
    assert final["eval_loss_curve"][0] == interrupted["eval_loss_curve"][0]


def test_early_stopping_ends_the_run_when_eval_loss_stalls(
    task_data: dict[str, Any], tmp_path: Path
) -> None:
    """With a vanishing learning rate the eval loss cannot improve after the first eval."""
    from adapters_local.training.loop import train
    from adapters_local.training.settings import TrainSettings

    data = task_data["rot13"]
    small = tmp_path / "small.jsonl"
    small.write_text("".join(data.eval.read_text().splitlines(keepends=True)[:8]))
    report = train(
        TrainSettings(
            method="lora", base="builtin", data=small, eval_data=small, out=tmp_path / "o",
            steps=50, lr=1e-12, row_len=128, rows_per_step=1, eval_every=1, patience=2,
            max_eval_items=4,
        )
    )  # fmt: skip
    assert report["stopped_early"]
    assert report["steps_done"] == 3
    assert [s for s, _ in report["eval_loss_curve"]] == [1, 2, 3]
