"""Acceptance 3 (end to end): over a run of mixed calls (both surfaces, streams, cache reads
and writes, several models and inference profiles) the ledger's summed cost equals the sum
computed independently from what the upstream reported and the price file."""

from __future__ import annotations

import itertools
import json
import threading
from decimal import Decimal
from pathlib import Path

import boto3
import openai
import pytest

from gateway.accounting.store import Database
from gateway.app import create_app
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.gateway.harness import TEST_KEY, serve

PRICES = Path(__file__).parents[2] / "gateway" / "accounting" / "prices.json"
MODELS = {
    "haiku35": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "sonnet45g": "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "sonnet45us": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "nova": "amazon.nova-micro-v1:0",
    "llama": "meta.llama3-1-70b-instruct-v1:0",
}


def price_row(model_id: str) -> dict[str, Decimal]:
    """Read straight from the data file, without gateway code."""
    prefix, _, rest = model_id.partition(".")
    profile = prefix in ("us", "eu", "apac", "global")
    base = rest if profile else model_id
    row = next(r for r in json.loads(PRICES.read_text())["models"] if r["id"] == base)
    block = row.get("global", row) if prefix == "global" else row
    names = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")
    return {n: Decimal(block[n]) if block.get(n) is not None else Decimal(0) for n in names}


class Recorder:
    """Scripts varied usage per call and keeps what was reported, per model id."""

    def __init__(self) -> None:
        self.reported: list[tuple[str, int, int, int, int]] = []
        self._lock = threading.Lock()
        self._n = itertools.count(1)

    def __call__(self, request: FakeRequest) -> Reply:
        n = next(self._n)
        cached = "llama" not in request.model_id  # Llama has no cache rates
        reply = Reply(
            chunks=["alpha ", "beta"],
            input_tokens=100 + 37 * n,
            output_tokens=5 + 11 * n,
            cache_read_tokens=(1000 + 13 * n) if cached and n % 2 else None,
            cache_write_tokens=(500 + 7 * n) if cached and n % 3 == 0 else None,
        )
        with self._lock:
            self.reported.append(
                (
                    request.model_id,
                    reply.input_tokens or 0,
                    reply.output_tokens or 0,
                    reply.cache_read_tokens or 0,
                    reply.cache_write_tokens or 0,
                )
            )
        return reply


def expected_cost(reported: list[tuple[str, int, int, int, int]]) -> Decimal:
    total = Decimal(0)
    for model_id, inputs, outputs, read, write in reported:
        p = price_row(model_id)
        total += (
            inputs * p["input_per_mtok"]
            + outputs * p["output_per_mtok"]
            + read * p["cache_read_per_mtok"]
            + write * p["cache_write_per_mtok"]
        ) / Decimal(1_000_000)
    return total


def test_ledger_cost_matches_independent_sum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", TEST_KEY)
    recorder = Recorder()
    with BedrockWireServer(recorder) as wire:
        aliases = "\n".join(f"  {a}: bedrock:{m}" for a, m in MODELS.items())
        config = tmp_path / "strata.yaml"
        config.write_text(
            f"aliases:\n{aliases}\nbedrock:\n  region: us-east-1\n"
            f"  endpoint_url: {wire.endpoint_url}\n"
        )
        settings = Settings(home=tmp_path / "home", config=config, dev_key=TEST_KEY)  # type: ignore[call-arg]
        with serve(create_app(settings)) as url:
            oa = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)
            rt = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=url)
            for i, alias in enumerate(itertools.islice(itertools.cycle(MODELS), 32)):
                messages = [{"role": "user", "content": f"question {i}"}]
                if i % 4 == 0:
                    oa.chat.completions.create(model=alias, messages=messages)  # type: ignore[arg-type]
                elif i % 4 == 1:
                    stream = oa.chat.completions.create(
                        model=alias,
                        messages=messages,
                        stream=True,  # type: ignore[arg-type]
                    )
                    for _ in stream:
                        pass
                elif i % 4 == 2:
                    rt.converse(
                        modelId=alias,
                        messages=[{"role": "user", "content": [{"text": f"question {i}"}]}],
                    )
                else:
                    out = rt.converse_stream(
                        modelId=alias,
                        messages=[{"role": "user", "content": [{"text": f"question {i}"}]}],
                    )
                    for _ in out["stream"]:
                        pass
    db = Database(None, tmp_path / "home")
    rows = db.query("SELECT COUNT(*), SUM(cost_pusd), SUM(cache_read_tokens) FROM ledger")
    count, total_pusd, cache_read = rows[0]
    assert count == 32 == len(recorder.reported)
    ledger_usd = Decimal(int(total_pusd)) / Decimal(10**12)
    expected = expected_cost(recorder.reported)
    assert ledger_usd.quantize(Decimal("0.01")) == expected.quantize(Decimal("0.01"))
    assert ledger_usd == expected  # exact, to the pico-dollar
    assert cache_read == sum(r[3] for r in recorder.reported) > 0
    surfaces = dict(db.query("SELECT surface, COUNT(*) FROM ledger GROUP BY surface"))
    streams = db.query("SELECT COUNT(*) FROM ledger WHERE stream")[0][0]
    assert surfaces == {"openai": 16, "bedrock": 16} and streams == 16
    print(f"\nledger {ledger_usd} USD == independent {expected} USD over {count} calls")
