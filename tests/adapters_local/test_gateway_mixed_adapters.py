"""Issue 4, acceptance 5: concurrent requests for two LoRA adapters and the bare base, through
the gateway, each get their own adapter's answer, and the local provider batches them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
import pytest

from adapters_local.data.tasks import NEW_TASKS
from gateway.app import create_app
from gateway.settings import Settings
from tests.gateway.harness import TEST_KEY, serve

WORDS = ["planet", "wizard", "kettle", "bronze"]


async def _ask(client: openai.AsyncOpenAI, model: str, prompt: str) -> str:
    out = await client.chat.completions.create(
        model=model, max_tokens=16, messages=[{"role": "user", "content": prompt}]
    )
    return out.choices[0].message.content or ""


@pytest.mark.slow
def test_mixed_adapter_requests_batch_and_answer_per_adapter(
    tmp_path: Path, lora_rot13: Any, lora_shift1: Any
) -> None:
    config = tmp_path / "strata.yaml"
    config.write_text(f"""
local:
  bases:
    builtin:
      path: builtin
      adapters: {{rot13: "{lora_rot13.folder}", shift1: "{lora_shift1.folder}"}}
""")
    app = create_app(Settings(home=tmp_path, dev_key=TEST_KEY, config=config))
    requests = [
        (f"local:builtin@{name}", f"Encode: {w}", NEW_TASKS[name].solve(w))
        for name in ("rot13", "shift1")
        for w in WORDS
    ]
    requests += [("local:builtin", f"Uppercase: {w}", w.upper()) for w in WORDS]

    async def run(url: str) -> tuple[list[str], list[str]]:
        async with openai.AsyncOpenAI(
            base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0, timeout=300
        ) as client:
            # Alone first, one at a time: what each adapter answers without batching.
            alone = [await _ask(client, m, p) for m, p, _ in requests]
            together = await asyncio.gather(*(_ask(client, m, p) for m, p, _ in requests))
        return alone, list(together)

    with serve(app) as url:
        alone, together = asyncio.run(run(url))
        engine = app.state.strata.providers["local"].engines()["builtin"]
        sizes = list(engine.stats.batch_sizes)

    # Batching changes nothing in what each row answers.
    assert together == alone
    expected = [answer for _, _, answer in requests]
    correct = sum(got == want for got, want in zip(together, expected, strict=True))
    assert correct >= len(requests) - 1, list(zip(together, expected, strict=True))
    # The same prompt gets each adapter's own answer.
    assert together[0] != together[len(WORDS)]
    # Sequential requests ran alone; the concurrent ones shared batches.
    assert max(sizes) > 1, sizes
