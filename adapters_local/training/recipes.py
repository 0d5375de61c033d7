"""Default hyper-parameters per base-model size: what ``strata train`` uses when not told.

One table, read top to bottom by parameter count; ``--preset NAME`` picks a row outright and any
explicit flag overrides a single value. The reasoning, row by row:

- **tiny** (< 100M, e.g. the built-in 0.8M model): few parameters per layer and little
  pre-trained knowledge to protect, so the adapter must carry much of the task: LoRA on every
  linear layer, r=16, and a high rate (5e-3; the usual 2e-4 reached 9% exact match on rot13
  after 600 steps where 5e-3 reached ~90%). Short rows and small steps: more updates per token.
- **small** (100M-4B, Llama 3.2 1B/3B, Qwen2.5 0.5B-3B): r=16 on attention and MLP (all linear
  layers; attention-only LoRA lags on new tasks, as the QLoRA paper found), lr 2e-4.
- **7b** (4B-20B, Llama 3.1 8B, Mistral 7B, Qwen2.5 7B/14B): the common r=16 / lr 2e-4 on
  attention and MLP.
- **large** (>= 20B): r=8 and lr 1e-4; large bases move further per update.

Bottleneck adapters follow the same pattern: on a tiny base a wide bottleneck (reduction 2) and
lr 1e-2; on real bases reduction 16 (AdapterHub's Pfeiffer default) with lr 1e-3 down to 1e-4.
Every run evaluates on held-out data and stops once the eval loss has not improved for
``PATIENCE`` evaluations, so the epoch count is an upper bound rather than a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from adapters_local.training.settings import (
    ALL_LINEAR,
    BottleneckOptions,
    LoraOptions,
    TrainRequest,
    TrainSettings,
)

PATIENCE = 3  # evaluations without a lower eval loss before stopping
EVALS_PER_RUN = 12  # evaluation points over the planned run when --eval-every is not given
MIN_EVAL_EVERY = 5


@dataclass(frozen=True)
class Recipe:
    name: str
    below_params: float  # the row applies to bases with fewer parameters than this
    lora: LoraOptions
    lora_lr: float
    bottleneck: BottleneckOptions
    bottleneck_lr: float
    row_len: int
    rows_per_step: int
    epochs: float


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        "tiny", 100e6, LoraOptions(16, 32, 0.0, ALL_LINEAR), 5e-3,
        BottleneckOptions("pfeiffer", 2), 1e-2, row_len=256, rows_per_step=4, epochs=3,
    ),
    Recipe(
        "small", 4e9, LoraOptions(16, 32, 0.05, ALL_LINEAR), 2e-4,
        BottleneckOptions("pfeiffer", 16), 1e-3, row_len=2048, rows_per_step=4, epochs=3,
    ),
    Recipe(
        "7b", 20e9, LoraOptions(16, 32, 0.05, ALL_LINEAR), 2e-4,
        BottleneckOptions("pfeiffer", 16), 3e-4, row_len=2048, rows_per_step=4, epochs=3,
    ),
    Recipe(
        "large", math.inf, LoraOptions(8, 16, 0.05, ALL_LINEAR), 1e-4,
        BottleneckOptions("pfeiffer", 16), 1e-4, row_len=2048, rows_per_step=4, epochs=2,
    ),
)  # fmt: skip
PRESETS = {recipe.name: recipe for recipe in RECIPES}


def recipe_for(parameters: int, preset: str | None = None) -> Recipe:
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r} (one of {', '.join(PRESETS)})")
        return PRESETS[preset]
    return next(r for r in RECIPES if parameters < r.below_params)


def resolve(request: TrainRequest, parameters: int) -> TrainSettings:
    """The concrete settings for ``request`` on a base with ``parameters`` weights."""
    recipe = recipe_for(parameters, request.preset)
    lora = recipe.lora
    lora = replace(
        lora,
        rank=request.rank or lora.rank,
        alpha=request.alpha or (2 * request.rank if request.rank else lora.alpha),
        dropout=lora.dropout if request.dropout is None else request.dropout,
        targets=request.targets or lora.targets,
    )
    bottleneck = replace(
        recipe.bottleneck,
        style=request.style or recipe.bottleneck.style,
        reduction_factor=request.reduction_factor or recipe.bottleneck.reduction_factor,
    )
    default_lr = recipe.lora_lr if request.method == "lora" else recipe.bottleneck_lr
    return TrainSettings(
        method=request.method,
        base=request.base,
        data=request.data,
        out=request.out,
        eval_data=request.eval_data,
        test_data=request.test_data,
        lora=lora,
        bottleneck=bottleneck,
        epochs=request.epochs or recipe.epochs,
        steps=request.steps,
        lr=request.lr or default_lr,
        row_len=request.row_len or recipe.row_len,
        rows_per_step=request.rows_per_step or recipe.rows_per_step,
        eval_every=request.eval_every,  # None: placed once the run's length is known
        patience=PATIENCE if request.patience is None else (request.patience or None),
        seed=request.seed,
        device=request.device,
        threads=request.threads,
        gradient_checkpointing=request.gradient_checkpointing,
        recipe=recipe.name if request.preset is None else f"{recipe.name} (--preset)",
    )


def eval_every(settings: TrainSettings, total_steps: int) -> int:
    if settings.eval_every is not None:
        return settings.eval_every
    return max(MIN_EVAL_EVERY, math.ceil(total_steps / EVALS_PER_RUN))
