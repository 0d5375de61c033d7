"""The running batch's KV cache: rows join (left-padded to a common length) and leave.

Every row's tokens end in the last column, so one decode step feeds one token per row. A row that
joins a batch whose cache is shorter than its prompt makes the others' padding grow on the left;
once rows leave, columns that are padding for every remaining row are cut off again.

Works on ``DynamicCache`` in both layouts transformers has used: ``layers[i].keys/values``
(5.x) and ``key_cache``/``value_cache`` lists (4.x).
"""

from __future__ import annotations

from typing import Any


class UnmergeableCacheError(RuntimeError):
    """The model's cache is not one plain tensor pair per layer (e.g. sliding windows)."""


def cache_tensors(cache: Any) -> list[tuple[Any, Any]]:
    layers = getattr(cache, "layers", None)
    if layers is not None:
        if any(type(layer).__name__ != "DynamicLayer" for layer in layers):
            raise UnmergeableCacheError("only full-attention dynamic cache layers can be merged")
        return [(layer.keys, layer.values) for layer in layers]
    return list(zip(cache.key_cache, cache.value_cache, strict=True))


def make_cache(tensors: list[tuple[Any, Any]]) -> Any:
    from transformers import DynamicCache

    if hasattr(DynamicCache, "from_legacy_cache"):
        return DynamicCache.from_legacy_cache(tuple(tensors))
    return DynamicCache(ddp_cache_data=tensors)


def _pad_left(tensor: Any, columns: int, dim: int) -> Any:
    import torch.nn.functional as F

    if columns == 0:
        return tensor
    # F.pad counts dimensions from the last one, two numbers per dimension.
    spec = [0, 0] * (tensor.dim() - 1 - dim % tensor.dim()) + [columns, 0]
    return F.pad(tensor, spec)


def merge(cache: Any, mask: Any, other_cache: Any, other_mask: Any) -> tuple[Any, Any]:
    """One cache and attention mask holding ``cache``'s rows then ``other_cache``'s rows."""
    import torch

    width = max(mask.shape[-1], other_mask.shape[-1])
    pad_a, pad_b = width - mask.shape[-1], width - other_mask.shape[-1]
    tensors = [
        (
            torch.cat([_pad_left(k, pad_a, -2), _pad_left(k2, pad_b, -2)], dim=0),
            torch.cat([_pad_left(v, pad_a, -2), _pad_left(v2, pad_b, -2)], dim=0),
        )
        for (k, v), (k2, v2) in zip(cache_tensors(cache), cache_tensors(other_cache), strict=True)
    ]
    merged_mask = torch.cat([_pad_left(mask, pad_a, -1), _pad_left(other_mask, pad_b, -1)], dim=0)
    return make_cache(tensors), merged_mask


def trim_padding(cache: Any, mask: Any) -> tuple[Any, Any]:
    """Drop leading columns that are padding in every row (they only cost time)."""
    used = mask.sum(dim=0).nonzero()
    start = int(used[0].item()) if used.numel() else 0
    if start == 0:
        return cache, mask
    tensors = [(k[:, :, start:, :], v[:, :, start:, :]) for k, v in cache_tensors(cache)]
    return make_cache(tensors), mask[:, start:]
