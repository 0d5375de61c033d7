"""The local provider's bridge from the engine thread to the event loop, and its errors."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import openai
import pytest

from adapters_local.serving.generation import (
    Finished,
    GenerationEvent,
    GenerationRequest,
    InferenceEngine,
    TextDelta,
)
from gateway.app import create_app
from gateway.settings import Settings
from tests.gateway.harness import TEST_KEY, serve
from tests.gateway.scripted_engine import (
    Script,
    ScriptedEngine,
    failing_script,
    text_script,
)


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[object]:
    engines: list[ScriptedEngine] = []
    stack: list[object] = []

    def start(script: Script, adapters: tuple[str, ...] = ()) -> tuple[str, ScriptedEngine]:
        engine = ScriptedEngine(script, adapters)
        engines.append(engine)

        def loader(path: str, adapter_paths: Mapping[str, str]) -> InferenceEngine:
            return engine

        config = tmp_path / "strata.yaml"
        (tmp_path / "upper").mkdir(exist_ok=True)
        config.write_text(
            "local:\n  bases:\n    builtin:\n      path: builtin\n"
            f"      adapters: {{upper: {tmp_path / 'upper'}}}\n"
        )
        settings = Settings(home=tmp_path, dev_key=TEST_KEY, config=config)
        cm = serve(create_app(settings, local_loader=loader))
        url = cm.__enter__()
        stack.append(cm)
        return url, engine

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)  # type: ignore[attr-defined]


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0)


def test_request_reaches_engine_translated(make_gateway) -> None:  # type: ignore[no-untyped-def]
    url, engine = make_gateway(text_script("HEL", "LO"), adapters=("upper",))
    out = client(url).chat.completions.create(
        model="local:builtin@upper",
        max_tokens=9,
        temperature=0.5,
        stop=["!"],
        messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
    )
    assert out.choices[0].message.content == "HELLO"
    assert out.usage is not None
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (7, 2)
    (request,) = engine.received
    assert request.adapter == "upper"
    assert request.max_new_tokens == 9 and request.temperature == 0.5
    assert request.stop == ("!",)
    assert [(m.role, m.content) for m in request.messages] == [("system", "sys"), ("user", "hi")]


def test_engine_failure_is_502_without_internals(make_gateway) -> None:  # type: ignore[no-untyped-def]
    url, _ = make_gateway(failing_script)
    with pytest.raises(openai.APIStatusError) as info:
        client(url).chat.completions.create(
            model="default", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 502
    assert "deadbeef" not in info.value.response.text


def test_failure_mid_stream_becomes_error_event(make_gateway) -> None:  # type: ignore[no-untyped-def]
    url, _ = make_gateway(failing_script)
    stream = client(url).chat.completions.create(
        model="default", messages=[{"role": "user", "content": "x"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk)
    assert "deadbeef" not in str(info.value)
    assert any(c.choices and c.choices[0].delta.content == "partial" for c in received)


def test_unknown_adapter_is_404(make_gateway) -> None:  # type: ignore[no-untyped-def]
    url, _ = make_gateway(text_script("x"))
    with pytest.raises(openai.NotFoundError):
        client(url).chat.completions.create(
            model="local:builtin@ghost", messages=[{"role": "user", "content": "x"}]
        )


def _leave_after_the_first_chunk(url: str) -> None:
    with httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {TEST_KEY}"},
        json={"model": "default", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    ) as r:
        assert next(r.iter_lines()).startswith("data: ")


def _wait_cancelled(engine: ScriptedEngine) -> list[GenerationRequest]:
    for _ in range(200):  # the server notices within moments; give it up to 10 s
        if engine.cancelled:
            break
        time.sleep(0.05)
    return engine.cancelled


def test_client_disconnect_cancels_generation(make_gateway) -> None:  # type: ignore[no-untyped-def]
    url, engine = make_gateway(text_script(*["tok"] * 200, pause=0.02))
    _leave_after_the_first_chunk(url)
    assert len(_wait_cancelled(engine)) == 1


def test_client_that_leaves_while_generation_is_silent_cancels_it(make_gateway) -> None:  # type: ignore[no-untyped-def]
    # Nothing is written after the first token for a minute, so no failed write can reveal
    # the closed socket: only watching the connection itself notices the client is gone.
    def script(request: GenerationRequest) -> list[GenerationEvent | float]:
        return [TextDelta("first"), 60.0, TextDelta("never"), Finished("end_turn", 7, 2)]

    url, engine = make_gateway(script)
    _leave_after_the_first_chunk(url)
    assert len(_wait_cancelled(engine)) == 1


def test_image_content_is_refused_for_local(make_gateway) -> None:  # type: ignore[no-untyped-def]
    url, _ = make_gateway(text_script("x"))
    with pytest.raises(openai.BadRequestError) as info:
        client(url).chat.completions.create(
            model="default",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,aGVsbG8="},
                        }
                    ],
                }
            ],
        )
    assert "text content only" in str(info.value)
