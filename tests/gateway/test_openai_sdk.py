"""Acceptance 2: the official openai SDK against a running gateway, both providers."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.gateway.conftest import BEDROCK_MODEL
from tests.gateway.harness import TEST_KEY


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0, timeout=120)


def scripted(request: FakeRequest) -> Reply:
    return Reply(
        text="forty two",
        stop_reason="end_turn",
        input_tokens=17,
        output_tokens=3,
        cache_read_tokens=5,
        cache_write_tokens=2,
    )


def test_bedrock_non_streaming(bedrock_gateway: str, wire: BedrockWireServer) -> None:
    wire.handler = scripted
    result = client(bedrock_gateway).chat.completions.create(
        model="haiku",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "what is six times seven?"},
        ],
        max_tokens=50,
        temperature=0.2,
        stop=["END"],
    )
    assert result.choices[0].message.content == "forty two"
    assert result.choices[0].finish_reason == "stop"
    # Usage is what the upstream reported, cached prompt tokens folded in as OpenAI counts them.
    assert result.usage is not None
    assert result.usage.completion_tokens == 3
    assert result.usage.prompt_tokens == 17 + 5 + 2
    assert result.usage.prompt_tokens_details is not None
    assert result.usage.prompt_tokens_details.cached_tokens == 5
    (call,) = wire.calls
    assert call.model_id == BEDROCK_MODEL
    assert call.body["system"] == [{"text": "be brief"}]
    assert call.body["inferenceConfig"] == {
        "maxTokens": 50,
        "temperature": 0.2,
        "stopSequences": ["END"],
    }


def test_bedrock_streaming_with_usage(bedrock_gateway: str, wire: BedrockWireServer) -> None:
    wire.handler = lambda r: Reply(
        chunks=["one ", "two ", "three"], input_tokens=9, output_tokens=4, stop_reason="max_tokens"
    )
    stream = client(bedrock_gateway).chat.completions.create(
        model="haiku",
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length"
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (9, 4, 13)


def test_bedrock_streaming_without_usage_chunk(
    bedrock_gateway: str, wire: BedrockWireServer
) -> None:
    wire.handler = lambda r: Reply(chunks=["a", "b"])
    chunks = list(
        client(bedrock_gateway).chat.completions.create(
            model="haiku", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "ab"


def test_bedrock_throttle_surfaces_as_429(bedrock_gateway: str, wire: BedrockWireServer) -> None:
    wire.handler = lambda r: Reply(error="ThrottlingException")
    with pytest.raises(openai.RateLimitError) as info:
        client(bedrock_gateway).chat.completions.create(
            model="haiku", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"].isdigit()


@pytest.mark.slow
def test_local_non_streaming_and_streaming(local_gateway: str) -> None:
    c = client(local_gateway)
    prompt = [{"role": "user", "content": "uppercase: hello"}]
    result = c.chat.completions.create(model="default", messages=prompt, max_tokens=24)  # type: ignore[arg-type]
    assert result.usage is not None
    assert result.usage.prompt_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.choices[0].finish_reason in ("stop", "length")

    chunks = list(
        c.chat.completions.create(
            model="default",
            messages=prompt,
            max_tokens=24,
            stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
        )
    )
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    # Greedy decoding: the stream carries exactly the text of the non-streaming answer.
    assert streamed == result.choices[0].message.content
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.prompt_tokens == result.usage.prompt_tokens
    assert usage.completion_tokens == result.usage.completion_tokens


def test_models_lists_aliases(bedrock_gateway: str) -> None:
    ids = sorted(m.id for m in client(bedrock_gateway).models.list())
    assert ids == ["default", "haiku"]
