"""Issue 14 item 10 through the gateway: a routed composition named in strata.yaml, a weighted
parallel one, and the ad-hoc ``local:builtin@a+b`` target, all asked with the ``openai`` SDK."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
import pytest

from adapters_local.data.chat_format import prompt_ids
from adapters_local.data.tasks import BUILTIN_TASKS, NEW_TASKS, make_items
from adapters_local.models.loading import BUILTIN_DIR, load_tokenizer
from gateway.app import create_app
from gateway.errors import ConfigError
from gateway.settings import Settings
from tests.adapters_local.compose_reference import SoloModel, greedy
from tests.adapters_local.serving_helpers import random_lora, request
from tests.gateway.harness import TEST_KEY, serve

WORDS = ["planet", "wizard", "kettle", "bronze"]


async def _ask(client: openai.AsyncOpenAI, model: str, prompt: str) -> str:
    out = await client.chat.completions.create(
        model=model, max_tokens=12, messages=[{"role": "user", "content": prompt}]
    )
    return out.choices[0].message.content or ""


def _config(tmp_path: Path, rot13: Path, a: Path, b: Path) -> Path:
    examples = [
        {"text": i.prompt, "adapter": "rot13" if i.task == "rot13" else "base"}
        for i in make_items([NEW_TASKS["rot13"], *BUILTIN_TASKS], 10, seed=5)
    ]
    config = tmp_path / "strata.yaml"
    config.write_text(f"""
local:
  bases:
    builtin:
      path: builtin
      adapters: {{rot13: "{rot13}", a: "{a}", b: "{b}"}}
compositions:
  support-mix:
    base: builtin
    mode: route
    adapters: [rot13, base]
    router: {{classifier: ngrams, examples: {json.dumps(examples)}}}
  blend:
    mode: parallel
    adapters: [a, b]
    weights: {{a: 0.7, b: 0.3}}
""")
    return config


@pytest.mark.slow
def test_compositions_are_servable_through_the_gateway(tmp_path: Path, lora_rot13: Any) -> None:
    a, b = random_lora(tmp_path / "a", seed=1), random_lora(tmp_path / "b", seed=2)
    config = _config(tmp_path, lora_rot13.folder, a, b)
    app = create_app(Settings(home=tmp_path, dev_key=TEST_KEY, config=config))
    routed = [(f"Encode: {w}", NEW_TASKS["rot13"].solve(w)) for w in WORDS]
    routed += [(f"Uppercase: {w}", w.upper()) for w in WORDS]
    parallel = [("local:builtin@a+b", "Copy: planet"), ("blend", "Copy: planet")]

    async def run(url: str) -> tuple[list[str], list[str]]:
        async with openai.AsyncOpenAI(
            base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0, timeout=300
        ) as client:
            answers = await asyncio.gather(
                *(_ask(client, "support-mix", p) for p, _ in routed),
                *(_ask(client, m, p) for m, p in parallel),
            )
        return list(answers[: len(routed)]), list(answers[len(routed) :])

    with serve(app) as url:
        routed_answers, parallel_answers = asyncio.run(run(url))
    # The router sends Encode to the rot13 LoRA and the built-in tasks to the bare base, so the
    # one model name answers both kinds right (neither target alone does).
    assert routed_answers == [want for _, want in routed]
    tokenizer = load_tokenizer(BUILTIN_DIR)
    ids = prompt_ids(tokenizer, request("Copy: planet").messages)
    solo = [SoloModel(a), SoloModel(b)]
    for answer, weights in zip(parallel_answers, ([0.5, 0.5], [0.7, 0.3]), strict=True):
        want = greedy(solo, weights, ids, 12, tokenizer.eos_token_id)
        assert answer == tokenizer.decode(want)
    assert parallel_answers[0] != parallel_answers[1]


def test_a_composition_naming_an_unknown_base_or_bad_router_is_a_config_error(
    tmp_path: Path,
) -> None:
    from gateway.config import load_config

    config = tmp_path / "strata.yaml"
    config.write_text("compositions: {mix: {base: nope, mode: parallel, adapters: [a, b]}}\n")
    with pytest.raises(ConfigError, match=r"compositions\.mix\.base"):
        load_config(Settings(home=tmp_path, dev_key=TEST_KEY, config=config))
    a = random_lora(tmp_path / "a", seed=1)
    config.write_text(f"""
local: {{bases: {{builtin: {{path: builtin, adapters: {{a: "{a}"}}}}}}}}
compositions:
  mix: {{mode: route, adapters: [a, base], router: {{keywords: {{c: "x"}}}}}}
""")
    loaded = load_config(Settings(home=tmp_path, dev_key=TEST_KEY, config=config))
    # Only the composition is unavailable, with the router's reason; its base still serves.
    assert "not a member" in loaded.unavailable["local:builtin@mix"]
    assert "local:builtin" not in loaded.unavailable
