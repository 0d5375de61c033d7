"""The AWS Deep Learning Container image for PyTorch training, and the instance catalogue.

Both are data files beside this module, each naming its source and the date it was recorded, so a
new region, image release or price is a data change, not a code change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from customize.errors import UsageError

_HERE = Path(__file__).parent


@cache
def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_HERE / name).read_text())
    return data


@dataclass(frozen=True)
class InstanceType:
    name: str
    gpus: int
    gpu: str | None
    vcpus: int
    memory_gib: int
    usd_per_hour: float


def instance_types() -> dict[str, InstanceType]:
    return {
        name: InstanceType(name=name, **spec)
        for name, spec in _load("instances.json")["instances"].items()
    }


def instance_type(name: str) -> InstanceType:
    known = instance_types()
    if name not in known:
        gpu = sorted(n for n, spec in known.items() if spec.gpus)
        raise UsageError(
            f"--instance-type {name!r} is not a SageMaker training instance Strata knows; "
            f"GPU choices: {', '.join(gpu)} (see customize/sagemaker/instances.json)"
        )
    return known[name]


def price_source() -> str:
    data = _load("instances.json")
    return f"{data['source']} ({data['source_url']}, recorded {data['recorded']})"


def training_image(region: str, instance: InstanceType) -> str:
    """The DLC PyTorch training image URI for ``region``, GPU or CPU build per instance."""
    data = _load("images.json")
    account = data["registries"].get(region)
    if account is None:
        raise UsageError(
            f"no AWS Deep Learning Container for PyTorch training is listed for region {region!r}; "
            "pass --image with an image URI of your own"
        )
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    tag = data["tags"]["gpu" if instance.gpus else "cpu"]
    return f"{account}.dkr.ecr.{region}.{domain}/{data['repository']}:{tag}"
