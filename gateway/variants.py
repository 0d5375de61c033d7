"""``variant:<name>`` targets, resolved through the customize package's variant registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class RegistryResolver:
    """Reads ``$STRATA_HOME/variants.sqlite`` on each lookup, so variants that the CLI adds
    while the gateway runs are routable at once."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def resolve(self, name: str) -> str | None:
        if not self._path.exists():
            return None
        from customize.variants.store import VariantStore

        variant = VariantStore(self._path).get(name)
        return variant.target if variant else None

    def names(self) -> list[str]:
        """Every registered variant's name, sorted (an empty list with no registry yet)."""
        if not self._path.exists():
            return []
        from customize.variants.store import VariantStore

        return sorted(v.name for v in VariantStore(self._path).list())

    def describe(self, name: str) -> dict[str, Any] | None:
        """Everything the registry records about a variant (lineage included), or None."""
        if not self._path.exists():
            return None
        from customize.variants.store import VariantStore

        variant = VariantStore(self._path).get(name)
        return variant.as_dict() if variant else None

    def link(self, name: str, entries: dict[str, str]) -> bool:
        from customize.variants.store import VariantStore

        return VariantStore(self._path).link(name, entries)
