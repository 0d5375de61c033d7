"""Progressive promotion (acceptance 4): ``strata ab promote NAME --ramp … --step-every 3s``
raises the candidate's share step by step while its guardrails hold, and rolls back by itself,
with the reason and the statistics on record, when the candidate's latency turns 3x worse
mid-ramp (scripted in the Bedrock-wire fake). Real gateway, SQLite store, steady traffic."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from customize.variants.store import Variant, VariantStore
from gateway.app import create_app
from gateway.cli import _mount, app
from gateway.experiments.cli import render
from gateway.settings import Settings
from tests.experiments.traffic import Traffic
from tests.fakes.bedrock_faults import by_model, delayed
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Handler, Reply
from tests.gateway.harness import TEST_KEY, serve

ADMIN = {"Authorization": f"Bearer {TEST_KEY}"}
BASE_S = 0.2  # both arms' upstream latency, until the candidate's is made 3x worse


def reply(request: FakeRequest) -> Reply:
    return Reply(text=f"answer from {request.model_id}", input_tokens=3, output_tokens=5)


def latencies(candidate_s: float) -> Handler:
    return by_model({"model-tuned": delayed(candidate_s, reply)}, default=delayed(BASE_S, reply))


@dataclass
class Gateway:
    url: str
    home: Path
    wire: BedrockWireServer

    def ab(self, *args: str) -> str:
        _mount()
        out = CliRunner().invoke(app, ["ab", *args, "--url", self.url, "--key", TEST_KEY])
        assert out.exit_code == 0, out.output
        return out.output

    def show(self, name: str) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/admin/experiments/{name}", headers=ADMIN, timeout=30)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def until(self, name: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Poll the experiment until ``done`` holds (no timed assertion: a generous cap)."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            shown = self.show(name)
            if done(shown):
                return shown
            time.sleep(0.1)
        raise AssertionError(f"never reached: {self.show(name)}")


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    home = tmp_path / "home"
    VariantStore(home / "variants.sqlite").add(
        Variant(
            name="tuned-v1",
            target="bedrock:model-tuned",
            method="fine_tuning",
            lineage={"dataset": "sha256:abc", "training_job": "arn:aws:bedrock:job/1"},
        )
    )
    with BedrockWireServer(latencies(BASE_S)) as wire:
        config = tmp_path / "strata.yaml"
        config.write_text(
            f"""
aliases:
  support: "bedrock:model-base"
bedrock:
  region: us-east-1
  endpoint_url: {wire.endpoint_url}
""",
            encoding="utf-8",
        )
        settings = Settings(  # type: ignore[call-arg]
            home=home, config=config, dev_key=TEST_KEY, experiments_refresh_s=0.1
        )
        with serve(create_app(settings)) as url:
            yield Gateway(url, home, wire)


def _create(gateway: Gateway, name: str) -> None:
    gateway.ab(
        "create", name, "--alias", "support", "--control", "bedrock:model-base",
        "--candidate", "variant:tuned-v1", "--split", "90/10", "--sticky-by", "request",
        "--guardrail", "p95_latency_ms<+50%", "--guardrail", "error_rate<+5pt",
    )  # fmt: skip


def test_ramp_rolls_back_by_itself_when_the_candidate_turns_slow(gateway: Gateway) -> None:
    _create(gateway, "ramp-bad")
    with Traffic([gateway.url], TEST_KEY, "support"):
        # Steps of 3 s: the slowdown below lands well inside the 25% step, even when a quiet
        # machine serves the traffic fast (steps then advance as soon as their time is up).
        out = gateway.ab("promote", "ramp-bad", "--ramp", "10,25,50,100", "--step-every", "3s")
        assert out.startswith("ramp-bad: ramping candidate through 10,25,50,100% every 3 s")
        # Mid-ramp (the 25% step in force), the candidate's upstream becomes 3x slower.
        mid = gateway.until("ramp-bad", lambda s: (s["ramp_step"] or 0) >= 1)
        gateway.wire.handler = latencies(3 * BASE_S)  # at once: nothing slow in between
        assert mid["status"] == "running" and mid["shares"]["candidate"] == 25.0
        done = gateway.until("ramp-bad", lambda s: s["status"] != "running")
    assert done["status"] == "rolled_back"
    assert done["effective_weights"] == {"control": 100.0, "candidate": 0.0}
    kinds = [e["kind"] for e in done["events"]]
    assert kinds[:2] == ["create", "ramp"] and kinds[-1] == "rollback"
    assert "step" in kinds and "promote" not in kinds
    back = done["events"][-1]
    assert back["actor"] == "gateway:ramp" and back["status"] == "rolled_back"
    assert back["reason"].startswith("guardrail failed at step ")
    assert "p95_latency_ms<+50%" in back["reason"]
    failed = [g for g in back["evidence"]["guardrails"] if g["failed"]]
    assert [g["guardrail"] for g in failed] == ["p95_latency_ms<+50%"]
    assert failed[0]["candidate"] > failed[0]["limit"]
    assert back["evidence"]["window"]["step"] >= 2  # judged on that step's records only
    assert back["evidence"]["window"]["share"] < 100
    # The steps that held say so, with their statistics.
    steps = [e for e in done["events"] if e["kind"] == "step"]
    assert all("guardrails held" in e["reason"] and e["evidence"]["arms"] for e in steps)
    # Afterwards every request reaches the control.
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "support", "messages": [{"role": "user", "content": "hi"}]},
        headers=ADMIN,
        timeout=30,
    )
    assert r.headers["x-strata-variant"] == "control"
    # The record reaches the variant registry and ab status's lineage.
    lineage = VariantStore(gateway.home / "variants.sqlite").get("tuned-v1")
    assert lineage is not None
    assert lineage.lineage["experiment"] == "ramp-bad (arm candidate of alias support)"
    assert lineage.lineage["promotion"].startswith("rolled back ")
    status = gateway.ab("status", "ramp-bad")
    print(status)
    assert "rolled_back on alias support" in status
    chain = status.split("lineage: ")[1]
    assert chain.startswith("dataset sha256:abc -> training_job arn:aws:bedrock:job/1 -> "
                            "variant tuned-v1 -> experiment ramp-bad -> ramp (")  # fmt: skip
    assert "rollback (" in chain and "gateway:ramp: guardrail failed" in chain


def test_ramp_that_holds_ends_promoted(gateway: Gateway) -> None:
    _create(gateway, "ramp-good")
    with Traffic([gateway.url], TEST_KEY, "support") as traffic:
        gateway.ab("promote", "ramp-good", "--ramp", "20,60,100", "--step-every", "0.5s")
        done = gateway.until("ramp-good", lambda s: s["status"] != "running")
        assert done["status"] == "promoted", done["events"][-1]
        mark = len(traffic.served)
        while len(traffic.since(mark)) < 28:
            time.sleep(0.05)
        after = {s.arm for s in traffic.since(mark)[8:]}  # past the 8 in flight at the switch
    assert after == {"candidate"}
    kinds = [e["kind"] for e in done["events"]]
    assert kinds == ["create", "ramp", "step", "promote"]
    assert done["events"][-1]["reason"].startswith("ramp complete")
    assert [e["weights"]["candidate"] for e in done["events"]] == [10.0, 20.0, 60.0, 100.0]
    registry = VariantStore(gateway.home / "variants.sqlite").get("tuned-v1")
    assert registry is not None and registry.lineage["promotion"].startswith("promoted ")


def test_status_text_says_when_a_ramp_is_in_progress() -> None:
    doc = {
        "experiment": "e", "status": "running", "alias": "support", "control": "control",
        "candidate": "candidate", "weights": {"control": 75.0, "candidate": 25.0},
        "alpha": 0.05, "ramp": {"steps": [10, 25, 50, 100], "step": 1, "every_s": 3.0},
        "verdict": {"text": "no difference yet (no outcomes recorded yet)"}, "arms": [],
        "difference": None, "sample_ratio": {"chi2": 0.0, "p_value": 1.0, "mismatch": False},
        "guardrails": [], "lineage": [],
    }  # fmt: skip
    second = render(doc).splitlines()[1]
    assert second.startswith("running on alias support, ramping (25% at step 2 of 4, every 3 s)")
