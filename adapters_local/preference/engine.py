"""What every preference run shares: the base and tokenizer, trl's arguments for a small local
run, the progress bar (the same one ``train lora`` shows), the LoRA and report.json.

trl's trainers are ``transformers.Trainer`` subclasses; a callback feeds our progress bar from
their logs, so ``strata train reward|dpo|grpo`` print what ``strata train lora`` prints.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from adapters_local.data.chat_format import render
from adapters_local.data.messages import ChatMessage
from adapters_local.lora.config import ALL_LINEAR
from adapters_local.training.progress import TrainingProgress
from adapters_local.training.report import peak_memory_mb


@dataclass(frozen=True)
class RunOptions:
    """The knobs every method takes; method modules add their own."""

    base: str
    data: Path
    out: Path
    steps: int = 60
    lr: float = 5e-3
    batch_size: int = 8
    rank: int = 16
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    test_data: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("steps must be at least 1")
        if self.lr <= 0:
            raise ValueError("learning rate must be positive")
        if self.batch_size < 1 or self.rank < 1:
            raise ValueError("batch size and rank must be at least 1")


def prepare_torch(options: RunOptions) -> str:
    import torch

    from adapters_local.models.loading import pick_device

    device = pick_device(options.device)
    if options.threads:
        torch.set_num_threads(options.threads)
    elif device == "cpu":
        # One thread unless told: on the built-in model a step took 0.26 s on 1 thread and
        # 1-2.4 s on 2 on a loaded 2-core machine (tiny matrices; threads only contend).
        torch.set_num_threads(1)
    torch.manual_seed(options.seed)
    quiet()
    return device


def quiet() -> None:
    """Our progress bar only: no datasets bars, no transformers load reports."""
    import datasets
    from transformers.utils import logging

    datasets.disable_progress_bars()
    logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def prompt_text(tokenizer: Any, messages: Sequence[ChatMessage]) -> str:
    """The prompt as the model sees it, ending where the answer starts."""
    turns = [{"role": m.role, "content": m.content} for m in messages]
    return render(tokenizer, turns, add_generation_prompt=True)


def lora_config(rank: int, task_type: str) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.0,
        target_modules=ALL_LINEAR[0],
        task_type=task_type,
    )


def trainer_args(config_class: Any, options: RunOptions, device: str, **extra: Any) -> Any:
    """trl's config for a short local run: no checkpoints, no hub, no tqdm, log every step."""
    return config_class(
        output_dir=str(options.out / "trainer"),
        max_steps=options.steps,
        per_device_train_batch_size=options.batch_size,
        learning_rate=options.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=options.seed,
        data_seed=options.seed,
        use_cpu=device == "cpu",
        bf16=device.startswith("cuda"),
        fp16=False,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="all",
        **extra,
    )


def without_printer(trainer: Any) -> Any:
    """transformers prints every log dict when tqdm is off; the progress bar says it already."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def progress_callback(total: int, console: Console | None, loss_key: str = "loss") -> Any:
    """A ``TrainerCallback`` driving ``TrainingProgress``; keeps every logged row as the curve."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def __init__(self) -> None:
            self.rows: list[dict[str, float]] = []
            self.bar = TrainingProgress(total, 0, console, enabled=console is not None)
            self.started = time.perf_counter()
            self.seconds = 0.0
            self.tokens = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.started = time.perf_counter()
            self.bar.__enter__()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not logs or loss_key not in logs:
                return
            self.seconds = time.perf_counter() - self.started
            self.tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)
            row = {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}
            row["step"] = float(state.global_step)
            self.rows.append(row)
            self.bar.step(float(logs[loss_key]), self.tokens / max(self.seconds, 1e-9))

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.seconds = time.perf_counter() - self.started
            self.bar.__exit__(None, None, None)

    return _Progress()


def run_summary(progress: Any, device: str) -> dict[str, Any]:
    seconds = float(progress.seconds)
    return {
        "steps_done": len(progress.rows),
        "tokens_trained": progress.tokens,
        "tokens_per_second": round(progress.tokens / seconds, 1) if seconds else None,
        "train_wall_seconds": round(seconds, 2),
        "peak_memory": peak_memory_mb(device),
        "python": platform.python_version(),
    }


def curve(rows: Sequence[dict[str, float]], *keys: str) -> list[list[float]]:
    """``[step, value…]`` rows for the keys logged at each step."""
    return [
        [row["step"], *(round(row.get(k, float("nan")), 5) for k in keys)]
        for row in rows
        if all(k in row for k in keys)
    ]


def write_report(out: Path, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
