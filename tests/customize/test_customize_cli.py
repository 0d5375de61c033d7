"""Every command answers --help; the CLI module stays cheap to import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from customize_test_env import Aws
from typer.testing import CliRunner

from customize.cli import app, variants_app

COMMANDS = [(app, name) for name in typer.main.get_group(app).commands] + [
    (variants_app, name) for name in typer.main.get_group(variants_app).commands
]


def test_all_expected_commands_exist() -> None:
    assert set(typer.main.get_group(app).commands) == {
        "validate", "convert", "submit", "status", "list", "stop", "provision", "import",
        "import-check",
    }  # fmt: skip
    assert set(typer.main.get_group(variants_app).commands) == {"add", "list", "show", "remove"}


@pytest.mark.parametrize(("cli", "name"), COMMANDS, ids=[name for _, name in COMMANDS])
def test_help(cli: typer.Typer, name: str, runner: CliRunner) -> None:
    result = runner.invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout and "--help" in result.stdout
    command = typer.main.get_group(cli).commands[name]
    assert command.help and command.help.split()[0] in result.stdout
    assert "--json" in result.stdout


STRATA = Path(sys.executable).with_name("strata")


@pytest.mark.skipif(not STRATA.exists(), reason="the strata console script is not installed")
def test_commands_work_through_the_strata_console_script(tmp_path: Path, aws: Aws) -> None:
    record = {"prompt": "Summarize: the cat sat.", "completion": "A cat sat."}
    data = tmp_path / "train.jsonl"
    data.write_text((json.dumps(record) + "\n") * 40)

    def strata(*args: str) -> Any:
        done = subprocess.run(
            [str(STRATA), *args, "--json"], capture_output=True, text=True, env=os.environ.copy()
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    assert (
        strata("customize", "validate", str(data), "--base", "amazon.titan-text-lite-v1:0:4k")["ok"]
        is True
    )
    submitted = strata(
        "customize", "submit", "--base", "amazon.titan-text-lite-v1:0:4k", "--data", str(data),
        "--output", f"s3://{aws.bucket}/titan", "--role-arn", aws.role_arn, "--hp", "batchSize=8",
    )  # fmt: skip
    assert aws.moto_bedrock().model_customization_jobs[submitted["job_name"]].hyper_parameters == {
        "batchSize": "8"
    }
    strata("variants", "add", "titan-lora", "--target", "local:tiny@titan-lora")
    assert [v["name"] for v in strata("variants", "list")["variants"]] == ["titan-lora"]
