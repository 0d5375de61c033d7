"""Does live grading slow the request path? The same gateway config with and without graders
(an ``exact`` grader and a judge at fraction 1.0: every call graded), alternated A/B/A/B, over
the Bedrock-wire fake; prints the gateway's own time per call (``x-strata-overhead-ms``, the
call minus upstream waiting) and the whole call's latency, as medians and p95.

    .venv/bin/python -m bench.graders_overhead [--requests 300] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from gateway.app import create_app
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.gateway.harness import TEST_KEY, serve

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def reply(request: FakeRequest) -> Reply:
    if request.model_id == "judge-model":
        return Reply(text="7")
    return Reply(text="nop")


def config(folder: Path, endpoint: str, graded: bool) -> Path:
    expected = folder / "eval.jsonl"
    expected.write_text(json.dumps({"prompt": "Encode: abc", "completion": "nop"}) + "\n")
    graders = (
        f"""graders:
  exact: {{kind: exact, expected: "{expected}", sample: {{support: 1.0}}}}
  judge: {{kind: judge, alias: judge, sample: {{support: 1.0}}}}
"""
        if graded
        else ""
    )
    path = folder / f"strata-{graded}.yaml"
    path.write_text(
        f"""aliases:
  support: bedrock:model-a
  judge: bedrock:judge-model
{graders}bedrock:
  region: us-east-1
  endpoint_url: {endpoint}
"""
    )
    return path


def run(
    folder: Path, endpoint: str, graded: bool, requests: int
) -> tuple[list[float], list[float]]:
    settings = Settings(
        home=folder / f"home-{graded}", config=config(folder, endpoint, graded), dev_key=TEST_KEY
    )  # type: ignore[call-arg]
    overhead, latency = [], []
    body = {"model": "support", "messages": [{"role": "user", "content": "Encode: abc"}]}
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, headers=AUTH) as client:
        for _ in range(20):  # warm-up
            client.post("/v1/chat/completions", json=body)
        for _ in range(requests):
            started = time.perf_counter()
            r = client.post("/v1/chat/completions", json=body)
            latency.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200, r.text
            overhead.append(float(r.headers["x-strata-overhead-ms"]))
        if graded:
            graders = client.get("/admin/graders").json()["graders"]
            assert graders["exact"]["ok"] > 0, graders
    return overhead, latency


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "secret-example")
    print(f"load before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp, BedrockWireServer(reply) as wire:
        for round_ in range(args.rounds):
            for graded in (False, True):
                folder = Path(tmp) / f"r{round_}"
                folder.mkdir(exist_ok=True)
                overhead, latency = run(folder, wire.endpoint_url, graded, args.requests)
                print(
                    f"round {round_} graders {'on ' if graded else 'off'}: overhead p50 "
                    f"{statistics.median(overhead):.2f} ms p95 {p95(overhead):.2f} ms; latency "
                    f"p50 {statistics.median(latency):.2f} ms p95 {p95(latency):.2f} ms"
                )
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
