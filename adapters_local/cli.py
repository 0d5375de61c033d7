"""``strata train lora|bottleneck`` and ``strata export``.

Heavy imports happen inside the commands, so building the CLI stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from customize.sagemaker.options import RemoteOptions, with_remote_options

train_app = typer.Typer(
    help="Train adapters locally (LoRA, bottleneck) on Bedrock-format JSONL.",
    no_args_is_help=True,
)

Base = Annotated[str, typer.Option(help='"builtin" or a Hugging Face model folder.')]
Data = Annotated[Path, typer.Option(help="Training JSONL (prompt/completion or messages).")]
EvalData = Annotated[Path | None, typer.Option("--eval", help="Evaluation JSONL.")]
Out = Annotated[Path, typer.Option(help="Folder for the adapter, checkpoint and report.json.")]
Epochs = Annotated[float, typer.Option(help="Passes over the data (ignored with --steps).")]
Steps = Annotated[int | None, typer.Option(help="Optimizer steps (overrides --epochs).")]
Lr = Annotated[float | None, typer.Option(help="Learning rate (method default if unset).")]
RowLen = Annotated[int, typer.Option(help="Tokens per packed row.")]
RowsPerStep = Annotated[int, typer.Option(help="Packed rows per optimizer step.")]
EvalEvery = Annotated[int, typer.Option(help="Steps between evaluations.")]
Patience = Annotated[int | None, typer.Option(help="Stop after N evals without improvement.")]
Seed = Annotated[int, typer.Option()]
Device = Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 … (default: cuda if any).")]
Threads = Annotated[int | None, typer.Option(help="CPU threads for torch.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoint.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _run(
    settings_kwargs: dict[str, Any], resume: bool, remote: RemoteOptions | None = None
) -> None:
    if remote is not None and remote.on == "sagemaker":
        from customize.sagemaker.launch import launch

        return launch(settings_kwargs, remote, resume)
    from adapters_local.data.records import DataError
    from adapters_local.models.loading import ModelError
    from adapters_local.training.checkpoint import ResumeError
    from adapters_local.training.loop import train
    from adapters_local.training.settings import TrainSettings

    out: Path = settings_kwargs["out"]
    try:
        settings = TrainSettings(**settings_kwargs)
        report = train(settings, resume=resume, console=Console())
    except KeyboardInterrupt:
        raise _fail(
            f"interrupted; the adapter and a checkpoint are in {out} (continue with --resume)", 130
        ) from None
    except (DataError, ModelError, ResumeError, ValueError) as exc:
        raise _fail(str(exc)) from None
    from adapters_local.training.distributed import is_main_process

    if not is_main_process():  # under torchrun only rank 0 reports (and saves)
        return
    summary = f"saved adapter to {out} ({report['steps_done']} steps"
    if report["eval_exact_match"] is not None:
        summary += f", eval exact match {report['eval_exact_match']:.3f}"
    typer.echo(summary + f", {report['tokens_per_second']} tokens/s)")


@train_app.command("lora")
@with_remote_options
def train_lora(
    data: Data,
    out: Out,
    base: Base = "builtin",
    eval_data: EvalData = None,
    rank: Annotated[int, typer.Option(help="LoRA rank r.")] = 8,
    alpha: Annotated[int, typer.Option(help="LoRA alpha (scale = alpha / r).")] = 16,
    dropout: Annotated[float, typer.Option(help="LoRA dropout.")] = 0.0,
    targets: Annotated[str, typer.Option(help="Comma-separated module names.")] = "q_proj,v_proj",
    epochs: Epochs = 1.0,
    steps: Steps = None,
    lr: Lr = None,
    row_len: RowLen = 512,
    rows_per_step: RowsPerStep = 8,
    eval_every: EvalEvery = 50,
    patience: Patience = None,
    seed: Seed = 0,
    device: Device = None,
    threads: Threads = None,
    resume: Resume = False,
    remote: RemoteOptions | None = None,
) -> None:
    """Supervised LoRA fine-tuning (peft), loss on the answers only."""
    from adapters_local.training.settings import LoraOptions

    names = tuple(t.strip() for t in targets.split(",") if t.strip())
    if not names:
        raise _fail("--targets names no modules")
    _run(
        {
            "method": "lora",
            "base": base,
            "data": data,
            "out": out,
            "eval_data": eval_data,
            "lora": LoraOptions(rank=rank, alpha=alpha, dropout=dropout, targets=names),
            "epochs": epochs,
            "steps": steps,
            "lr": lr if lr is not None else 2e-4,
            "row_len": row_len,
            "rows_per_step": rows_per_step,
            "eval_every": eval_every,
            "patience": patience,
            "seed": seed,
            "device": device,
            "threads": threads,
        },
        resume,
        remote,
    )


@train_app.command("bottleneck")
@with_remote_options
def train_bottleneck(
    data: Data,
    out: Out,
    base: Base = "builtin",
    eval_data: EvalData = None,
    style: Annotated[str, typer.Option(help="pfeiffer (after the MLP) or houlsby (both).")] = (
        "pfeiffer"
    ),
    reduction_factor: Annotated[int, typer.Option(help="hidden size / bottleneck size.")] = 16,
    epochs: Epochs = 1.0,
    steps: Steps = None,
    lr: Lr = None,
    row_len: RowLen = 512,
    rows_per_step: RowsPerStep = 8,
    eval_every: EvalEvery = 50,
    patience: Patience = None,
    seed: Seed = 0,
    device: Device = None,
    threads: Threads = None,
    resume: Resume = False,
    remote: RemoteOptions | None = None,
) -> None:
    """Train a sequential bottleneck adapter (served locally; cannot be merged for Bedrock)."""
    from adapters_local.training.settings import BottleneckOptions

    if style not in ("pfeiffer", "houlsby"):
        raise _fail(f"unknown --style {style!r} (pfeiffer or houlsby)")
    _run(
        {
            "method": "bottleneck",
            "base": base,
            "data": data,
            "out": out,
            "eval_data": eval_data,
            "bottleneck": BottleneckOptions(
                style="pfeiffer" if style == "pfeiffer" else "houlsby",
                reduction_factor=reduction_factor,
            ),
            "epochs": epochs,
            "steps": steps,
            "lr": lr if lr is not None else 1e-3,
            "row_len": row_len,
            "rows_per_step": rows_per_step,
            "eval_every": eval_every,
            "patience": patience,
            "seed": seed,
            "device": device,
            "threads": threads,
        },
        resume,
        remote,
    )


def export_command(
    adapter: Annotated[Path, typer.Option(help="A LoRA adapter folder (strata train lora).")],
    out: Annotated[Path, typer.Option(help="Folder for the merged model.")],
    base: Base = "builtin",
    dtype: Annotated[str, typer.Option(help="bf16, fp16 or fp32.")] = "bf16",
) -> None:
    """Merge a LoRA into its base and write a folder Bedrock Custom Model Import accepts."""
    from adapters_local.export.merge import ExportError, export_merged

    try:
        result = export_merged(base, adapter, out, dtype)
    except ExportError as exc:
        raise _fail(str(exc)) from None
    for problem in result.problems:
        Console(stderr=True).print(f"[yellow]import check:[/yellow] {problem}", highlight=False)
    if not result.ok:
        raise _fail(f"exported to {out}, but it fails the Bedrock import checks", 1)
    typer.echo(f"exported merged model to {out} ({result.size_mb:.1f} MB, {dtype})")
