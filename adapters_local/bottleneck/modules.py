"""The adapter layers and the host that hooks them into a model.

Every adapter is position-wise (each token's hidden state is transformed on its own), so it gives
the same result whether the keys and values of earlier tokens come from a KV cache or not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adapters_local.bottleneck.config import WEIGHTS_FILE, BottleneckConfig

SITES = ("attn", "mlp", "layer")
UP_INIT_STD = 1e-4  # near zero: a fresh adapter leaves the base model's behaviour unchanged


class BottleneckLayer(nn.Module):
    """x + up(relu(down(x)))."""

    def __init__(self, hidden: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, bottleneck)
        self.up = nn.Linear(bottleneck, hidden)
        nn.init.normal_(self.up.weight, std=UP_INIT_STD)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        delta: torch.Tensor = self.up(torch.relu(self.down(normed)))
        return x + delta


class BottleneckAdapter(nn.Module):
    """One named adapter: a layer per (decoder layer, site)."""

    def __init__(self, config: BottleneckConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleDict(
            {
                _key(index, site): BottleneckLayer(config.hidden_size, config.bottleneck_size)
                for index in range(config.num_layers)
                for site in config.sites
            }
        )

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        self.config.save(folder)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))

    @classmethod
    def load(cls, folder: Path) -> BottleneckAdapter:
        from safetensors.torch import load_file

        adapter = cls(BottleneckConfig.load(folder))
        adapter.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        return adapter


def _key(layer: int, site: str) -> str:
    return f"{layer}_{site}"


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder's layer list: the first ModuleList whose items have attention and an MLP."""
    for module in model.modules():
        if (
            isinstance(module, nn.ModuleList)
            and len(module) > 0
            and hasattr(module[0], "self_attn")
            and hasattr(module[0], "mlp")
        ):
            return module
    raise ValueError("no decoder layers with self_attn and mlp found in this model")


def _module(layer: nn.Module, site: str) -> nn.Module:
    if site == "layer":
        return layer
    module = getattr(layer, "self_attn" if site == "attn" else "mlp")
    if not isinstance(module, nn.Module):
        raise TypeError(f"decoder layer has no {site} module")
    return module


class BottleneckHost:
    """Holds named adapters over one model and routes each batch row to one of them (or none)."""

    def __init__(self, model: nn.Module) -> None:
        self._layers = decoder_layers(model)
        self.adapters: dict[str, BottleneckAdapter] = {}
        self._rows: Sequence[str | None] = ()
        self._handles = [
            _module(layer, site).register_forward_hook(self._hook(index, site))
            for index, layer in enumerate(self._layers)
            for site in SITES
        ]

    def add(self, name: str, adapter: BottleneckAdapter, *, keep_dtype: bool = False) -> None:
        """Add ``adapter``; it moves to the model's device and (unless ``keep_dtype``, as training
        under autocast wants) to the model's dtype."""
        if adapter.config.num_layers != len(self._layers):
            raise ValueError(
                f"adapter {name!r} has {adapter.config.num_layers} layers, "
                f"the model has {len(self._layers)}"
            )
        parameter = next(self._layers.parameters())
        dtype = None if keep_dtype else parameter.dtype
        self.adapters[name] = adapter.to(device=parameter.device, dtype=dtype)

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()

    @contextmanager
    def route(self, rows: Sequence[str | None]) -> Iterator[None]:
        """Within the block, batch row i goes through adapter ``rows[i]`` (None: no adapter)."""
        unknown = {n for n in rows if n is not None and n not in self.adapters}
        if unknown:
            raise KeyError(f"unknown bottleneck adapter(s): {sorted(unknown)}")
        previous, self._rows = self._rows, tuple(rows)
        try:
            yield
        finally:
            self._rows = previous

    @contextmanager
    def activate(self, name: str, batch_size: int) -> Iterator[None]:
        with self.route([name] * batch_size):
            yield

    def _hook(self, index: int, site: str) -> Any:
        key = _key(index, site)

        def hook(_module: nn.Module, _args: Any, output: Any) -> Any:
            if not any(self._rows):
                return output
            hidden = output[0] if isinstance(output, tuple) else output
            adapted = self._apply(key, hidden)
            return (adapted, *output[1:]) if isinstance(output, tuple) else adapted

        return hook

    def _apply(self, key: str, hidden: torch.Tensor) -> torch.Tensor:
        rows = self._rows
        if len(rows) != hidden.shape[0]:
            raise ValueError(f"routing names {len(rows)} rows, the batch has {hidden.shape[0]}")
        names = {n for n in rows if n is not None}
        if len(names) == 1 and None not in rows:
            layers = self.adapters[rows[0]].layers  # type: ignore[index]
            return layers[key](hidden) if key in layers else hidden
        result = hidden.clone()
        for name in names:
            layers = self.adapters[name].layers
            if key in layers:
                index = [i for i, n in enumerate(rows) if n == name]
                result[index] = layers[key](hidden[index])
        return result
