"""``strata train grpo``: online policy optimisation with trl's ``GRPOTrainer`` and a LoRA.

GRPO rather than PPO: it needs no value model (the baseline is the mean reward of the group of
answers sampled for the same prompt), so only the policy and its adapter-disabled reference
are in memory, and trl's PPO trainer has been moved to its experimental namespace. The KL term
to the reference is weighted by ``--beta``.

The reward is a function of (prompt, answer): ``style``, the synthetic task's programmatic
grader, ``match``, a dense one (similarity to the task answer; both need the task answers:
prompt/completion JSONL), or a reward model folder. From the built-in base ``style`` gives GRPO
almost nothing to learn from: the base never samples the style mark, so every group's answers
score alike; ``match`` on words longer than the base was trained on does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from adapters_local.data.records import read_jsonl
from adapters_local.preference import engine, judge, policy
from adapters_local.preference.pairs import Prompt, unstyled

DEFAULT_BETA = 0.04
STYLE, MATCH = "style", "match"


@dataclass(frozen=True)
class GrpoOptions:
    run: engine.RunOptions
    reward: str = STYLE  # "style", "match" or a reward model folder
    beta: float = DEFAULT_BETA
    generations: int = 4
    max_answer_tokens: int = 16
    eval_every: int = 10

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise ValueError("beta must be at least 0")
        if self.generations < 2:
            raise ValueError("GRPO needs at least 2 generations per prompt")
        if self.run.batch_size % self.generations:
            raise ValueError("--batch-size must be a multiple of --generations")


def reward_judge(reward: str) -> tuple[judge.Judge, str]:
    if reward == STYLE:
        return judge.style_judge, "programmatic (synthetic task: correct, in the preferred style)"
    if reward == MATCH:
        return judge.match_judge, "programmatic (similarity to the task answer)"
    path = Path(reward)
    if not path.is_dir():
        raise ValueError(f"--reward {reward!r}: not style, match or a reward model folder")
    return policy.pick_judge(path)


def reward_function(score: judge.Judge, known: dict[str, Prompt]) -> Any:
    """trl's reward-function signature, over rendered prompt texts mapped back to prompts."""

    def reward(prompts: Sequence[str], completions: Sequence[str], **_: Any) -> list[float]:
        return score([known[p] for p in prompts], list(completions))

    reward.__name__ = "reward"
    return reward


def held_out_curve(
    every: int, prompts: list[Prompt], score: judge.Judge, tokenizer: Any, points: list[Any]
) -> Any:
    from transformers import TrainerCallback

    class _HeldOut(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step % every == 0 or state.global_step == state.max_steps:
                model = kw["model"]
                outputs = judge.answers(model, tokenizer, prompts)
                mean = sum(score(prompts, outputs)) / len(prompts)
                points.append([state.global_step, round(mean, 4)])
                model.train()

    return _HeldOut()


def train_grpo(options: GrpoOptions, console: Console | None) -> dict[str, Any]:
    from datasets import Dataset
    from trl.trainer.grpo_config import GRPOConfig
    from trl.trainer.grpo_trainer import GRPOTrainer

    run = options.run
    train = [Prompt(r.messages, unstyled(r.answer)) for r in read_jsonl(run.data)]
    held = policy.read_prompts(run.test_data, limit=64)
    device = engine.prepare_torch(run)
    pol = policy.load_policy(run.base, None, device)
    score, judged_by = reward_judge(options.reward)
    texts = {engine.prompt_text(pol.tokenizer, p.messages): p for p in train}
    before, before_figures = policy.evaluate(pol, held)
    before_reward = sum(score(held, before)) / len(held) if held else None
    progress = engine.progress_callback(run.steps, console)
    points: list[Any] = [[0, round(before_reward, 4)]] if before_reward is not None else []
    callbacks = [progress]
    if held:
        callbacks.append(held_out_curve(options.eval_every, held, score, pol.tokenizer, points))
    args = engine.trainer_args(
        GRPOConfig, run, device, beta=options.beta, num_generations=options.generations,
        max_completion_length=options.max_answer_tokens, temperature=1.0,
    )  # fmt: skip
    trainer = GRPOTrainer(
        model=pol.model,
        reward_funcs=reward_function(score, texts),
        args=args,
        train_dataset=Dataset.from_list([{"prompt": t} for t in texts]),
        processing_class=pol.tokenizer,
        peft_config=engine.lora_config(run.rank, "CAUSAL_LM"),
        callbacks=callbacks,
    )
    pol.model = trainer.model
    engine.without_printer(trainer).train()
    after, after_figures = policy.evaluate(pol, held)
    after_reward = sum(score(held, after)) / len(held) if held else None
    comparison = policy.compare(pol, held, before, after, score)
    policy.save_adapter(pol.model, run.out)
    pol.tokenizer.save_pretrained(str(run.out))
    report = {
        "method": "grpo",
        "base": run.base,
        "base_parameters": pol.base_parameters,
        "reference": "base with the adapter disabled",
        "reward": judged_by,
        "hyper_parameters": {
            "steps": run.steps, "lr": run.lr, "batch_size": run.batch_size,
            "lora_rank": run.rank, "beta": options.beta, "generations": options.generations,
            "max_answer_tokens": options.max_answer_tokens, "seed": run.seed,
        },
        "train_prompts": len(texts),
        "held_out_prompts": len(held),
        "held_out_mean_reward": {"before": before_reward, "after": after_reward},
        "held_out_reward_curve": points,
        "before": before_figures,
        "after": after_figures,
        **comparison,
        "train_reward_curve": engine.curve(progress.rows, "reward"),
        "train_kl_curve": engine.curve(progress.rows, "kl"),
        **engine.run_summary(progress, device),
    }  # fmt: skip
    engine.write_report(run.out, report)
    return report
