"""The pipeline's own CPU per call, without HTTP or an upstream.

    python -m bench.pipeline_cost [--calls 20000]

Calls ``Pipeline.converse`` (route → attempt with breaker, budget and retry bookkeeping →
settle) on a provider that answers at once, and the same provider directly, alternating twice;
prints microseconds of process CPU per call. This is what the pipeline adds to every request on
top of the surfaces and the transport that ``bench.overhead`` measures end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncGenerator, Sequence

from gateway.auth import Principal
from gateway.canonical import ConverseRequest, ConverseResponse, StreamEvent
from gateway.pipeline.attempt import AttemptStage
from gateway.pipeline.call import Call, new_request_id
from gateway.pipeline.pipeline import Pipeline
from gateway.pipeline.route import Route, RouteStage
from gateway.pipeline.settle import Settle
from gateway.targets import Target

ANSWER = ConverseResponse.model_validate(
    {
        "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
    }
)


class Instant:
    """A provider that answers at once."""

    async def converse(self, target: Target, request: ConverseRequest) -> ConverseResponse:
        return ANSWER

    async def converse_stream(
        self, target: Target, request: ConverseRequest
    ) -> AsyncGenerator[StreamEvent, None]:
        yield {"messageStart": {"role": "assistant"}}

    def ready(self) -> bool:
        return True


async def measure(calls: int) -> dict[str, list[float]]:
    provider = Instant()
    target = Target("bedrock", "m")
    pipeline = Pipeline(
        route=RouteStage({"default": Route("default", (target,))}),
        attempt=AttemptStage({"bedrock": provider}),
        settle=Settle(),
    )
    request = ConverseRequest.model_validate(
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    )
    who = Principal("bench", "bench")
    out: dict[str, list[float]] = {"provider alone": [], "through the pipeline": []}
    for _ in range(2):
        started = time.process_time()
        for _ in range(calls):
            await provider.converse(target, request)
        out["provider alone"].append((time.process_time() - started) / calls * 1e6)
        started = time.process_time()
        for _ in range(calls):
            await pipeline.converse(Call(new_request_id(), who, "bedrock", "default", request))
        out["through the pipeline"].append((time.process_time() - started) / calls * 1e6)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.pipeline_cost", description=__doc__)
    p.add_argument("--calls", type=int, default=20000)
    args = p.parse_args(argv)
    for name, runs in asyncio.run(measure(args.calls)).items():
        print(f"{name}: {', '.join(f'{us:.1f}' for us in runs)} µs CPU per call")


if __name__ == "__main__":
    main()
