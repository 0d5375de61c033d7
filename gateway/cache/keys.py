"""Pure: whether a call may use the cache, and the key of its entry.

The key is a digest of everything that decides the answer once routing is done: the tenant,
the alias and experiment arm, the targets after variant resolution, streamed or not, and the
canonical request normalised (key order, absent and null fields alike), so that an OpenAI and
a Bedrock request that mean the same thing share one entry and tenants or arms never do.
"""

from __future__ import annotations

import hashlib

import orjson

from gateway.errors import StrataError
from gateway.pipeline.call import Call, Plan
from gateway.pipeline.policy import CachePolicy


def tenant_prefix(tenant: str) -> str:
    """Every key of ``tenant`` starts with this (flush by tenant)."""
    return hashlib.sha256(b"tenant\0" + tenant.encode()).hexdigest()[:24] + ":"


def bypass_reason(call: Call, policy: CachePolicy | None) -> str | None:
    """Why this call neither reads nor writes the cache, or None when it may."""
    if policy is None:
        return "the route has no cache"
    if call.hints.cache == "no-store":
        return "no-store"
    if policy.only_temperature_zero:
        config = call.request.inferenceConfig
        if config is None or config.temperature is None or config.temperature > 0:
            return "temperature is not 0"
    return None


def resolved_targets(plan: Plan) -> list[str]:
    targets = []
    for target in plan.targets:
        try:
            targets.append(str(plan.resolve(target)))
        except StrataError:
            targets.append(str(target))  # unknown variant: the attempt stage will say so
    return targets


def cache_key(call: Call, plan: Plan, targets: list[str] | None = None) -> str:
    if targets is None:
        targets = resolved_targets(plan)
    doc = {
        "alias": plan.alias,
        "variant": plan.variant,
        "targets": targets,
        "stream": call.stream,
        "request": call.request.model_dump(mode="json", exclude_none=True),
    }
    digest = hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return tenant_prefix(call.principal.tenant) + digest
