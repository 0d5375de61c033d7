"""The saved description of a bottleneck adapter (``bottleneck_config.json``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, cast

Style = Literal["pfeiffer", "houlsby"]
CONFIG_FILE = "bottleneck_config.json"
WEIGHTS_FILE = "bottleneck.safetensors"


@dataclass(frozen=True)
class BottleneckConfig:
    style: Style
    hidden_size: int
    num_layers: int
    reduction_factor: int = 16
    base_model: str = ""

    def __post_init__(self) -> None:
        if self.style not in ("pfeiffer", "houlsby"):
            raise ValueError(f"unknown bottleneck style {self.style!r} (pfeiffer or houlsby)")
        if self.reduction_factor < 1 or self.hidden_size // self.reduction_factor < 1:
            raise ValueError("reduction factor must leave a bottleneck of at least 1 unit")

    @property
    def bottleneck_size(self) -> int:
        return self.hidden_size // self.reduction_factor

    @property
    def sites(self) -> tuple[str, ...]:
        """Where adapters sit in each decoder layer.

        Houlsby: on the attention and the MLP sub-layer outputs, before their skip connections
        (as in Houlsby et al. 2019). Pfeiffer: once per layer after the MLP block, reading the
        residual stream plus the MLP output (AdapterHub's Pfeiffer configuration).
        """
        return ("layer",) if self.style == "pfeiffer" else ("attn", "mlp")

    def save(self, folder: Path) -> None:
        data = {"adapter_type": "bottleneck", **asdict(self)}
        (folder / CONFIG_FILE).write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> BottleneckConfig:
        data = json.loads((folder / CONFIG_FILE).read_text())
        return cls(
            style=cast(Style, data["style"]),
            hidden_size=int(data["hidden_size"]),
            num_layers=int(data["num_layers"]),
            reduction_factor=int(data["reduction_factor"]),
            base_model=str(data.get("base_model", "")),
        )


def is_bottleneck_folder(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file()
