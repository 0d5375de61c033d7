"""Cost from real Converse usage shapes: Decimal, cache tokens at their own rates, unknown
prices unknown (never 0), provisioned marked so."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.accounting.prices import (
    PriceOverride,
    PriceTable,
    TokenUsage,
    builtin_rows,
    cost_of,
    usage_from_converse,
)

HAIKU_35 = "bedrock:anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"

# (target, Converse usage as Bedrock returns it, expected USD computed by hand)
CASES: list[tuple[str, dict[str, Any], str]] = [
    # Plain call: 1,000 in at $0.80/M + 500 out at $4/M.
    (HAIKU_35, {"inputTokens": 1000, "outputTokens": 500, "totalTokens": 1500}, "0.0028"),
    # Cache read: 2,000 read at $0.08/M, 100 fresh in, 50 out; total counts the cached tokens.
    (
        HAIKU_35,
        {
            "inputTokens": 100,
            "outputTokens": 50,
            "totalTokens": 2150,
            "cacheReadInputTokens": 2000,
            "cacheWriteInputTokens": 0,
        },
        # 100*0.80 + 50*4 + 2000*0.08 = 80 + 200 + 160 = 440 / 1e6
        "0.00044",
    ),
    # Cache write: 3,000 written at $1.00/M.
    (
        HAIKU_35,
        {
            "inputTokens": 10,
            "outputTokens": 20,
            "totalTokens": 3030,
            "cacheReadInputTokens": 0,
            "cacheWriteInputTokens": 3000,
        },
        # 10*0.8 + 20*4 + 3000*1.0 = 8 + 80 + 3000 = 3088 / 1e6
        "0.003088",
    ),
    # Global profile of a 4.5 model is 10% cheaper than the geographic one.
    (
        f"bedrock:global.{SONNET_45}",
        {"inputTokens": 1_000_000, "outputTokens": 1_000_000, "totalTokens": 2_000_000},
        "18",
    ),
    (
        f"bedrock:us.{SONNET_45}",
        {"inputTokens": 1_000_000, "outputTokens": 1_000_000, "totalTokens": 2_000_000},
        "19.8",
    ),
    # Nova Micro: fractional rates stay exact.
    (
        "bedrock:amazon.nova-micro-v1:0",
        {"inputTokens": 7, "outputTokens": 3, "totalTokens": 1010, "cacheReadInputTokens": 1000},
        # 7*0.035 + 3*0.14 + 1000*0.00875 = 0.245 + 0.42 + 8.75 = 9.415 / 1e6
        "0.000009415",
    ),
]


@pytest.mark.parametrize(("target", "usage", "usd"), CASES)
def test_cost_of_converse_usage(target: str, usage: dict[str, Any], usd: str) -> None:
    cost = PriceTable().cost(target, usage_from_converse(usage))
    assert cost.pricing == "token"
    assert cost.usd == Decimal(usd)


def test_cache_tokens_inside_input_are_not_billed_twice() -> None:
    # Some providers count cached tokens inside inputTokens (total = input + output).
    usage = {
        "inputTokens": 2100,
        "outputTokens": 50,
        "totalTokens": 2150,
        "cacheReadInputTokens": 2000,
    }
    assert usage_from_converse(usage) == TokenUsage(100, 50, 2000, 0)
    # Bedrock's own shape is left as it is.
    bedrock = {
        "inputTokens": 100,
        "outputTokens": 50,
        "totalTokens": 2150,
        "cacheReadInputTokens": 2000,
    }
    assert usage_from_converse(bedrock) == TokenUsage(100, 50, 2000, 0)


def test_cache_savings() -> None:
    cost = PriceTable().cost(HAIKU_35, TokenUsage(0, 0, 1_000_000, 0))
    assert cost.usd == Decimal("0.08")
    assert cost.cache_savings_usd == Decimal("0.72")


def test_unknown_price_is_unknown_never_zero() -> None:
    cost = PriceTable().cost("bedrock:some.unknown-model-v1:0", TokenUsage(10, 10))
    assert cost.usd is None and cost.pricing == "unknown"
    # Claude 3 Haiku has no cache rates on Bedrock: cache tokens make the cost unknown.
    haiku = "bedrock:anthropic.claude-3-haiku-20240307-v1:0"
    assert PriceTable().cost(haiku, TokenUsage(10, 10)).usd == Decimal("0.000015")
    assert PriceTable().cost(haiku, TokenUsage(10, 10, cache_read=5)).usd is None


def test_overrides_add_rows_and_mark_provisioned() -> None:
    arn = "bedrock:arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc"
    table = PriceTable(
        {
            "bedrock:my-custom": PriceOverride.model_validate(
                {"input_per_mtok": 0.3, "output_per_mtok": 1.1}
            ),
            arn: PriceOverride(provisioned=True),
            HAIKU_35: PriceOverride.model_validate({"input_per_mtok": 1, "output_per_mtok": 2}),
        }
    )
    assert table.cost("bedrock:my-custom", TokenUsage(1_000_000, 1_000_000)).usd == Decimal("1.4")
    provisioned = table.cost(arn, TokenUsage(100, 100))
    assert provisioned.usd is None and provisioned.pricing == "provisioned"
    assert table.cost(HAIKU_35, TokenUsage(1_000_000, 0)).usd == Decimal(1)
    assert table.worst_case_usd(arn, 10, 10) == Decimal(0)


def test_override_needs_both_rates() -> None:
    with pytest.raises(ValueError, match="input_per_mtok"):
        PriceOverride.model_validate({"output_per_mtok": 1})


def test_worst_case_uses_the_dearest_input_rate() -> None:
    # A cache write ($1.00/M) costs more than plain input ($0.80/M) for 3.5 Haiku.
    assert PriceTable().worst_case_usd(HAIKU_35, 1_000_000, 1_000_000) == Decimal("5.00")
    assert PriceTable().worst_case_usd("bedrock:nope", 1, 1) is None


def test_every_row_has_a_source_and_profiles_expand() -> None:
    rows = builtin_rows()
    assert all(price.source.startswith("https://") for price in rows.values())
    for prefix in ("us", "eu", "apac", "global"):
        assert f"bedrock:{prefix}.{SONNET_45}" in rows
    families = [
        "claude-3-haiku",
        "claude-3-5-sonnet",
        "claude-3-7",
        "claude-opus-4",
        "llama3-1",
        "llama3-3",
        "mistral",
        "titan-text",
        "nova-micro",
        "nova-premier",
    ]
    for family in families:
        assert any(family in target for target in rows), family


def test_local_targets_cost_nothing_by_default() -> None:
    cost = PriceTable().cost("local:builtin", TokenUsage(100, 100))
    assert cost.usd == 0 and cost.pricing == "local"


def test_the_last_cost_kept_for_the_second_pricing_is_never_anothers() -> None:
    """Each call is priced twice in a row (ledger, then observability); the table keeps its last
    answer for that, which must be exact for the same target and usage only."""
    table = PriceTable()
    target = HAIKU_35
    small, large = TokenUsage(1_000, 100), TokenUsage(2_000, 100)
    first = table.cost(target, small)
    assert table.cost(target, small) == first
    assert table.cost(target, large) != first
    assert table.cost(target, small) == first == cost_of(table.lookup(target), small)
    assert table.cost("bedrock:no-such-model", small).pricing == "unknown"
