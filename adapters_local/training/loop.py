"""The adapter training loop shared by LoRA and bottleneck adapters.

Packed rows (no padding waste), loss on answers only, periodic eval with early stopping,
checkpoints that survive Ctrl-C, bf16 autocast and gradient checkpointing on GPU, and gradient
averaging across ``torchrun`` processes.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from adapters_local.data.records import Record, file_sha256, read_jsonl
from adapters_local.data.splits import Splits, make_splits
from adapters_local.models.loading import load_model, load_tokenizer, pick_device, resolve_base
from adapters_local.training import checkpoint as ckpt
from adapters_local.training.batches import (
    PackedData,
    pack_records,
    step_batches,
    steps_per_epoch,
    to_tensors,
)
from adapters_local.training.distributed import (
    World,
    average_gradients,
    average_scalar,
    barrier,
    close_world,
    init_world,
)
from adapters_local.training.methods import Trainable, attach
from adapters_local.training.progress import TrainingProgress
from adapters_local.training.recipes import eval_every, resolve
from adapters_local.training.report import build_report, peak_memory_mb, write_report
from adapters_local.training.settings import TrainRequest, TrainSettings
from adapters_local.training.summary import print_summary


@dataclass
class _Run:
    settings: TrainSettings
    world: World
    device: str
    tokenizer: Any
    trainable: Trainable
    train: PackedData
    eval: PackedData | None
    test: list[Record]
    splits: Splits
    total_steps: int
    eval_every: int
    base_parameters: int
    fingerprint: dict[str, Any]


def train(
    settings: TrainSettings | TrainRequest,
    *,
    resume: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train, save the adapter into ``settings.out`` and return the report (also report.json).

    A ``TrainRequest`` is completed from the recipe for the base's size first. On
    KeyboardInterrupt the adapter and a checkpoint are saved first, then it propagates.
    """
    import torch

    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    world = init_world(pick_device(settings.device))
    try:
        run = _prepare(settings, world, resume)
        if world.is_main and console is not None:
            print_summary(console, run.settings, _facts(run))
        return _train(run, resume, console)
    finally:
        close_world(world)


def _prepare(request: TrainSettings | TrainRequest, world: World, resume: bool) -> _Run:
    device = pick_device(request.device)
    if world.size > 1 and device.startswith("cuda"):
        device = f"cuda:{world.local_rank}"
    base = resolve_base(request.base)
    tokenizer = load_tokenizer(base)
    records = read_jsonl(request.data)
    eval_records = read_jsonl(request.eval_data) if request.eval_data else None
    test_records = read_jsonl(request.test_data) if request.test_data else None
    model = load_model(base, device)
    parameters = sum(p.numel() for p in model.parameters())
    settings = request if isinstance(request, TrainSettings) else resolve(request, parameters)
    names = (request.data.name, _name(request.eval_data), _name(request.test_data))
    splits = make_splits(
        records, eval_records, test_records, holdout=settings.holdout, seed=settings.seed,
        names=names,
    )  # fmt: skip
    train_data = pack_records(tokenizer, splits.train, settings.row_len)
    eval_data = (
        pack_records(tokenizer, splits.validation, settings.row_len) if splits.validation else None
    )
    per_epoch = steps_per_epoch(train_data, settings.rows_per_step, world.size)
    total = settings.steps or max(1, math.ceil(settings.epochs * per_epoch))
    fingerprint = {
        **settings.hyper_parameters(),
        "data_sha256": file_sha256(settings.data),
        "eval_sha256": file_sha256(settings.eval_data) if settings.eval_data else None,
        "test_sha256": file_sha256(settings.test_data) if settings.test_data else None,
        "world_size": world.size,
    }
    checkpointing = settings.gradient_checkpointing
    if checkpointing or (checkpointing is None and device.startswith("cuda")):
        # Recompute activations in backward: memory for longer rows / more rows per step.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    resume_from = ckpt.checkpoint_dir(settings.out) / "adapter" if resume else None
    if resume_from is not None and not resume_from.exists():
        raise ckpt.ResumeError(f"no checkpoint to resume in {ckpt.checkpoint_dir(settings.out)}")
    trainable = attach(model, settings, resume_from)
    return _Run(
        settings, world, device, tokenizer, trainable, train_data, eval_data,
        splits.test[: settings.max_eval_items], splits, total, eval_every(settings, total),
        parameters, fingerprint,
    )  # fmt: skip


def _name(path: Path | None) -> str:
    return path.name if path else ""


def _facts(run: _Run) -> dict[str, str]:
    """What the run found out for itself, for the summary printed at its start."""
    splits = run.splits
    return {
        "base parameters": f"{run.base_parameters:,}",
        "device": run.device,
        "train examples": f"{len(splits.train):,} in {len(run.train.rows):,} packed rows",
        "validation (picks the checkpoint)": f"{len(splits.validation):,}: "
        + splits.validation_source,
        "test (exact match)": f"{len(run.test):,}: {splits.test_source}",
        "steps": f"{run.total_steps:,}, evaluating every {run.eval_every}",
    }


def _schedule(settings: TrainSettings, total: int) -> Any:
    def factor(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        progress = (step - settings.warmup_steps) / max(1, total - settings.warmup_steps)
        return max(0.0, 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    return factor


def _autocast(device: str) -> Any:
    import torch

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _loss(run: _Run, rows: list[Any]) -> Any:
    """The loss of ``rows``; call it inside ``run.trainable.scope(len(rows))``."""
    input_ids, labels, positions = to_tensors(rows, run.device)
    # use_cache=False matters: with a cache object present transformers ignores the packed
    # position_ids and lets packed examples attend to each other.
    with _autocast(run.device):
        return run.trainable.model(
            input_ids=input_ids, labels=labels, position_ids=positions, use_cache=False
        ).loss


def _eval_loss(run: _Run) -> float:
    import torch

    assert run.eval is not None
    run.trainable.model.eval()
    total, weight = 0.0, 0
    with torch.no_grad():
        size = run.settings.rows_per_step
        for start in range(0, len(run.eval.rows), size):
            rows = run.eval.rows[start : start + size]
            targets = sum(sum(1 for t in r.labels[1:] if t != -100) for r in rows)
            with run.trainable.scope(len(rows)):
                total += float(_loss(run, rows)) * targets
            weight += targets
    run.trainable.model.train()
    return average_scalar(total / max(1, weight), run.world)


def _train(run: _Run, resume: bool, console: Console | None) -> dict[str, Any]:
    import torch

    settings = run.settings
    params = run.trainable.parameters()
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(settings, run.total_steps))
    state = ckpt.LoopState()
    best = [p.detach().clone() for p in params]  # parameters at the best eval loss so far
    if resume:
        saved = ckpt.load_checkpoint_state(settings.out, run.fingerprint)
        state = ckpt.restore(saved, optimizer, scheduler, best)
        # Every rank has read the checkpoint before rank 0 may replace it. A run killed after
        # its last step's checkpoint has no step left, so no all-reduce held rank 0 back: it
        # re-saved while another rank was still loading the adapter from the same folder.
        barrier(run.world)
    batches = step_batches(
        run.train, settings.rows_per_step, settings.seed, state.step, run.world.rank, run.world.size
    )
    settings.out.mkdir(parents=True, exist_ok=True)
    stopped_early = interrupted = False
    saved_step = -1  # the step the last checkpoint holds
    run.trainable.model.train()
    try:
        with TrainingProgress(
            run.total_steps, state.step, console, run.world.is_main, settings.log_every
        ) as progress:
            while state.step < run.total_steps and not stopped_early:
                value = _step(run, next(batches), params, optimizer, scheduler, state)
                progress.step(value, state.tokens / max(state.train_seconds, 1e-9))
                last = state.step == run.total_steps
                if state.step % settings.log_every == 0 or last:
                    state.train_curve.append((state.step, round(value, 5)))
                if state.step % run.eval_every == 0 or last:
                    if run.eval is not None:
                        stopped_early = _evaluate(run, state, params, best, progress)
                    # With or without eval data: a killed (e.g. spot) run resumes from here.
                    _checkpoint(run, optimizer, scheduler, state, best)
                    saved_step = state.step
    except KeyboardInterrupt:
        interrupted = True
    if saved_step != state.step:  # a second save of the same step cost 0.3 s CPU per run
        _checkpoint(run, optimizer, scheduler, state, best)
    if run.eval is not None and state.best_eval is not None:
        # The saved adapter is the one with the best eval loss, not merely the last one.
        with torch.no_grad():
            for param, kept in zip(params, best, strict=True):
                param.copy_(kept)
    report = _finish(run, state, stopped_early, interrupted)
    if interrupted:
        raise KeyboardInterrupt
    return report


def _step(
    run: _Run,
    rows: list[Any],
    params: list[Any],
    optimizer: Any,
    scheduler: Any,
    state: ckpt.LoopState,
) -> float:
    """One optimizer step; returns the loss averaged over processes."""
    import torch

    started = time.perf_counter()
    # backward stays inside the adapter's scope: gradient checkpointing re-runs the forward
    # during backward, and outside the scope that forward would skip the adapter (another graph).
    with run.trainable.scope(len(rows)):
        loss = _loss(run, rows)
        loss.backward()
    if run.world.size > 1:
        targets = sum(sum(1 for t in r.labels[1:] if t != -100) for r in rows)
        average_gradients(params, run.world, weight=float(targets))
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    state.step += 1
    state.tokens += sum(r.used for r in rows) * run.world.size
    state.train_seconds += time.perf_counter() - started
    return average_scalar(loss.item(), run.world)


def _checkpoint(
    run: _Run, optimizer: Any, scheduler: Any, state: ckpt.LoopState, best: list[Any]
) -> None:
    if run.world.is_main:
        ckpt.save_checkpoint(
            run.settings.out, run.trainable, optimizer, scheduler, state, run.fingerprint, best
        )


def _evaluate(
    run: _Run, state: ckpt.LoopState, params: list[Any], best: list[Any], progress: TrainingProgress
) -> bool:
    """Records an eval point; True when early stopping says to stop."""
    value = _eval_loss(run)
    state.eval_curve.append((state.step, round(value, 5)))
    progress.evaluated(value)
    if state.best_eval is None or value < state.best_eval:
        state.best_eval = value
        state.evals_without_gain = 0
        for kept, param in zip(best, params, strict=True):
            kept.copy_(param.detach())
        return False
    state.evals_without_gain += 1
    patience = run.settings.patience
    return patience is not None and state.evals_without_gain >= patience


def _finish(
    run: _Run, state: ckpt.LoopState, stopped_early: bool, interrupted: bool
) -> dict[str, Any]:
    exact = None
    if run.test and not interrupted:
        exact = _exact_match(run)
    report = build_report(
        settings=run.settings,
        fingerprint=run.fingerprint,
        state=state,
        train=run.train,
        test_exact_match=exact,
        held_out={
            "validation": {
                "source": run.splits.validation_source,
                "examples": len(run.splits.validation),
            },
            "test": {"source": run.splits.test_source, "examples": len(run.test)},
        },
        base_parameters=run.base_parameters,
        peak_memory=peak_memory_mb(run.device),
        stopped_early=stopped_early,
        interrupted=interrupted,
        total_steps=run.total_steps,
    )
    if run.world.is_main:
        run.trainable.save(run.settings.out)
        write_report(run.settings.out, report)
    return report


def _exact_match(run: _Run) -> float:
    from adapters_local.training.evaluate import Reference, exact_match

    refs = [Reference(r.messages, r.answer) for r in run.test]
    longest = max(
        len(run.tokenizer(r.answer, add_special_tokens=False)["input_ids"]) for r in run.test
    )
    run.trainable.model.eval()
    with run.trainable.scope(len(refs)):
        return exact_match(
            run.trainable.model,
            run.tokenizer,
            refs,
            max_new_tokens=longest + 8,
            batch_size=len(refs),
        )
