"""Entry point for the gateway's local provider: ``load_engine``.

Importing this module stays cheap (no torch); the model is loaded when ``load_engine`` runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from adapters_local.compose.spec import Composition, Parallel, Routed, Stack, parse_composition

if TYPE_CHECKING:
    from adapters_local.serving.engine_worker import LocalEngine
    from adapters_local.serving.served_model import ServedModel


def load_engine(
    base: str = "builtin",
    adapters: Mapping[str, str | Path] | None = None,
    device: str | None = None,
    *,
    max_batch_size: int | None = None,
    threads: int | None = None,
) -> LocalEngine:
    """Load ``base`` ("builtin" or a Hugging Face folder) with ``adapters`` (name → folder).

    An adapter value may also compose adapters listed before it:
    ``"weighted:a=0.7,b=0.3"`` (a weighted LoRA mix), ``"stack:lora+bottleneck"``,
    ``"parallel:a+b"`` (logits averaged, or gated) or ``"route:{...}"`` (one adapter per
    request); see ``adapters_local.compose.spec``.
    Up to ``max_batch_size`` rows (default ``STRATA_LOCAL_MAX_BATCH``, 16) decode together;
    ``threads`` (default ``STRATA_LOCAL_THREADS``, else measured at load) sets torch's CPU threads.
    Raises ``adapters_local.models.ModelError`` with a one-line message for unusable folders.
    """
    from adapters_local.models.loading import pick_device
    from adapters_local.serving.engine_worker import LocalEngine
    from adapters_local.serving.served_model import ServedModel
    from adapters_local.serving.settings import engine_settings

    settings = engine_settings()

    model = ServedModel(base, pick_device(device))
    folders = {n: v for n, v in (adapters or {}).items() if parse_composition(str(v)) is None}
    # LoRA folders first: peft wraps the model, and bottleneck hooks go on the wrapped layers.
    for name, value in sorted(folders.items(), key=lambda kv: not _is_lora(kv[1])):
        model.load_adapter(name, Path(value))
    for name, value in (adapters or {}).items():
        composition = parse_composition(str(value))
        if composition is not None:
            apply_composition(model, name, composition)
    return LocalEngine(
        model,
        max_batch_size=max_batch_size or settings.max_batch,
        threads=threads or settings.threads,
    )


def apply_composition(model: ServedModel, name: str, composition: Composition) -> None:
    if isinstance(composition, Parallel | Routed):
        model.add_composition(name, composition)
    elif isinstance(composition, Stack):
        model.add_stack(name, composition.lora, composition.bottleneck)
    else:
        model.add_weighted_lora(name, dict(composition.weights))


def _is_lora(folder: str | Path) -> bool:
    from adapters_local.models.loading import is_lora_folder

    return is_lora_folder(Path(folder))
