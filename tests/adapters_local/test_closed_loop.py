"""Acceptance (issue 12 item 3): the offline closed loop, end to end, with the CLI.

``strata train lora`` (the shared ``lora_rot13`` fixture: defaults, the built-in model, a task
it cannot do) → ``strata variants add --run`` → ``strata ab create`` 50/50 → ``strata ab replay``
of the held-out set with an ``exact`` grader → verdict ``candidate better`` → ``strata ab
promote`` → every later call of the alias reaches the candidate; the lineage shows each step.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.cli import _mount, app
from gateway.settings import Settings
from tests.gateway.harness import TEST_KEY, serve

HELD_OUT = 40  # rows replayed per arm: enough for the verdict, cheap to decode on CPU
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def cli(*args: str) -> str:
    if not any(group.name == "ab" for group in app.registered_groups):
        _mount()
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def gateway(
    tmp_path: Path, lora_rot13: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    home = tmp_path / "home"
    monkeypatch.setenv("STRATA_HOME", str(home))
    config = tmp_path / "strata.yaml"
    config.write_text(
        f"""
aliases:
  rot: local:builtin
local:
  bases:
    builtin: {{path: builtin, adapters: {{rot13: "{lora_rot13.folder}"}}}}
""",
        encoding="utf-8",
    )
    settings = Settings(home=home, config=config, dev_key=TEST_KEY)  # type: ignore[call-arg]
    with serve(create_app(settings)) as url:
        yield url, home


@pytest.mark.slow
@pytest.mark.timeout(1800)  # trains the shared adapter first when run alone (minutes on 2 cores)
def test_offline_loop_train_compare_promote(
    gateway: tuple[str, Path], task_data: dict[str, Any], lora_rot13: Any, tmp_path: Path
) -> None:
    url, home = gateway
    where = ["--url", url, "--key", TEST_KEY]
    held_out = tmp_path / "held-out.jsonl"
    lines = task_data["rot13"].eval.read_text().splitlines()[:HELD_OUT]
    held_out.write_text("\n".join(lines) + "\n")

    cli(
        "variants",
        "add",
        "rot13-v1",
        "--target",
        "local:builtin@rot13",
        "--run",
        str(lora_rot13.folder),
    )
    cli(
        "ab",
        "create",
        "rot13-ab",
        "--alias",
        "rot",
        "--control",
        "local:builtin",
        "--candidate",
        "variant:rot13-v1",
        "--split",
        "50/50",
        "--sticky-by",
        "request",
        "--metric",
        "grader:exact",
        "--min-samples",
        "20",
        *where,
    )
    replayed = cli(
        "ab", "replay", "rot13-ab", "--dataset", str(held_out), "--concurrency", "4", *where
    )
    print(replayed)
    assert "rot13-ab: candidate better" in replayed
    assert f"control: {HELD_OUT} calls, 0 errors, {HELD_OUT} graded" in replayed
    assert "outcome over time (grader:exact" in replayed

    doc = json.loads(cli("ab", "status", "rot13-ab", "--json", *where))
    assert doc["verdict"]["kind"] == "candidate better"
    arms = {a["name"]: a for a in doc["arms"]}
    # The base fails the task; the adapter learnt it.
    assert arms["control"]["outcome_mean"] <= 0.05 and arms["candidate"]["outcome_mean"] >= 0.8
    assert doc["forced"] == 2 * HELD_OUT and not doc["sample_ratio"]["mismatch"]

    promoted = cli("ab", "promote", "rot13-ab", *where)
    assert "promoted candidate" in promoted

    # Afterwards every call of the alias reaches the candidate, whoever sends it.
    rows = [json.loads(line) for line in lines[:20]]
    right = 0
    for i, row in enumerate(rows):
        r = httpx.post(
            url + "/v1/chat/completions",
            json={
                "model": "rot",
                "messages": [{"role": "user", "content": row["prompt"]}],
                "user": f"user-{i}",
                "temperature": 0,
            },
            headers=AUTH,
            timeout=120,
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-strata-variant"] == "candidate"
        assert r.headers["x-strata-target"] == "local:builtin@rot13"
        right += r.json()["choices"][0]["message"]["content"].strip() == row["completion"]
    assert right >= 0.8 * len(rows)  # the adapter answering, not the base

    lineage = json.loads(cli("ab", "status", "rot13-ab", "--json", *where))["lineage"]
    stages = [step["stage"] for step in lineage]
    assert stages == ["dataset", "training_run", "variant", "experiment", "promote"], lineage
    assert lineage[0]["ref"] == f"sha256:{lora_rot13.report['data_sha256']}"
    assert lineage[2]["target"] == "local:builtin@rot13"
    assert lineage[4]["weights"] == {"control": 0.0, "candidate": 100.0}

    with sqlite3.connect(home / "accounting.sqlite") as conn:
        graded = conn.execute(
            "SELECT COUNT(*) FROM grades WHERE grader = 'exact' AND source = 'replay'"
        ).fetchone()[0]
    assert graded == 2 * HELD_OUT
