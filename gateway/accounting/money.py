"""Money as integer pico-USD (1e-12 USD): exact in SQL sums, Redis counters and Decimal."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

PICO = Decimal(10) ** 12


def usd_to_pusd(usd: Decimal) -> int:
    return int((usd * PICO).to_integral_value(rounding=ROUND_HALF_EVEN))


def pusd_to_usd(pusd: int) -> Decimal:
    return Decimal(pusd).scaleb(-12)


def usd_text(usd: Decimal | None) -> str | None:
    """A plain decimal string (no exponent, no trailing zeros) for JSON output."""
    if usd is None:
        return None
    text = f"{usd.normalize():f}"
    return text if text != "-0" else "0"
