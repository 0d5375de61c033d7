"""The semantic cache: a call whose exact entry is missing may be served the answer of an
earlier call that asked nearly the same thing.

"Nearly the same" is narrow on purpose. Everything but the text of the last user turn must be
identical (tenant, alias, experiment arm, resolved targets, streamed or not, system prompt,
earlier turns, tools, inference settings, the embedder): those go into the *scope*, a digest
under the tenant's prefix, so tenants, arms and conversations never meet. Only the last user
turn's text is embedded, and a stored call is a match when its cosine with this one is at least
the route's ``threshold``. (Embedding the whole conversation instead would let a long shared
system prompt make any two questions look alike.) The vector points at the exact cache's own
entry, so the answer is stored once and expires with it.

An embedder that fails (Bedrock down, throttled) makes the lookup a miss; the call goes on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import orjson

from gateway.cache.embedders import Embedder
from gateway.cache.keys import tenant_prefix
from gateway.cache.vectors import VectorIndex
from gateway.errors import StrataError
from gateway.pipeline.call import Call, Plan
from gateway.pipeline.policy import SemanticCachePolicy

log = logging.getLogger("strata.cache")

EmbedderFor = Callable[[str], Embedder]


@dataclass
class Query:
    scope: str
    text: str
    policy: SemanticCachePolicy
    embedder: Embedder
    vector: np.ndarray | None = None


def query_of(call: Call, plan: Plan, targets: list[str], embedder: Embedder) -> Query | None:
    """The scope and the text to embed; None when the last turn is not a user's text."""
    policy = plan.policy.semantic_cache
    if policy is None or not call.request.messages:
        return None
    request = call.request.model_dump(mode="json", exclude_none=True)
    last = request["messages"][-1]
    if last["role"] != "user":
        return None
    texts = [b["text"] for b in last["content"] if set(b) == {"text"}]
    others = [b for b in last["content"] if set(b) != {"text"}]
    if not texts:
        return None
    request["messages"][-1] = {"role": "user", "content": others}
    doc = {
        "alias": plan.alias,
        "variant": plan.variant,
        "targets": targets,
        "stream": call.stream,
        "embedder": embedder.name,
        "request": request,
    }
    digest = hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return Query(tenant_prefix(call.principal.tenant) + digest, "\n".join(texts), policy, embedder)


class SemanticCache:
    def __init__(self, index: VectorIndex, embedder_for: EmbedderFor) -> None:
        self.index = index
        self._embedder_for = embedder_for
        self.hits = 0
        self.errors = 0  # embeddings that failed (lookups and stores skipped)

    def query(self, call: Call, plan: Plan, targets: list[str]) -> Query | None:
        policy = plan.policy.semantic_cache
        if policy is None:
            return None
        return query_of(call, plan, targets, self._embedder_for(policy.embedder))

    async def _vector(self, query: Query) -> np.ndarray | None:
        if query.vector is None:
            try:
                query.vector = await query.embedder.embed(query.text)
            except (StrataError, OSError) as exc:
                self.errors += 1
                log.warning("semantic cache: embedding failed (%s); treated as a miss", exc)
                return None
        return query.vector

    async def find(self, query: Query) -> tuple[str, float] | None:
        """The key of the closest stored answer and its similarity, when at the threshold."""
        vector = await self._vector(query)
        if vector is None:
            return None
        found = await self.index.search(query.scope, vector)
        if found is None or found[1] < query.policy.threshold:
            return None
        return found

    async def forget(self, query: Query, key: str) -> None:
        await self.index.drop(query.scope, key)

    async def remember(self, query: Query, key: str, ttl_s: float) -> None:
        vector = await self._vector(query)
        if vector is not None:
            await self.index.add(query.scope, key, vector, query.policy.max_entries, ttl_s)
