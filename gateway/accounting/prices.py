"""Prices per target and the cost of one call's usage, in ``Decimal``.

The table is data (``prices.json``: USD per 1M tokens, each row with its source and date);
``strata.yaml``'s ``prices:`` adds or overrides rows keyed by target. Unknown prices stay
unknown: a call with no price gets a null cost, never 0.

Billable input excludes cache reads and writes, which have their own rates. Bedrock's Converse
``inputTokens`` already excludes them (``totalTokens`` = input + output + cacheRead +
cacheWrite); a usage whose total shows the cache tokens inside ``inputTokens`` is corrected.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger("strata.accounting.prices")

MTOK = Decimal(1_000_000)
PROFILE_PREFIXES = ("us", "eu", "apac", "global")
# "none": the call used no tokens (refused, or failed before the upstream counted any).
Pricing = Literal["token", "provisioned", "local", "unknown", "none"]


class PriceOverride(BaseModel):
    """One ``prices:`` row in strata.yaml (USD per 1M tokens), keyed by target."""

    model_config = ConfigDict(extra="forbid")

    input_per_mtok: Decimal | None = Field(default=None, ge=0)
    output_per_mtok: Decimal | None = Field(default=None, ge=0)
    cache_read_per_mtok: Decimal | None = Field(default=None, ge=0)
    cache_write_per_mtok: Decimal | None = Field(default=None, ge=0)
    # Provisioned throughput is billed per hour: tokens are recorded, the cost is marked so.
    provisioned: bool = False

    @model_validator(mode="after")
    def _complete(self) -> PriceOverride:
        if not self.provisioned and (self.input_per_mtok is None or self.output_per_mtok is None):
            raise ValueError("needs input_per_mtok and output_per_mtok (or provisioned: true)")
        return self


@dataclass(frozen=True)
class Price:
    input: Decimal | None
    output: Decimal | None
    cache_read: Decimal | None
    cache_write: Decimal | None
    pricing: Pricing = "token"
    source: str = ""


@dataclass(frozen=True)
class TokenUsage:
    input: int = 0  # billable input: cache reads and writes excluded
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write


def usage_from_converse(usage: Mapping[str, Any] | None) -> TokenUsage:
    """Token counts from a Converse ``usage`` object (response or stream metadata)."""
    if not usage:
        return TokenUsage()
    total = usage.get("totalTokens")
    return token_usage(
        int(usage.get("inputTokens") or 0),
        int(usage.get("outputTokens") or 0),
        int(usage.get("cacheReadInputTokens") or 0),
        int(usage.get("cacheWriteInputTokens") or 0),
        None if total is None else int(total),
    )


def token_usage(inputs: int, outputs: int, read: int, write: int, total: int | None) -> TokenUsage:
    if (read or write) and total is not None and total == inputs + outputs:
        # The cached tokens were counted inside inputTokens; bill them only at their own rates.
        inputs = max(0, inputs - read - write)
    return TokenUsage(inputs, outputs, read, write)


@dataclass(frozen=True)
class Cost:
    usd: Decimal | None  # None: unknown (no price), or provisioned (billed per hour)
    pricing: Pricing
    cache_savings_usd: Decimal | None = None


def _rate(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _price(block: Mapping[str, Any], source: str) -> Price:
    return Price(
        _rate(block.get("input_per_mtok")),
        _rate(block.get("output_per_mtok")),
        _rate(block.get("cache_read_per_mtok")),
        _rate(block.get("cache_write_per_mtok")),
        "token",
        source,
    )


@functools.cache
def builtin_rows() -> dict[str, Price]:
    """``prices.json`` expanded: every model id and its inference profile ids, as targets."""
    raw = json.loads(
        (resources.files("gateway.accounting") / "prices.json").read_text(encoding="utf-8")
    )
    rows: dict[str, Price] = {}
    for row in raw["models"]:
        source = f"{row['source']} ({row['date']})"
        regional = _price(row, source)
        rows[f"bedrock:{row['id']}"] = regional
        for prefix in row.get("profiles", []):
            if prefix not in PROFILE_PREFIXES:
                raise ValueError(f"prices.json: {row['id']}: unknown profile prefix {prefix!r}")
            block = row.get("global", row) if prefix == "global" else row
            rows[f"bedrock:{prefix}.{row['id']}"] = _price(block, source)
    return rows


class PriceTable:
    def __init__(self, overrides: Mapping[str, PriceOverride] | None = None) -> None:
        self._rows = dict(builtin_rows())
        self._last: tuple[tuple[str, TokenUsage], Cost] | None = None
        for target, o in (overrides or {}).items():
            self._rows[target] = Price(
                o.input_per_mtok,
                o.output_per_mtok,
                o.cache_read_per_mtok,
                o.cache_write_per_mtok,
                "provisioned" if o.provisioned else "token",
                "strata.yaml",
            )

    def lookup(self, target: str) -> Price | None:
        found = self._rows.get(target)
        if found is not None:
            return found
        if target.startswith("local:"):
            # A local model has no per-token fee; an explicit row can still price it.
            return Price(Decimal(0), Decimal(0), Decimal(0), Decimal(0), "local", "local")
        return None

    def cost(self, target: str, usage: TokenUsage) -> Cost:
        # Every call is priced twice in a row, by the ledger's settle hook and then by
        # observability's, with the same arguments: the last answer is kept for the second.
        key = (target, usage)
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        cost = cost_of(self.lookup(target), usage)
        self._last = (key, cost)
        return cost

    def worst_case_usd(self, target: str, input_tokens: int, output_tokens: int) -> Decimal | None:
        """The most a call may cost: every input token at the dearest input rate it could be
        billed at (a cache write can cost more than plain input) and ``output_tokens`` out."""
        price = self.lookup(target)
        if price is None:
            return None
        if price.pricing == "provisioned":
            return Decimal(0)
        if price.input is None or price.output is None:
            return None
        rates = [r for r in (price.input, price.cache_write, price.cache_read) if r is not None]
        return (max(rates) * input_tokens + price.output * output_tokens) / MTOK


def cost_of(price: Price | None, usage: TokenUsage) -> Cost:
    if price is None:
        return Cost(None, "unknown")
    if price.pricing == "provisioned":
        return Cost(None, "provisioned")
    parts: list[tuple[int, Decimal | None]] = [
        (usage.input, price.input),
        (usage.output, price.output),
        (usage.cache_read, price.cache_read),
        (usage.cache_write, price.cache_write),
    ]
    if any(tokens and rate is None for tokens, rate in parts):
        return Cost(None, "unknown")  # tokens of a kind this row has no rate for
    usd = sum(((rate or Decimal(0)) * tokens for tokens, rate in parts), Decimal(0)) / MTOK
    savings = None
    if price.input is not None and price.cache_read is not None:
        savings = (price.input - price.cache_read) * usage.cache_read / MTOK
    return Cost(usd, price.pricing, savings)
