"""``strata keys``, ``strata tenants`` and ``strata usage`` against the accounting database."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.accounting.keys import DatabaseKeys
from gateway.accounting.ledger import Ledger
from gateway.accounting.store import Database
from gateway.cli import _mount, app
from tests.accounting.test_ledger import record


@pytest.fixture(scope="module")
def cli() -> CliRunner:
    _mount()
    return CliRunner()


def run(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_keys_create_list_revoke(cli: CliRunner, isolated_env: Path) -> None:
    created = json.loads(
        run(
            cli,
            "keys",
            "create",
            "--tenant",
            "acme",
            "--budget-usd",
            "50",
            "--rpm",
            "600",
            "--tpm",
            "200000",
            "--models",
            "chat,default",
            "--json",
        )
    )
    assert created["key"].startswith("sk-strata-") and created["budget_usd"] == "50"
    assert created["models"] == ["chat", "default"] and created["rpm"] == 600
    listed = json.loads(run(cli, "keys", "list", "--json"))
    assert [k["id"] for k in listed] == [created["id"]]
    assert created["key"] not in run(cli, "keys", "list")  # never shown again
    db = Database(None, isolated_env)
    keys = DatabaseKeys(db)
    keys.reload()
    assert keys.authenticate(created["key"]) is not None
    run(cli, "keys", "revoke", created["id"])
    keys.reload()
    assert keys.authenticate(created["key"]) is None
    assert json.loads(run(cli, "keys", "list", "--json"))[0]["revoked_at"] is not None


def test_bad_input_names_the_option(cli: CliRunner) -> None:
    result = cli.invoke(app, ["keys", "create", "--tenant", "acme", "--rpm", "0"])
    assert result.exit_code == 2 and "rpm" in result.output
    result = cli.invoke(app, ["keys", "revoke", "key_missing"])
    assert result.exit_code == 2 and "key_missing" in result.output
    result = cli.invoke(app, ["usage", "--group-by", "colour"])
    assert result.exit_code == 2 and "group_by" in result.output


def test_usage_groups_the_ledger(cli: CliRunner, isolated_env: Path) -> None:
    db = Database(None, isolated_env)
    db.migrate()
    ledger = Ledger(db, isolated_env, flush_interval_s=0.01)
    ledger.start()
    now = time.time()
    for i in range(1, 11):
        ledger.record(
            record(
                i,
                tenant="acme" if i <= 6 else "globex",
                ts=now,
                status=200 if i != 3 else 502,
                latency_ms=float(i),
            )
        )
    assert ledger.flush()
    ledger.close()
    rows = {r["group"]: r for r in json.loads(run(cli, "usage", "--group-by", "tenant", "--json"))}
    assert rows["acme"]["requests"] == 6 and rows["acme"]["errors"] == 1
    assert rows["acme"]["input_tokens"] == sum(range(1, 7))
    assert rows["acme"]["cost_usd"] == "0.000000021"  # 21,000 pico-USD
    assert rows["acme"]["p50_latency_ms"] in (3.0, 4.0)
    assert rows["globex"]["p95_latency_ms"] == 10.0
    assert abs(rows["acme"]["error_rate"] - 1 / 6) < 1e-6
    later = json.loads(run(cli, "usage", "--since", str(now + 10), "--json"))
    assert later == []
    day = json.loads(run(cli, "usage", "--group-by", "day", "--json"))
    assert len(day) == 1 and day[0]["requests"] == 10
    assert "acme" in run(cli, "usage")
