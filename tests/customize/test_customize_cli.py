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
from typer.testing import CliRunner

from customize.cli import app, variants_app
from tests.customize.customize_test_env import Aws


def _leaves(cli: typer.Typer) -> list[tuple[typer.Typer, list[str], Any]]:
    """Every runnable command, subcommands of groups included, with its argv path."""
    found = []

    def walk(group: Any, path: list[str]) -> None:
        for name, command in group.commands.items():
            found.append((cli, [*path, name], command))
            if hasattr(command, "commands"):  # a group (typer vendors its own click)
                walk(command, [*path, name])

    walk(typer.main.get_group(cli), [])
    return found


COMMANDS = _leaves(app) + _leaves(variants_app)
GROUPS_WITHOUT_JSON = {"deployments", "models", "imports"}  # only their subcommands print


def test_all_expected_commands_exist() -> None:
    assert {" ".join(path) for _, path, _ in _leaves(app)} == {
        "validate", "convert", "estimate", "submit", "status", "list", "stop", "import",
        "import-check", "provision", "provision status", "provision list", "provision update",
        "provision delete", "deployments", "deployments list", "deployments update",
        "deployments delete", "models", "models list", "models delete", "imports",
        "imports list", "imports status",
    }  # fmt: skip
    assert set(typer.main.get_group(variants_app).commands) == {"add", "list", "show", "remove"}


@pytest.mark.parametrize(
    ("cli", "path", "command"), COMMANDS, ids=[" ".join(path) for _, path, _ in COMMANDS]
)
def test_help(cli: typer.Typer, path: list[str], command: Any, runner: CliRunner) -> None:
    result = runner.invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout and "--help" in result.stdout
    assert command.help and command.help.split()[0] in result.stdout
    if " ".join(path) not in GROUPS_WITHOUT_JSON:
        assert "--json" in result.stdout


def test_provision_help_does_not_claim_imported_models_need_it(runner: CliRunner) -> None:
    # Issue 13 item 7: the help said "Custom (or imported) model ARN to serve".
    result = runner.invoke(app, ["provision", "--help"])
    text = " ".join(result.stdout.split())
    assert "(or imported)" not in text
    assert "Imported models need no provisioning" in text


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
