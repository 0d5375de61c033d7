"""Pure: the cache points a route's ``prompt_cache:`` asks the gateway to insert, per target.

For a Bedrock model in the prompt-cache table (prompt_models.py) a ``cachePoint`` goes after
the tools, after the system prompt and (``messages: true``) after the last user turn, in that
order, which is the order Bedrock builds the cached prefix in. A point is inserted only where

- the model takes cache points in that field (Nova: not in tools);
- the section does not already end with one (the client's own points are kept as they are,
  never doubled);
- the prefix since the previous point (the client's or ours) reaches the threshold: the
  larger of the route's ``min_tokens`` and the model's minimum per checkpoint (AWS: the first
  checkpoint after the minimum, the second after twice it);
- the request stays within the model's checkpoints per request, the client's counted first.

Tokens are estimated low on purpose, so a point is inserted only when the prefix is very
likely long enough: text and tool specs (as JSON) count one token per 5 characters (English
runs about 3.5 to 4.5 characters a token in Claude's and Nova's tokenizers), images, documents
and other non-text blocks count nothing. A point placed below the minimum would not fail (Bedrock
ignores it) but would spend one of the few checkpoints a request may carry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from gateway.cache.prompt_models import CacheModel, lookup
from gateway.canonical import ContentBlock, ConverseRequest, SystemBlock
from gateway.pipeline.call import Call, Plan
from gateway.pipeline.policy import PromptCachePolicy
from gateway.targets import Target

CHARS_PER_TOKEN = 5
POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}


def estimate_tokens(chars: int) -> int:
    return chars // CHARS_PER_TOKEN


def _is_point(block: Any) -> bool:
    if isinstance(block, dict):
        return "cachePoint" in block
    return getattr(block, "cachePoint", None) is not None


def _block_chars(block: SystemBlock | ContentBlock) -> int:
    if block.text is not None:
        return len(block.text)
    if isinstance(block, ContentBlock) and block.toolResult is not None:
        return len(orjson.dumps(block.toolResult))
    if isinstance(block, ContentBlock) and block.toolUse is not None:
        return len(orjson.dumps(block.toolUse))
    return 0  # images, documents, ...: unknown, so counted as nothing


def _tool_chars(tool: dict[str, Any]) -> int:
    return len(orjson.dumps(tool))


class _Walk:
    """Tokens since the last cache point, and the points still allowed."""

    def __init__(self, threshold: int, budget: int) -> None:
        self.threshold = threshold
        self.budget = budget
        self.since = 0
        self.inserted: list[str] = []

    def add(self, blocks: Iterable[Any], chars: Any) -> None:
        for block in blocks:
            if _is_point(block):
                self.since = 0
            else:
                self.since += estimate_tokens(chars(block))

    def wants(self, section: list[Any], where: str) -> bool:
        if not section or _is_point(section[-1]) or self.budget <= 0:
            return False
        if self.since < self.threshold:
            return False
        self.budget -= 1
        self.since = 0
        self.inserted.append(where)
        return True


def count_points(request: ConverseRequest) -> int:
    tools = (request.toolConfig or {}).get("tools") or []
    n = sum(1 for t in tools if _is_point(t))
    n += sum(1 for b in request.system or () if _is_point(b))
    return n + sum(1 for m in request.messages for b in m.content if _is_point(b))


def insert_points(
    request: ConverseRequest, model: CacheModel, policy: PromptCachePolicy
) -> tuple[ConverseRequest, list[str]]:
    """The request with the points this model and policy call for; where they went."""
    walk = _Walk(max(policy.min_tokens, model.min_tokens), model.max_checkpoints)
    walk.budget -= count_points(request)
    if walk.budget <= 0:
        return request, []
    update: dict[str, Any] = {}

    tools: list[dict[str, Any]] = list((request.toolConfig or {}).get("tools") or [])
    walk.add(tools, _tool_chars)
    if policy.tools and "tools" in model.fields and walk.wants(tools, "tools"):
        update["toolConfig"] = {**(request.toolConfig or {}), "tools": [*tools, dict(POINT)]}

    system = list(request.system or [])
    walk.add(system, _block_chars)
    if policy.system and "system" in model.fields and walk.wants(system, "system"):
        update["system"] = [*system, SystemBlock.model_validate(POINT)]

    if policy.messages and "messages" in model.fields:
        last_user = max(
            (i for i, m in enumerate(request.messages) if m.role == "user"), default=None
        )
        if last_user is not None:
            for message in request.messages[: last_user + 1]:
                walk.add(message.content, _block_chars)
            message = request.messages[last_user]
            if walk.wants(message.content, "messages"):
                messages = list(request.messages)
                content = [*message.content, ContentBlock.model_validate(POINT)]
                messages[last_user] = message.model_copy(update={"content": content})
                update["messages"] = messages

    if not update:
        return request, []
    copy = request.model_copy(update=update)
    copy._options = request._options  # private attributes are not part of model_copy's update
    return copy, walk.inserted


def for_target(
    request: ConverseRequest, target: Target, policy: PromptCachePolicy | None
) -> tuple[ConverseRequest, list[str]]:
    """What this attempt sends: the request as is, unless the route asks for prompt caching
    and ``target`` is a Bedrock model that takes cache points."""
    if policy is None or target.kind != "bedrock":
        return request, []
    model = lookup(target.model)
    if model is None:
        return request, []
    return insert_points(request, model, policy)


def prepare(call: Call, plan: Plan, target: Target) -> ConverseRequest:
    """The request for one attempt; where points were inserted goes in
    ``call.context["prompt_cache_points"]`` (the last attempt's)."""
    policy = plan.policy.prompt_cache
    if policy is None:
        return call.request
    request, inserted = for_target(call.request, target, policy)
    call.context["prompt_cache_points"] = inserted
    return request
