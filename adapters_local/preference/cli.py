"""``strata train reward|dpo|grpo``: preference tuning on a local base (trl + peft)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from adapters_local.cli import Base, Device, Out, Seed, Threads, _fail

Pairs = Annotated[Path, typer.Option(help="Preference pairs JSONL: prompt, chosen, rejected.")]
Steps = Annotated[int, typer.Option(help="Optimizer steps.")]
Lr = Annotated[float, typer.Option(help="Learning rate.")]
Batch = Annotated[int, typer.Option(help="Pairs (or sampled answers, for GRPO) per step.")]
Rank = Annotated[int, typer.Option(help="LoRA rank r (alpha = 2 r, every linear layer).")]
Prompts = Annotated[
    Path | None,
    typer.Option("--test", help="Held-out prompt/completion JSONL for the before/after figures."),
]


def _run(
    train: Callable[[], dict[str, Any]], out: Path, summary: Callable[[dict[str, Any]], str]
) -> None:
    from adapters_local.data.records import DataError
    from adapters_local.models.loading import ModelError

    try:
        report = train()
    except KeyboardInterrupt:
        raise _fail(f"interrupted; nothing was saved to {out}", 130) from None
    except (DataError, ModelError, ValueError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"saved to {out}: {summary(report)} (report.json has the curves)")


def _options(**kwargs: Any) -> Any:
    from adapters_local.preference.engine import RunOptions

    return RunOptions(**kwargs)


def _figures(report: dict[str, Any]) -> str:
    before, after = report.get("before") or {}, report.get("after") or {}
    if not after:
        return f"{report['steps_done']} steps"
    return (
        f"preferred style {before['preferred_style_rate']:.2f} -> "
        f"{after['preferred_style_rate']:.2f}, task exact match "
        f"{before['task_exact_match']:.2f} -> {after['task_exact_match']:.2f}, "
        f"KL {report['kl_to_reference']:.3f}, win rate {report['win_rate_vs_reference']:.2f}"
    )


def reward(
    data: Pairs,
    out: Out,
    base: Base = "builtin",
    test_pairs: Annotated[
        Path | None, typer.Option("--test", help="Held-out pairs (default: 10% of DATA).")
    ] = None,
    steps: Steps = 60,
    lr: Lr = 5e-3,
    batch_size: Batch = 16,
    rank: Rank = 8,
    seed: Seed = 0,
    device: Device = None,
    threads: Threads = None,
) -> None:
    """A reward model (sequence-classification head + LoRA) from preference pairs."""
    from adapters_local.preference.reward import train_reward

    def go() -> dict[str, Any]:
        options = _options(
            base=base, data=data, out=out, steps=steps, lr=lr, batch_size=batch_size,
            rank=rank, seed=seed, device=device, threads=threads, test_data=test_pairs,
        )  # fmt: skip
        return train_reward(options, Console())

    _run(
        go,
        out,
        lambda r: (
            f"held-out pairwise accuracy {r['held_out_pairwise_accuracy']:.3f} "
            f"on {r['held_out_pairs']} pairs"
        ),
    )


def dpo(
    data: Pairs,
    out: Out,
    base: Base = "builtin",
    adapter: Annotated[
        Path | None, typer.Option(help="Start from this LoRA (e.g. strata train lora's).")
    ] = None,
    test_data: Prompts = None,
    beta: Annotated[
        float, typer.Option(help="DPO beta: higher stays closer to the reference.")
    ] = 0.1,
    sft_weight: Annotated[
        float, typer.Option(help="Weight of the NLL term on chosen answers (RPO); 0: plain DPO.")
    ] = 2.0,
    judge: Annotated[
        Path | None, typer.Option(help="Reward model folder that judges the win rate.")
    ] = None,
    steps: Steps = 60,
    lr: Lr = 1e-3,
    batch_size: Batch = 8,
    rank: Rank = 16,
    seed: Seed = 0,
    device: Device = None,
    threads: Threads = None,
) -> None:
    """DPO with an SFT anchor on chosen answers; the reference is the frozen start policy."""
    from adapters_local.preference.dpo import DpoOptions, train_dpo

    def go() -> dict[str, Any]:
        options = DpoOptions(
            _options(
                base=base, data=data, out=out, steps=steps, lr=lr, batch_size=batch_size,
                rank=rank, seed=seed, device=device, threads=threads, test_data=test_data,
            ),
            adapter=adapter, beta=beta, sft_weight=sft_weight, judge_model=judge,
        )  # fmt: skip
        return train_dpo(options, Console())

    _run(go, out, _figures)


def grpo(
    data: Annotated[Path, typer.Option(help="Prompt JSONL (prompt/completion: the task answer).")],
    out: Out,
    base: Base = "builtin",
    test_data: Prompts = None,
    reward_fn: Annotated[
        str, typer.Option("--reward", help="style, match (programmatic) or a reward model folder.")
    ] = "style",
    beta: Annotated[float, typer.Option(help="KL weight to the reference.")] = 0.04,
    generations: Annotated[int, typer.Option(help="Answers sampled per prompt.")] = 4,
    steps: Steps = 40,
    lr: Lr = 5e-3,
    batch_size: Batch = 16,
    rank: Rank = 16,
    seed: Seed = 0,
    device: Device = None,
    threads: Threads = None,
) -> None:
    """GRPO against a reward function, with KL control to the adapter-disabled base."""
    from adapters_local.preference.grpo import GrpoOptions, train_grpo

    def go() -> dict[str, Any]:
        options = GrpoOptions(
            _options(
                base=base, data=data, out=out, steps=steps, lr=lr, batch_size=batch_size,
                rank=rank, seed=seed, device=device, threads=threads, test_data=test_data,
            ),
            reward=reward_fn, beta=beta, generations=generations,
        )  # fmt: skip
        return train_grpo(options, Console())

    def summary(r: dict[str, Any]) -> str:
        held = r["held_out_mean_reward"]
        if held["before"] is None:
            return f"{r['steps_done']} steps"
        return f"held-out mean reward {held['before']:.3f} -> {held['after']:.3f}, " + _figures(r)

    _run(go, out, summary)


def register_commands(train_app: typer.Typer) -> None:
    train_app.command("reward")(reward)
    train_app.command("dpo")(dpo)
    train_app.command("grpo")(grpo)
