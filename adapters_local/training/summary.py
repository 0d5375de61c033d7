"""The effective settings, printed before the first step: what the recipe chose and why."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from adapters_local.training.settings import TrainSettings


def setting_rows(settings: TrainSettings) -> list[tuple[str, str]]:
    rows = [("method", settings.method), ("recipe", settings.recipe)]
    if settings.method == "lora":
        lora = settings.lora
        rows += [
            ("LoRA r / alpha / dropout", f"{lora.rank} / {lora.alpha} / {lora.dropout}"),
            ("LoRA targets", ", ".join(lora.targets)),
        ]
    else:
        options = settings.bottleneck
        rows += [("bottleneck", f"{options.style}, reduction {options.reduction_factor}")]
    length = f"{settings.steps} steps" if settings.steps else f"up to {settings.epochs:g} epochs"
    stop = f"after {settings.patience} evals without gain" if settings.patience else "off"
    return [
        *rows,
        ("learning rate", f"{settings.lr:g} (warmup {settings.warmup_steps}, cosine)"),
        ("rows per step x row length", f"{settings.rows_per_step} x {settings.row_len} tokens"),
        ("length", length),
        ("early stopping", stop),
        ("seed", str(settings.seed)),
    ]


def print_summary(console: Console, settings: TrainSettings, facts: dict[str, str]) -> None:
    table = Table(title="strata train: effective settings", show_header=False, box=None)
    for key, value in [*setting_rows(settings), *facts.items()]:
        table.add_row(f"[bold]{key}[/bold]", value)
    console.print(table)
