"""Data parallelism under ``torchrun``: one process per GPU, gradients averaged with all-reduce.

Averaging the adapter's gradients by hand (one flattened all-reduce per step) works the same for
peft LoRA and for our hook-based bottleneck adapters, whose parameters live outside the model's
module tree where DistributedDataParallel would not see them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: str = "cpu"  # where collective tensors live: NCCL needs CUDA, gloo CPU

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_main_process() -> bool:
    """Rank 0, or not started by torchrun: the one process that reports to the user."""
    return int(os.environ.get("RANK", "0")) == 0


def backend_for(device: str, cuda_available: bool) -> str:
    """NCCL only when training on CUDA; ``--device cpu`` on a CUDA machine still needs gloo."""
    return "nccl" if device.startswith("cuda") and cuda_available else "gloo"


def init_world(device: str = "cpu") -> World:
    """Joins the process group when started by torchrun with more than one process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(device=device)
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = backend_for(device, torch.cuda.is_available())
    collective_device = "cpu"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        collective_device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return World(dist.get_rank(), dist.get_world_size(), local_rank, collective_device)


def average_gradients(parameters: list[Any], world: World, weight: float = 1.0) -> None:
    """Weighted mean of the ranks' gradients; ``weight`` is this rank's count of target tokens.

    Each rank's loss is a mean over its own answer tokens, and ranks hold different numbers of
    them; weighting by that count makes the result the gradient of the mean over the global
    batch's tokens, i.e. what one process would compute on the same rows.
    """
    if world.size <= 1:
        return
    import torch
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    source = grads[0].device
    # The weight rides along as the last element: one all-reduce yields both sums.
    flat = torch.cat([g.reshape(-1).to(world.device) for g in grads])
    flat = torch.cat([flat * weight, torch.tensor([weight], device=world.device, dtype=flat.dtype)])
    dist.all_reduce(flat)
    total = float(flat[-1].item())
    flat = (flat[:-1] / max(total, 1e-12)).to(source)
    offset = 0
    for parameter, grad in zip(parameters, grads, strict=True):
        parameter.grad = flat[offset : offset + grad.numel()].view_as(grad).clone()
        offset += grad.numel()


def average_scalar(value: float, world: World) -> float:
    if world.size <= 1:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], device=world.device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / world.size


def barrier(world: World) -> None:
    """Wait until every rank gets here (a one-element all-reduce: the same code for gloo and
    NCCL, on the device the other collectives use)."""
    average_scalar(0.0, world)


def close_world(world: World) -> None:
    if world.size > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
