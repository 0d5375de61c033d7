"""A tiny run of ``bench.overhead``: every figure is produced and every answer is right.

No timing is asserted (the machine is shared); only that the benchmark measured something for
each figure and that the gateway answered each surface correctly over the bedrock provider.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench._figures import percentile
from bench._scenarios import PROMPT, check_answer, converse_body
from gateway.wire.eventstream import encode_event
from tests.fakes.bedrock_wire import split_even

REPO = Path(__file__).resolve().parents[2]
SURFACES = {"converse", "converse-stream", "openai", "openai-stream"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench") / "overhead.json"
    argv = [
        sys.executable,
        "-m",
        "bench.overhead",
        "--requests",
        "20",
        "--seq-requests",
        "10",
        "--warmup",
        "4",
        "--concurrency",
        "4",
        "--startup-runs",
        "1",
        "--json",
        str(out),
    ]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return orjson.loads(out.read_bytes()), done.stdout


def test_every_figure_is_measured_and_printed(report: tuple[dict[str, Any], str]) -> None:
    data, stdout = report
    names = {f["name"] for f in data["figures"]}
    for expected in (
        "added latency p50, sequential, converse",
        "added latency p50, sequential, openai",
        "gateway CPU per request, c4, converse",
        "gateway CPU per request, c4, openai",
        "throughput at c4, converse",
        "idle RSS",
        "start-up (spawn -> /readyz 200)",
    ):
        assert expected in names
    for figure in data["figures"]:
        assert figure["measured"] is not None and math.isfinite(figure["measured"]), figure
        assert figure["name"] in stdout
        assert ("PASS" if figure["passed"] else "FAIL") in stdout
    strata = data["servers"]["strata"]
    assert strata["idle_rss_mib"] > 0 and len(strata["startup_s"]) == 1
    assert strata["torch_loaded"] is False  # no local model configured


def test_every_surface_answered_correctly(report: tuple[dict[str, Any], str]) -> None:
    data, _ = report
    assert data["problems"] == []
    seen = set()
    for run in data["runs"]:
        assert run["errors"] == 0 and run["answer_problem"] is None, run
        assert run["ok"] == (10 if run["concurrency"] == 1 else 20)
        assert run["latency_ms"]["p50"] > 0 and run["throughput_rps"] > 0
        if run["via"] == "strata":
            assert run["gateway_cpu_ms_per_request"] >= 0
        seen.add((run["via"], run["surface"], run["concurrency"]))
    for conc in (1, 4):
        assert {("strata", s, conc) for s in SURFACES} <= seen
        assert {("direct", "converse", conc), ("direct", "converse-stream", conc)} <= seen
    assert set(data["added_ms"]["strata"]) == SURFACES


def _stream(chunks: list[str], last: str = "metadata") -> bytes:
    frames = [encode_event("messageStart", b'{"role":"assistant"}')]
    frames += [
        encode_event("contentBlockDelta", orjson.dumps({"delta": {"text": c}})) for c in chunks
    ]
    frames.append(encode_event("messageStop", b'{"stopReason":"end_turn"}'))
    frames.append(encode_event(last, b"{}"))
    return b"".join(frames)


def test_answer_check_tells_right_from_wrong() -> None:
    # The smoke test above is only as good as this check.
    good = {"output": {"message": {"role": "assistant", "content": [{"text": PROMPT}]}}}
    assert check_answer("converse", orjson.dumps(good)) is None
    bad = {"output": {"message": {"role": "assistant", "content": [{"text": PROMPT[:-1]}]}}}
    assert check_answer("converse", orjson.dumps(bad)) is not None
    assert check_answer("converse", b'{"message":"boom"}') is not None
    assert check_answer("converse-stream", _stream(split_even(PROMPT, 8))) is None
    assert check_answer("converse-stream", _stream(split_even(PROMPT, 8)[:-1])) is not None
    assert check_answer("converse-stream", _stream(split_even(PROMPT, 8), last="x")) is not None
    sse = b"".join(
        b"data: " + orjson.dumps({"choices": [{"delta": {"content": c}}]}) + b"\n\n"
        for c in split_even(PROMPT, 5)
    )
    assert check_answer("openai-stream", sse + b"data: [DONE]\n\n") is None
    assert check_answer("openai-stream", sse) is not None  # no [DONE]
    assert orjson.loads(converse_body())["messages"][0]["content"][0]["text"] == PROMPT


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 95) == 3.0
    assert math.isnan(percentile([], 50))
