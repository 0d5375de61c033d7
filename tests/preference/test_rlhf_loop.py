"""The RLHF loop end to end, offline (acceptance 3): a gateway with an experiment on the
built-in model and ``store_bodies: true``, several sampled answers per prompt (``strata feedback
sample``), ratings through ``POST /v1/feedback``, ``strata feedback export`` to pairs, DPO on
them, the adapter registered as a variant, and a new experiment (``strata ab create``) that
routes to it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from adapters_local.data.tasks import BUILTIN_TASKS, make_items
from gateway.accounting.keys import KeyAdmin
from gateway.accounting.store import Database
from gateway.app import create_app
from gateway.cli import _mount, app
from gateway.settings import Settings
from tests.gateway.harness import TEST_KEY, serve

SOLVE = {t.instruction: t.solve for t in BUILTIN_TASKS}


def correct(prompt: str, answer: str) -> bool:
    instruction, word = prompt.split(": ", 1)
    return answer == SOLVE[instruction](word)


def _config(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def _bodies(home: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(home / "accounting.sqlite") as conn:
        return conn.execute("SELECT request_id, alias, answer FROM bodies").fetchall()


@pytest.mark.slow
def test_rated_traffic_to_pairs_to_dpo_to_a_variant_in_an_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("STRATA_HOME", str(home))
    db = Database(None, home)
    db.migrate()
    acme, _ = KeyAdmin(db).create("acme")
    first = _config(
        tmp_path / "strata.yaml",
        """
aliases:
  chat:
    store_bodies: true
    experiment:
      sticky_by: request
      variants:
        control: {target: "local:builtin", weight: 50}
        sampled: {target: "local:builtin", weight: 50}
  plain: local:builtin
""",
    )
    prompts = tmp_path / "prompts.jsonl"
    items = make_items(BUILTIN_TASKS, 16, seed=3, min_len=5, max_len=8)
    prompts.write_text("".join(json.dumps({"prompt": i.prompt}) + "\n" for i in items))
    runner = CliRunner()
    _mount()
    settings = Settings(home=home, config=first, dev_key=TEST_KEY, keys_refresh_s=0.05)  # type: ignore[call-arg]
    with serve(create_app(settings)) as url:
        samples = tmp_path / "samples.jsonl"
        result = runner.invoke(
            app,
            ["feedback", "sample", "--alias", "chat", "--dataset", str(prompts), "--n", "4",
             "--temperature", "1.6", "--max-tokens", "16", "--out", str(samples),
             "--url", url, "--key", acme],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in samples.read_text().splitlines()]
        assert len(rows) == 64 and {r["variant"] for r in rows} == {"control", "sampled"}
        for row in rows:  # the "user" rates: correct answers up, wrong ones down
            label = "up" if correct(row["messages"][0]["content"], row["answer"]) else "down"
            r = httpx.post(
                url + "/v1/feedback",
                json={"request_id": row["request_id"], "label": label},
                headers={"Authorization": f"Bearer {acme}"},
                timeout=30,
            )
            assert r.status_code == 200, r.text
        plain = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "plain", "messages": [{"role": "user", "content": "Copy: abc"}]},
            headers={"Authorization": f"Bearer {acme}"},
            timeout=60,
        )
        assert plain.status_code == 200
        with httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            json={"model": "chat", "stream": True, "temperature": 0,
                  "messages": [{"role": "user", "content": "Reverse: stream"}]},
            headers={"Authorization": f"Bearer {acme}"},
            timeout=60,
        ) as streamed:  # fmt: skip
            assert streamed.status_code == 200
            streamed_id = streamed.headers["x-strata-request-id"]
            streamed.read()
    stored = _bodies(home)
    # A stream's text is assembled from its deltas (the base reverses the word correctly).
    assert [a for rid, _, a in stored if rid == streamed_id] == ["maerts"]
    stored = [s for s in stored if s[0] != streamed_id]
    # Text is kept for the opted-in alias only; the plain alias's call left none.
    assert {rid for rid, _, _ in stored} == {r["request_id"] for r in rows}
    assert plain.headers["x-strata-request-id"] not in {rid for rid, _, _ in stored}
    assert sorted(a for _, _, a in stored) == sorted(r["answer"] for r in rows)

    pairs, sft = tmp_path / "pairs.jsonl", tmp_path / "sft.jsonl"
    result = runner.invoke(
        app, ["feedback", "export", "--alias", "chat", "--pairs", str(pairs), "--sft", str(sft)]
    )
    assert result.exit_code == 0, result.output
    exported = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert exported, result.output  # temperature 1.6 gets some answers wrong
    for pair in exported:
        assert correct(pair["prompt"], pair["chosen"]) and not correct(
            pair["prompt"], pair["rejected"]
        )
    best = [json.loads(line) for line in sft.read_text().splitlines()]
    assert best and all(correct(r["prompt"], r["completion"]) for r in best)

    tuned = tmp_path / "dpo"
    result = runner.invoke(
        app,
        ["train", "dpo", "--data", str(pairs), "--out", str(tuned), "--steps", "6",
         "--batch-size", "4", "--lr", "1e-3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((tuned / "report.json").read_text())["method"] == "dpo"
    result = runner.invoke(
        app,
        ["variants", "add", "rlhf-v1", "--target", "local:builtin@rlhf", "--base", "builtin",
         "--method", "dpo", "--notes", f"pairs from alias chat: {len(exported)}"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    # A new experiment with the variant as the candidate, through strata ab create.
    second = _config(
        tmp_path / "strata2.yaml",
        f"""
aliases:
  chat: {{targets: ["local:builtin"], store_bodies: true}}
local:
  bases:
    builtin: {{path: builtin, adapters: {{rlhf: "{tuned}"}}}}
""",
    )
    settings = Settings(home=home, config=second, dev_key=TEST_KEY, keys_refresh_s=0.05)  # type: ignore[call-arg]
    with serve(create_app(settings)) as url:
        # The sampling experiment (seeded from the first strata.yaml) is still in the store.
        result = runner.invoke(app, ["ab", "stop", "chat", "--url", url, "--key", TEST_KEY])
        assert result.exit_code == 0, result.output
        result = runner.invoke(
            app,
            ["ab", "create", "rlhf-v1-trial", "--alias", "chat", "--control", "local:builtin",
             "--candidate", "variant:rlhf-v1", "--split", "50/50", "--sticky-by", "request",
             "--url", url, "--key", TEST_KEY],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        served: set[str] = set()
        for _ in range(100):  # the experiment is in force within a second (its revision)
            r = httpx.post(
                url + "/v1/chat/completions",
                json={"model": "chat", "messages": [{"role": "user", "content": items[0].prompt}],
                      "temperature": 0},
                headers={"Authorization": f"Bearer {acme}"},
                timeout=60,
            )  # fmt: skip
            assert r.status_code == 200, r.text
            served.add(r.headers["x-strata-target"])
            if len(served) == 2:
                break
    assert served == {"local:builtin", "local:builtin@rlhf"}, served
