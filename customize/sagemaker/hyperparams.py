"""Trainer settings as SageMaker hyper-parameters (strings) and back.

Both sides of the wire use this module: the CLI writes the job's ``HyperParameters`` with
``to_hyperparameters`` and the job's entry point rebuilds the trainer's settings with
``settings_kwargs``. It imports only the standard library, because it travels inside the job's
source archive.
"""

from __future__ import annotations

from typing import Any

# Names a user may type in --param, mapped to the hyper-parameter the trainer reads.
ALIASES = {"r": "rank", "learning_rate": "lr", "learning-rate": "lr"}
TUNABLE = {
    "lora": ("rank", "alpha", "dropout", "lr", "rows_per_step", "epochs", "steps", "targets"),
    "bottleneck": ("reduction_factor", "style", "lr", "rows_per_step", "epochs", "steps"),
}
_INTS = {
    "rank",
    "alpha",
    "reduction_factor",
    "row_len",
    "rows_per_step",
    "eval_every",
    "patience",
    "seed",
    "steps",
    "processes_per_host",
}
_FLOATS = {"dropout", "lr", "epochs"}
# The loop settings shared by every method, passed through as they are.
LOOP_KEYS = ("epochs", "steps", "lr", "row_len", "rows_per_step", "eval_every", "patience", "seed")


def canonical(name: str) -> str:
    return ALIASES.get(name, name).replace("-", "_")


def to_hyperparameters(kwargs: dict[str, Any]) -> dict[str, str]:
    """The trainer's settings (the CLI's keyword arguments for TrainSettings) as strings."""
    out: dict[str, str] = {"method": str(kwargs["method"]), "base": str(kwargs["base"])}
    if "lora" in kwargs or "bottleneck" in kwargs:  # TrainSettings keyword arguments
        if kwargs["method"] == "lora":
            lora = kwargs["lora"]
            out.update(rank=str(lora.rank), alpha=str(lora.alpha), dropout=str(lora.dropout))
            out["targets"] = ",".join(lora.targets)
        else:
            bottleneck = kwargs["bottleneck"]
            out.update(style=bottleneck.style, reduction_factor=str(bottleneck.reduction_factor))
    else:  # the CLI's TrainRequest fields: only what the user set
        for key in ("preset", "rank", "alpha", "dropout", "style", "reduction_factor"):
            if kwargs.get(key) is not None:
                out[key] = str(kwargs[key])
        if kwargs.get("targets"):
            out["targets"] = ",".join(kwargs["targets"])
        if "rank" in out and "alpha" not in out:  # as adapters_local.training.recipes.resolve
            out["alpha"] = str(2 * int(kwargs["rank"]))
    for key in LOOP_KEYS:
        if kwargs.get(key) is not None:
            out[key] = str(kwargs[key])
    return out


def _number(name: str, value: str) -> int | float:
    try:
        # Tuning jobs may hand integers over as "16.0"; int(float()) accepts both spellings.
        return int(float(value)) if name in _INTS else float(value)
    except ValueError:
        raise ValueError(f"hyper-parameter {name}={value!r} is not a number") from None


def typed(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameters with numbers as numbers; SageMaker's own ``sagemaker_*`` keys dropped."""
    values: dict[str, Any] = {}
    for raw_name, raw in hyperparameters.items():
        name = canonical(str(raw_name))
        if name.startswith("sagemaker_"):
            continue
        value = str(raw).strip('"')  # the SageMaker SDK JSON-quotes string values
        values[name] = _number(name, value) if name in _INTS | _FLOATS else value
    return values
