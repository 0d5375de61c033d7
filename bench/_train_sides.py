"""One timed training run per call, for ``bench.train_throughput``: ours or an HF Trainer variant.

Every side is timed the same way: wall (``perf_counter``) and CPU (``process_time``, all threads)
from just before the base model is loaded to just after the adapter is saved, so loading,
tokenising, the training steps and saving count on both sides; torch, transformers and peft are
imported before either timer starts. The steps alone are timed too
(ours: the loop's own step timer; HF: a callback from step begin to step end), for reference.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

TARGETS = ("all-linear",)
HF_SIDES = {
    "hf-padded": "Trainer, pad to the longest in each batch (DataCollatorForSeq2Seq)",
    "hf-grouped": "Trainer, group_by_length + DataCollatorForSeq2Seq",
    "hf-flat": "Trainer, padding-free DataCollatorWithFlattening",
}


def _peak(device: str) -> float:
    from adapters_local.training.report import peak_memory_mb

    return peak_memory_mb(device)["process_peak_rss_mb"]


def run_ours(args: argparse.Namespace, data: Path, out: Path) -> dict[str, Any]:
    # The libraries the HF side imports before its timer starts, imported before ours starts
    # too: importing them inside the timer was ~4.5-6 s of the "fixed CPU" ours seemed to cost.
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from adapters_local.models.loading import pick_device
    from adapters_local.training.loop import train
    from adapters_local.training.settings import LoraOptions, TrainSettings

    settings = TrainSettings(
        method="lora", base=args.base, data=data, out=out,
        lora=LoraOptions(rank=16, alpha=32, targets=TARGETS), steps=args.steps, lr=1e-3,
        row_len=args.row_len, rows_per_step=args.rows_per_step, log_every=10**9,
        device=args.device, threads=args.threads, holdout=0.0,  # no eval: the same work as HF
    )  # fmt: skip
    wall, cpu = time.perf_counter(), time.process_time()
    report = train(settings)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "steps_wall_s": report["train_wall_seconds"],
        "real_tokens": report["tokens_trained"],
        "padding_fraction": report["padding_fraction"],
        "peak_rss_mb": _peak(pick_device(args.device)),
    }


def _grouping(on: bool) -> dict[str, Any]:
    """transformers 5 spells ``group_by_length=True`` as a sampling strategy; 4.x as a flag."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    if "train_sampling_strategy" in names:
        return {"train_sampling_strategy": "group_by_length" if on else "random"}
    return {"group_by_length": on}


def run_hf(args: argparse.Namespace, data: Path, out: Path) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        DataCollatorForSeq2Seq,
        DataCollatorWithFlattening,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from adapters_local.data.chat_format import training_example
    from adapters_local.data.records import read_jsonl
    from adapters_local.models.loading import load_model, load_tokenizer, pick_device, resolve_base

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    base = resolve_base(args.base)
    wall, cpu = time.perf_counter(), time.process_time()
    tokenizer = load_tokenizer(base)
    tokenizer.padding_side = "right"
    examples = [training_example(tokenizer, r.messages, r.answer) for r in read_jsonl(data)]
    rows = [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in examples]
    model = get_peft_model(
        load_model(base, device),
        LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    flat = args.side == "hf-flat"
    collator: Any = (
        DataCollatorWithFlattening()
        if flat
        else DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    )
    counted = {"real": 0, "processed": 0}

    def collate(batch: list[dict[str, Any]]) -> Any:
        out_batch = collator(batch)
        counted["real"] += sum(len(b["input_ids"]) for b in batch)
        counted["processed"] += int(out_batch["input_ids"].numel())
        return out_batch

    step_time = {"total": 0.0, "began": 0.0}

    class StepTimer(TrainerCallback):  # type: ignore[misc]
        def on_step_begin(self, *_: Any, **__: Any) -> None:
            step_time["began"] = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            step_time["total"] += time.perf_counter() - step_time["began"]

    training_args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=args.hf_batch, max_steps=args.steps,
        learning_rate=1e-3, logging_steps=10**9, save_strategy="no", report_to=[],
        disable_tqdm=True, use_cpu=not device.startswith("cuda"), bf16=device.startswith("cuda"),
        dataloader_num_workers=0, seed=0, remove_unused_columns=False,
        **_grouping(args.side == "hf-grouped"),
    )  # fmt: skip
    trainer = Trainer(
        model=model, args=training_args, train_dataset=rows, data_collator=collate,
        callbacks=[StepTimer()],
    )  # fmt: skip
    trainer.train()
    model.save_pretrained(str(out / "adapter"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "steps_wall_s": step_time["total"],
        # The collator may be called for a batch beyond max_steps (prefetch); count what ran.
        "real_tokens": counted["real"],
        "padding_fraction": 1 - counted["real"] / max(1, counted["processed"]),
        "peak_rss_mb": _peak(device),
    }
