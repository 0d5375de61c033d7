"""From SageMaker's environment to one torchrun command line (pure; standard library only).

SageMaker starts the entry point once per instance and describes the cluster in environment
variables (https://github.com/aws/sagemaker-training-toolkit, ENVIRONMENT_VARIABLES.md):
``SM_HOSTS`` (JSON list), ``SM_CURRENT_HOST``, ``SM_NUM_GPUS``, ``SM_CHANNEL_<NAME>``,
``SM_MODEL_DIR``, ``SM_HPS``. Each instance runs torchrun with the same rendezvous (the first host,
sorted as SageMaker lists them) and its own node rank; torchrun starts one trainer per GPU.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MASTER_PORT = 29500
DEFAULT_CHECKPOINTS = "/opt/ml/checkpoints"


@dataclass(frozen=True)
class LaunchPlan:
    hosts: tuple[str, ...]
    node_rank: int
    processes_per_host: int
    gpus: int
    master_addr: str
    master_port: int
    checkpoint_dir: Path
    model_dir: Path
    channels: dict[str, Path]

    @property
    def world_size(self) -> int:
        return len(self.hosts) * self.processes_per_host

    def torchrun_args(self, script: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nnodes={len(self.hosts)}",
            f"--node_rank={self.node_rank}",
            f"--nproc_per_node={self.processes_per_host}",
            f"--master_addr={self.master_addr}",
            f"--master_port={self.master_port}",
            script,
            "--worker",
        ]


def hyperparameters(env: Mapping[str, str]) -> dict[str, str]:
    """The job's hyper-parameters: ``SM_HPS`` or the toolkit's hyperparameters.json."""
    raw = env.get("SM_HPS")
    if raw is None:
        config = Path(env.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"))
        path = config / "hyperparameters.json"
        raw = path.read_text() if path.is_file() else "{}"
    data = json.loads(raw)
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


def plan_from_env(env: Mapping[str, str], hps: Mapping[str, str]) -> LaunchPlan:
    hosts = tuple(json.loads(env.get("SM_HOSTS", '["algo-1"]')))
    current = env.get("SM_CURRENT_HOST", hosts[0])
    if current not in hosts:
        raise ValueError(f"SM_CURRENT_HOST {current!r} is not one of SM_HOSTS {list(hosts)}")
    gpus = int(env.get("SM_NUM_GPUS", "0"))
    wanted = hps.get("processes_per_host")
    processes = int(float(wanted)) if wanted else max(1, gpus)
    channels = {
        key.removeprefix("SM_CHANNEL_").lower(): Path(value)
        for key, value in env.items()
        if key.startswith("SM_CHANNEL_")
    }
    return LaunchPlan(
        hosts=hosts,
        node_rank=hosts.index(current),
        processes_per_host=processes,
        gpus=gpus,
        master_addr=env.get("STRATA_MASTER_ADDR", hosts[0]),
        master_port=int(env.get("STRATA_MASTER_PORT", str(MASTER_PORT))),
        checkpoint_dir=Path(env.get("STRATA_CHECKPOINT_DIR", DEFAULT_CHECKPOINTS)),
        model_dir=Path(env.get("SM_MODEL_DIR", "/opt/ml/model")),
        channels=channels,
    )


def channel_file(folder: Path, channel: str) -> Path:
    """The one JSONL file a data channel holds."""
    files = sorted(p for p in folder.rglob("*.jsonl") if p.is_file())
    if len(files) != 1:
        raise ValueError(f"channel {channel!r} ({folder}) must hold exactly one .jsonl file")
    return files[0]
