"""Acceptance 5 on two ``strata serve`` processes sharing PostgreSQL (a fresh schema): an
experiment created and promoted through one replica is in force on the other, which learns it
from its snapshot poll; and a ramp that both replicas advance takes each step exactly once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli import _mount, app
from tests.accounting.conftest import pg_schema
from tests.accounting.gateways import ADMIN_KEY, replicas, write_config
from tests.experiments.traffic import Traffic
from tests.fakes.bedrock_faults import delayed
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
# An experiment of strata.yaml (put first among the aliases): seeded into the shared store.
SEEDED = """
  seeded:
    experiment:
      sticky_by: request
      variants:
        control: {target: "bedrock:test-model", weight: 50}
        tuned: {target: "bedrock:model-t", weight: 50}
"""


def reply(request: FakeRequest) -> Reply:
    return Reply(text=f"answer from {request.model_id}", input_tokens=3, output_tokens=5)


@dataclass
class Pair:
    a: str
    b: str

    def ab(self, url: str, *args: str) -> str:
        _mount()
        out = CliRunner().invoke(app, ["ab", *args, "--url", url, "--key", ADMIN_KEY])
        assert out.exit_code == 0, out.output
        return out.output

    def arm(self, url: str, model: str) -> str:
        r = httpx.post(
            url + "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            headers=ADMIN,
            timeout=60,
        )
        assert r.status_code == 200, r.text
        return r.headers.get("x-strata-variant", "")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp: Path = tmp_path_factory.mktemp("ab-replicas")
    with pg_schema() as pg_url, BedrockWireServer(delayed(0.05, reply)) as wire:
        config = write_config(tmp / "strata.yaml", wire.endpoint_url)
        text = config.read_text(encoding="utf-8").replace("aliases:\n", "aliases:" + SEEDED, 1)
        config.write_text(text, encoding="utf-8")
        env = {"STRATA_DATABASE_URL": pg_url, "STRATA_EXPERIMENTS_REFRESH_S": "0.5"}
        with replicas(tmp, config, env) as (a, b):
            yield Pair(a.url, b.url)


def _poll(check: Callable[[], bool], what: str) -> float:
    """Seconds until ``check`` holds; a generous cap, not a timed assertion."""
    started = time.monotonic()
    while time.monotonic() - started < 120:
        if check():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"never: {what}")


def test_promotion_through_one_replica_is_in_force_on_the_other(pair: Pair) -> None:
    pair.ab(
        pair.a, "create", "chat-exp", "--alias", "chat", "--control", "bedrock:test-model",
        "--candidate", "bedrock:model-b", "--split", "50/50", "--sticky-by", "request",
    )  # fmt: skip
    # Created through A; B routes it once its poll saw the new revision.
    _poll(lambda: {pair.arm(pair.b, "chat") for _ in range(12)} == {"control", "candidate"},
          "B splits the alias")  # fmt: skip
    sent_at = time.monotonic()
    out = pair.ab(pair.a, "promote", "chat-exp", "--to", "candidate")
    answered_at = time.monotonic()
    assert out.startswith("chat-exp: promoted candidate")

    seen: list[tuple[float, str]] = []  # (sent, arm)

    def b_all_candidate() -> bool:
        sent = time.monotonic()
        seen.append((sent, pair.arm(pair.b, "chat")))
        return [arm for _, arm in seen[-5:]] == ["candidate"] * 5

    _poll(b_all_candidate, "B sends everything to the candidate")
    # When the first of the 5 consecutive candidate answers was sent: in force on B by then.
    print(
        f"\npromote through A: answered after {answered_at - sent_at:.2f} s; in force on B "
        f"<= {seen[-5][0] - sent_at:.2f} s after it was sent ({len(seen)} probes)"
    )
    assert all(pair.arm(pair.b, "chat") == "candidate" for _ in range(30))
    listed = httpx.get(f"{pair.b}/admin/experiments", headers=ADMIN, timeout=30).json()["data"]
    mine = next(d for d in listed if d["name"] == "chat-exp")
    assert mine["status"] == "promoted" and mine["shares"] == {"control": 0.0, "candidate": 100.0}


def test_reweighting_a_strata_yaml_experiment_reaches_the_other_replica(pair: Pair) -> None:
    # The defect: weights lived in the process a PUT was sent to, so B never saw it.
    assert {pair.arm(pair.b, "seeded") for _ in range(16)} == {"control", "tuned"}
    r = httpx.put(
        f"{pair.a}/admin/experiments/seeded",
        json={"weights": {"control": 0, "tuned": 100}},
        headers=ADMIN,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    recent: list[str] = []

    def b_all_tuned() -> bool:
        recent.append(pair.arm(pair.b, "seeded"))
        return recent[-5:] == ["tuned"] * 5

    _poll(b_all_tuned, "B sends everything to the tuned arm")
    shown = httpx.get(f"{pair.b}/admin/experiments/seeded", headers=ADMIN, timeout=30).json()
    assert shown["source"] == "config" and [e["kind"] for e in shown["events"]] == [
        "seed", "weights",
    ]  # fmt: skip


def _events(url: str, name: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/admin/experiments/{name}", headers=ADMIN, timeout=30)
    events: list[dict[str, Any]] = r.json()["events"]
    return events


def test_a_ramp_both_replicas_run_takes_each_step_once(pair: Pair) -> None:
    pair.ab(
        pair.a, "create", "other-exp", "--alias", "other", "--control", "bedrock:test-model",
        "--candidate", "bedrock:model-c", "--split", "90/10", "--sticky-by", "request",
        "--guardrail", "error_rate<+10pt",
    )  # fmt: skip
    with Traffic([pair.a, pair.b], ADMIN_KEY, "other", workers=6) as traffic:
        pair.ab(pair.b, "promote", "other-exp", "--ramp", "20,40,60,100", "--step-every", "0.3s")

        def finished() -> bool:
            return any(e["kind"] in ("promote", "rollback") for e in _events(pair.a, "other-exp"))

        _poll(finished, "the ramp ends")
    assert not traffic.failures, traffic.failures[:3]
    events = _events(pair.b, "other-exp")
    assert [e["kind"] for e in events] == ["create", "ramp", "step", "step", "promote"]
    assert [e["weights"]["candidate"] for e in events] == [10.0, 20.0, 40.0, 60.0, 100.0]
    assert [e["version"] for e in events] == [1, 2, 3, 4, 5]
    assert {e["actor"] for e in events[2:]} == {"gateway:ramp"}
    # Both replicas served the ramp's traffic.
    assert {s.url for s in traffic.served} == {pair.a, pair.b}
    status = json.loads(pair.ab(pair.a, "status", "other-exp", "--json"))
    assert status["status"] == "promoted"
    assert [s["stage"] for s in status["lineage"]] == [
        "experiment", "ramp", "step", "step", "promote",
    ]  # fmt: skip
