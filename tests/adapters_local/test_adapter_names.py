"""Adapter names that are also ``nn.Module`` attributes load and route (issue 14 item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters_local.models.loading import ModelError
from adapters_local.serving.engine import load_engine
from tests.adapters_local.serving_helpers import random_bottleneck, random_lora, request, run_all


def test_module_attribute_names_load_and_route(tmp_path: Path) -> None:
    lora = random_lora(tmp_path / "lora", seed=5)
    bottleneck = random_bottleneck(tmp_path / "bn", seed=6)
    engine = load_engine(
        "builtin",
        {
            "plain": lora,
            "double": lora,  # the same folder under names torch itself uses
            "train": bottleneck,
            "float": "weighted:double=1.0",
            "to": "stack:double+train",
            "__base__": bottleneck,  # peft's own word for "no LoRA" in a mixed batch
        },
        device="cpu",
        threads=1,
    )
    try:
        assert set(engine.adapter_names) == {"plain", "double", "train", "float", "to", "__base__"}
        names = [None, "plain", "double", "float", "train", "__base__", "to"]
        results = run_all(engine, [request("Copy: abcdef", adapter=n) for n in names])
        base, plain, double, mixed, train, base_named, stacked = (r.text for r in results)
        assert plain == double == mixed != base  # one LoRA under three names
        assert train == base_named != base  # one bottleneck under two names
        assert stacked not in (base, plain, train)
    finally:
        engine.close()


def test_duplicate_and_empty_names_are_refused(tmp_path: Path) -> None:
    from adapters_local.serving.served_model import ServedModel

    model = ServedModel("builtin", "cpu")
    folder = random_bottleneck(tmp_path / "bn", seed=7)
    model.load_adapter("a", folder)
    with pytest.raises(ModelError, match="already in use"):
        model.load_adapter("a", folder)
    with pytest.raises(ModelError, match="empty"):
        model.load_adapter("", folder)
