"""Live grading through the real HTTP surface: a 50/50 experiment over the Bedrock-wire fake,
graders configured in strata.yaml, the SQLite ledger. The request path is unaffected by a
grader that raises or hangs; grades land beside the ledger and drive ``ab status``; a judge's
own calls are ledger records of their own."""

from __future__ import annotations

import codecs
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.accounting.keys import KeyAdmin
from gateway.accounting.store import Database
from gateway.app import create_app
from gateway.settings import Settings
from tests.experiments import grader_fns
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.gateway.harness import TEST_KEY, serve

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
WORDS = ["abc", "hello", "query", "lorem", "ipsum", "zzz", "gateway", "strata"]


def reply(request: FakeRequest) -> Reply:
    text = list(request.texts())[-1]
    if request.model_id == "judge-model":
        # Order-biased: prefers the right answer when exactly one is right, else says A.
        first = text.split("<<<A\n", 1)[1].split("\nA>>>", 1)[0]
        second = text.split("<<<B\n", 1)[1].split("\nB>>>", 1)[0]
        right = {codecs.encode(w, "rot13") for w in WORDS}
        if (first in right) != (second in right):
            return Reply(text="A" if first in right else "B", input_tokens=50, output_tokens=1)
        return Reply(text="A", input_tokens=50, output_tokens=1)
    word = text.split(": ", 1)[1]
    answer = codecs.encode(word, "rot13") if request.model_id == "model-b" else word
    return Reply(text=answer, input_tokens=3, output_tokens=2)


@dataclass
class Gateway:
    url: str
    home: Path
    wire: BedrockWireServer

    def chat(self, word: str, *, stream: bool = False, **headers: str) -> httpx.Response:
        body: dict[str, Any] = {
            "model": "support",
            "messages": [{"role": "user", "content": f"Encode: {word}"}],
            "stream": stream,
        }
        r = httpx.post(
            self.url + "/v1/chat/completions", json=body, headers={**AUTH, **headers}, timeout=30
        )
        assert r.status_code == 200, r.text
        return r

    def admin(self, path: str, **params: Any) -> Any:
        r = httpx.get(self.url + path, params=params, headers=AUTH, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def wait_graded(self, grader: str, result: str, count: int) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            doc: dict[str, Any] = self.admin("/admin/graders")
            idle = doc["queued"] == 0 and doc["grading"] == 0
            if doc["graders"][grader][result] >= count and idle:
                return doc
            time.sleep(0.05)
        raise AssertionError(f"{grader} never reached {count} {result}: {doc}")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "accounting.sqlite") as conn:
            return conn.execute(sql).fetchall()

    def rows_once_written(self, sql: str, count: int) -> list[tuple[Any, ...]]:
        """``sql``'s rows once there are ``count`` of them (or the deadline passed): the ledger
        writer commits in batches off the request path, so the last calls' records land up to a
        flush interval after their answers (here: after the grades that made them)."""
        deadline = time.monotonic() + 30
        found = self.rows(sql)
        while len(found) < count and time.monotonic() < deadline:
            time.sleep(0.05)
            found = self.rows(sql)
        return found


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    grader_fns.HANG_ENTERED.clear()
    grader_fns.HANG_RELEASE.clear()
    expected = tmp_path / "eval.jsonl"
    expected.write_text(
        "".join(
            json.dumps({"prompt": f"Encode: {w}", "completion": codecs.encode(w, "rot13")}) + "\n"
            for w in WORDS
        )
    )
    home = tmp_path / "home"
    with BedrockWireServer(reply) as wire:
        config = tmp_path / "strata.yaml"
        config.write_text(
            f"""
aliases:
  support:
    experiment:
      sticky_by: request
      variants:
        control: {{target: "bedrock:model-a", weight: 50}}
        tuned: {{target: "bedrock:model-b", weight: 50}}
  judge: bedrock:judge-model
graders:
  exact: {{kind: exact, expected: "{expected}", sample: {{support: 1.0}}}}
  boom: {{kind: "python:tests.experiments.grader_fns:boom", sample: {{support: 1.0}}}}
  hang: {{kind: "python:tests.experiments.grader_fns:hang", sample: {{support: 1.0}},
          timeout_s: 0.2}}
  pair: {{kind: judge, alias: judge, mode: pairwise, expected: "{expected}",
          sample: {{support: 1.0}}}}
prices:
  "bedrock:judge-model": {{input_per_mtok: 1.0, output_per_mtok: 5.0}}
bedrock:
  region: us-east-1
  endpoint_url: {wire.endpoint_url}
""",
            encoding="utf-8",
        )
        settings = Settings(  # type: ignore[call-arg]
            home=home, config=config, dev_key=TEST_KEY, keys_refresh_s=0.05
        )
        try:
            with serve(create_app(settings)) as url:
                yield Gateway(url, home, wire)
        finally:
            grader_fns.HANG_RELEASE.set()


def test_graders_run_off_the_request_path_and_feed_the_verdict(gateway: Gateway) -> None:
    answers = {}
    for i in range(40):
        word = WORDS[i % len(WORDS)]
        r = gateway.chat(word, stream=i % 4 == 3)
        text = r.text if i % 4 == 3 else r.json()["choices"][0]["message"]["content"]
        answers[r.headers["x-strata-request-id"]] = (r.headers["x-strata-variant"], word, text)
    # Every answer came back while the hanging grader was still stuck in its first call.
    assert grader_fns.HANG_ENTERED.is_set() and not grader_fns.HANG_RELEASE.is_set()
    for variant, word, text in answers.values():
        want = codecs.encode(word, "rot13") if variant == "tuned" else word
        assert want in text
    doc = gateway.wait_graded("exact", "ok", 40)
    doc = gateway.wait_graded("pair", "ok", 40)
    assert doc["graders"]["boom"]["error"] == 40 and doc["graders"]["boom"]["ok"] == 0
    # Four threads of its own are stuck; the rest of its jobs timed out or wait behind them.
    assert doc["graders"]["hang"]["timeout"] >= 4 and doc["graders"]["hang"]["ok"] == 0
    metrics = httpx.get(gateway.url + "/metrics", headers=AUTH).text
    assert 'strata_grader_results_total{grader="boom",result="error"} 40.0' in metrics

    grades = dict(gateway.rows("SELECT request_id, score FROM grades WHERE grader = 'exact'"))
    assert set(grades) == set(answers)
    for rid, (variant, _, _) in answers.items():
        assert grades[rid] == (1.0 if variant == "tuned" else 0.0)
    # Pairwise against the right reference: control's wrong answers always lose (0); tuned's
    # equal the reference, and the order-biased judge's "A, A" cancels to a tie (0.5).
    pair = dict(gateway.rows("SELECT request_id, score FROM grades WHERE grader = 'pair'"))
    for rid, (variant, _, _) in answers.items():
        assert pair[rid] == (0.5 if variant == "tuned" else 0.0)
    # The judge's own calls: two per graded call, in the ledger with their cost, no experiment.
    judged = gateway.rows_once_written(
        "SELECT key_id, alias, experiment, cost_pusd FROM ledger "
        "WHERE target = 'bedrock:judge-model'",
        80,
    )
    assert len(judged) == 80
    assert all(r[0] == "grader" and r[1] == "judge" and r[2] is None and r[3] > 0 for r in judged)
    # The ledger and the grades keep no text.
    dumped = json.dumps(gateway.rows("SELECT * FROM ledger") + gateway.rows("SELECT * FROM grades"))
    assert "Encode" not in dumped and "uryyb" not in dumped

    status = gateway.admin(
        "/admin/experiments/support/stats", metric="grader:exact", min_samples=10
    )
    assert status["verdict"]["kind"] == "candidate better", status["verdict"]
    assert status["metric"] == "grader:exact"
    means = status["timeline"]["means"]
    assert {v for v in means["tuned"] if v is not None} == {1.0}
    assert {v for v in means["control"] if v is not None} == {0.0}


def test_forced_arms_need_an_admin_key_and_skip_the_sample_ratio(gateway: Gateway) -> None:
    for _ in range(30):
        r = gateway.chat("abc", **{"x-strata-arm": "tuned"})
        assert r.headers["x-strata-variant"] == "tuned"
    bad = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "support", "messages": [{"role": "user", "content": "Encode: abc"}]},
        headers={**AUTH, "x-strata-arm": "nope"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "x-strata-arm"
    db = Database(None, gateway.home)
    secret, _ = KeyAdmin(db).create("acme")
    db.close()
    for _ in range(200):  # live once the gateway's key poller saw it
        tenant = httpx.post(
            gateway.url + "/v1/chat/completions",
            json={"model": "support", "messages": [{"role": "user", "content": "Encode: abc"}]},
            headers={"Authorization": f"Bearer {secret}", "x-strata-arm": "tuned"},
        )
        if tenant.status_code != 401:
            break
        time.sleep(0.05)
    assert tenant.status_code == 403 and tenant.json()["error"]["param"] == "x-strata-arm"
    gateway.wait_graded("exact", "ok", 30)
    status = gateway.admin("/admin/experiments/support/stats", metric="grader:exact")
    # 30 forced calls to one arm of a 50/50 split: not a sample-ratio mismatch.
    assert status["forced"] == 30 and not status["sample_ratio"]["mismatch"]
