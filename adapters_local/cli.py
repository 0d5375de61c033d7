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
EvalData = Annotated[
    Path | None,
    typer.Option("--eval", help="Held-out JSONL that picks the checkpoint (default: 10% of DATA)."),
]
TestData = Annotated[
    Path | None,
    typer.Option("--test", help="JSONL scored by exact match (default: half the held-out data)."),
]
Out = Annotated[Path, typer.Option(help="Folder for the adapter, checkpoint and report.json.")]
Preset = Annotated[
    str | None,
    typer.Option(help="Recipe to use: tiny, small, 7b or large (default: by the base's size)."),
]
Epochs = Annotated[
    float | None, typer.Option(help="Most passes over the data (ignored with --steps).")
]
Steps = Annotated[int | None, typer.Option(help="Optimizer steps (overrides --epochs).")]
Lr = Annotated[float | None, typer.Option(help="Learning rate.")]
RowLen = Annotated[int | None, typer.Option(help="Tokens per packed row.")]
RowsPerStep = Annotated[int | None, typer.Option(help="Packed rows per optimizer step.")]
EvalEvery = Annotated[int | None, typer.Option(help="Steps between evaluations.")]
Patience = Annotated[
    int | None, typer.Option(help="Stop after N evals without improvement (0: never; default 3).")
]
Seed = Annotated[int, typer.Option()]
Device = Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 … (default: cuda if any).")]
Threads = Annotated[int | None, typer.Option(help="CPU threads for torch.")]
Checkpointing = Annotated[
    bool | None,
    typer.Option(
        "--gradient-checkpointing/--no-gradient-checkpointing",
        help="Recompute activations in backward (default: on for CUDA).",
    ),
]
Resume = Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoint.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _run(
    settings_kwargs: dict[str, Any], resume: bool, remote: RemoteOptions | None = None
) -> None:
    """``settings_kwargs``: a ``TrainRequest``'s fields; None leaves a value to the recipe."""
    if remote is not None and remote.on == "sagemaker":
        from customize.sagemaker.launch import launch

        return launch(settings_kwargs, remote, resume)
    from adapters_local.data.records import DataError
    from adapters_local.models.loading import ModelError
    from adapters_local.training.checkpoint import ResumeError
    from adapters_local.training.loop import train
    from adapters_local.training.settings import TrainRequest

    out: Path = settings_kwargs["out"]
    try:
        request = TrainRequest(**settings_kwargs)
        report = train(request, resume=resume, console=Console())
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
    if report["stopped_early"]:
        summary += ", stopped early"
    if report["test_exact_match"] is not None:
        test = report["held_out"]["test"]
        summary += f"; test exact match {report['test_exact_match']:.3f} on {test['examples']}"
    typer.echo(summary + f"; {report['tokens_per_second']} tokens/s)")


@train_app.command("lora")
@with_remote_options
def train_lora(
    data: Data,
    out: Out,
    base: Base = "builtin",
    eval_data: EvalData = None,
    test_data: TestData = None,
    preset: Preset = None,
    rank: Annotated[int | None, typer.Option(help="LoRA rank r.")] = None,
    alpha: Annotated[int | None, typer.Option(help="LoRA alpha (default 2 x rank).")] = None,
    dropout: Annotated[float | None, typer.Option(help="LoRA dropout.")] = None,
    targets: Annotated[
        str | None, typer.Option(help='Comma-separated module names, or "all-linear".')
    ] = None,
    epochs: Epochs = None,
    steps: Steps = None,
    lr: Lr = None,
    row_len: RowLen = None,
    rows_per_step: RowsPerStep = None,
    eval_every: EvalEvery = None,
    patience: Patience = None,
    seed: Seed = 0,
    device: Device = None,
    threads: Threads = None,
    gradient_checkpointing: Checkpointing = None,
    resume: Resume = False,
    remote: RemoteOptions | None = None,
) -> None:
    """Supervised LoRA fine-tuning (peft), loss on the answers only.

    Unset hyper-parameters come from the recipe for the base's size (see the table printed at
    the start of the run)."""
    names = tuple(t.strip() for t in (targets or "").split(",") if t.strip())
    if targets is not None and not names:
        raise _fail("--targets names no modules")
    _run(
        {
            "method": "lora", "base": base, "data": data, "out": out, "eval_data": eval_data,
            "test_data": test_data, "preset": preset, "rank": rank, "alpha": alpha,
            "dropout": dropout, "targets": names, "epochs": epochs, "steps": steps, "lr": lr,
            "row_len": row_len, "rows_per_step": rows_per_step, "eval_every": eval_every,
            "patience": patience, "seed": seed, "device": device, "threads": threads,
            "gradient_checkpointing": gradient_checkpointing,
        },
        resume,
        remote,
    )  # fmt: skip


@train_app.command("bottleneck")
@with_remote_options
def train_bottleneck(
    data: Data,
    out: Out,
    base: Base = "builtin",
    eval_data: EvalData = None,
    test_data: TestData = None,
    preset: Preset = None,
    style: Annotated[
        str | None, typer.Option(help="pfeiffer (after the MLP) or houlsby (both).")
    ] = None,
    reduction_factor: Annotated[
        int | None, typer.Option(help="hidden size / bottleneck size.")
    ] = None,
    epochs: Epochs = None,
    steps: Steps = None,
    lr: Lr = None,
    row_len: RowLen = None,
    rows_per_step: RowsPerStep = None,
    eval_every: EvalEvery = None,
    patience: Patience = None,
    seed: Seed = 0,
    device: Device = None,
    threads: Threads = None,
    gradient_checkpointing: Checkpointing = None,
    resume: Resume = False,
    remote: RemoteOptions | None = None,
) -> None:
    """Train a sequential bottleneck adapter (served locally; cannot be merged for Bedrock)."""
    if style not in (None, "pfeiffer", "houlsby"):
        raise _fail(f"unknown --style {style!r} (pfeiffer or houlsby)")
    _run(
        {
            "method": "bottleneck", "base": base, "data": data, "out": out,
            "eval_data": eval_data, "test_data": test_data, "preset": preset,
            "style": style, "reduction_factor": reduction_factor, "epochs": epochs,
            "steps": steps, "lr": lr, "row_len": row_len, "rows_per_step": rows_per_step,
            "eval_every": eval_every, "patience": patience, "seed": seed, "device": device,
            "threads": threads, "gradient_checkpointing": gradient_checkpointing,
        },
        resume,
        remote,
    )  # fmt: skip


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
