"""One base model with every adapter the engine serves, loaded once.

A request names a *route*: a LoRA (peft, selected per batch row with ``adapter_names``), a
bottleneck adapter (our hooks, selected per row too), both stacked, or neither. Weighted LoRA
mixes become new peft adapters through ``add_weighted_adapter``. Parallel and routed
compositions live in ``self.compositions`` (``serving.lanes``): a request names one and gets one
lane per member it runs on.

User-chosen adapter names never reach torch: peft keeps adapters in ``nn.ModuleDict``s, where a
name such as ``double``, ``float`` or ``train`` collides with an ``nn.Module`` method and the load
fails. Each adapter gets an internal name (``strata_0``, ``strata_1``, ...) and routes map the
user's name to it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters_local.bottleneck.config import is_bottleneck_folder
from adapters_local.compose.spec import Parallel, Routed
from adapters_local.models.loading import (
    ModelError,
    is_lora_folder,
    load_model,
    load_tokenizer,
    resolve_base,
)

if TYPE_CHECKING:
    from adapters_local.serving.generation import GenerationRequest
    from adapters_local.serving.lanes import Lanes

BASE_ROW = "__base__"  # peft's name for "no LoRA" in a mixed batch


@dataclass(frozen=True)
class Route:
    lora: str | None = None
    bottleneck: str | None = None


class ServedModel:
    """Not thread-safe: the engine's worker thread is its only user."""

    def __init__(self, base: str | Path, device: str) -> None:
        self.base_path = resolve_base(base)
        self.base_name = str(base)
        self.device = device
        self.tokenizer = load_tokenizer(self.base_path)
        if getattr(self.tokenizer, "chat_template", None) is None:
            # Caught at load, not on every request: chat messages cannot become a prompt.
            raise ModelError(
                f"{self.base_path} has no chat template (tokenizer_config.json "
                "'chat_template' or chat_template.jinja); the gateway needs one"
            )
        self.model: Any = load_model(self.base_path, device)
        self.model.eval()
        # transformers 5.24 renamed past_key_values to cache; older versions know only the former.
        forward_params = inspect.signature(type(self.model).forward).parameters
        self._cache_kwarg = "cache" if "cache" in forward_params else "past_key_values"
        self.routes: dict[str, Route] = {}  # user name -> internal adapter names
        self._bottlenecks: Any = None  # BottleneckHost, created on the first bottleneck
        self._internal = 0
        from adapters_local.serving.lanes import Compositions

        self.compositions = Compositions(self)

    @property
    def has_lora(self) -> bool:
        return hasattr(self.model, "peft_config")

    @property
    def names(self) -> tuple[str, ...]:
        """Every adapter and composition a request may name."""
        return (*self.routes, *self.compositions.specs)

    def _new_internal_name(self, name: str) -> str:
        if not name or name in self.routes or name in self.compositions.specs:
            raise ModelError(f"adapter name {name!r} is already in use" if name else "empty name")
        internal = f"strata_{self._internal}"
        self._internal += 1
        return internal

    def load_adapter(self, name: str, folder: Path) -> None:
        internal = self._new_internal_name(name)
        if is_lora_folder(folder):
            self._load_lora(internal, folder)
            self.routes[name] = Route(lora=internal)
        elif is_bottleneck_folder(folder):
            from adapters_local.bottleneck.modules import BottleneckAdapter

            self._host().add(internal, BottleneckAdapter.load(folder))
            self.routes[name] = Route(bottleneck=internal)
        else:
            raise ModelError(f"{folder} holds neither a LoRA nor a bottleneck adapter")

    def _load_lora(self, name: str, folder: Path) -> None:
        from peft import PeftModel

        if self.has_lora:
            self.model.load_adapter(str(folder), adapter_name=name)
        else:
            if self._bottlenecks is not None:
                raise ModelError("load LoRA adapters before bottleneck adapters")
            self.model = PeftModel.from_pretrained(self.model, str(folder), adapter_name=name)
        self.model.eval()

    def _host(self) -> Any:
        from adapters_local.bottleneck.modules import BottleneckHost

        if self._bottlenecks is None:
            self._bottlenecks = BottleneckHost(self.model)
        return self._bottlenecks

    def add_weighted_lora(self, name: str, weights: Mapping[str, float]) -> None:
        """A new LoRA equal to the weighted sum of existing ones' updates."""
        parts = {n: self.routes.get(n, Route()) for n in weights}
        if not parts or any(r.lora is None or r.bottleneck is not None for r in parts.values()):
            raise ModelError("a weighted mix takes LoRA adapters only")
        internal = self._new_internal_name(name)
        # "cat" concatenates the low-rank factors, so the mix's update is exactly the weighted sum
        # of the parts' updates (other combination types approximate it).
        self.model.add_weighted_adapter(
            adapters=[r.lora for r in parts.values()],
            weights=[float(weights[n]) for n in parts],
            adapter_name=internal,
            combination_type="cat",
        )
        self.model.eval()
        self.routes[name] = Route(lora=internal)

    def add_stack(self, name: str, lora: str, bottleneck: str) -> None:
        """Bottleneck adapter on top of a LoRA: both apply to the same rows."""
        if name in self.routes:
            raise ModelError(f"adapter name {name!r} is already in use")
        lora_route, bottleneck_route = self.routes.get(lora), self.routes.get(bottleneck)
        if lora_route is None or lora_route.lora is None or lora_route.bottleneck is not None:
            raise ModelError(f"{lora!r} is not a loaded LoRA adapter")
        if (
            bottleneck_route is None
            or bottleneck_route.bottleneck is None
            or (bottleneck_route.lora is not None)
        ):
            raise ModelError(f"{bottleneck!r} is not a loaded bottleneck adapter")
        self.routes[name] = Route(lora=lora_route.lora, bottleneck=bottleneck_route.bottleneck)

    def add_composition(self, name: str, spec: Parallel | Routed) -> None:
        self.compositions.add(name, spec)

    def lanes(self, request: GenerationRequest) -> Lanes:
        return self.compositions.lanes(request.adapter, request)

    def mean_hidden(self, text: str) -> Any:
        """The base model's last hidden state, averaged over the prompt of one user message
        (the hidden-state router's features); adapters are off for this pass."""
        import contextlib

        import torch

        from adapters_local.data.chat_format import encode_turns

        ids = encode_turns(
            self.tokenizer, [{"role": "user", "content": text}], add_generation_prompt=True
        )
        scope: Any = contextlib.ExitStack()
        if self.has_lora:
            scope.enter_context(self.model.disable_adapter())
        if self._bottlenecks is not None:
            scope.enter_context(self._bottlenecks.route([None]))
        with torch.inference_mode(), scope:
            out = self.model(
                input_ids=torch.tensor([ids], device=self.device),
                output_hidden_states=True,
                use_cache=False,
            )
        return out.hidden_states[-1][0].mean(dim=0).float().cpu().numpy()

    def route(self, adapter: str | None) -> Route:
        if adapter is None:
            return Route()
        try:
            return self.routes[adapter]
        except KeyError:
            raise ModelError(f"unknown adapter {adapter!r}") from None

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any,
        position_ids: Any,
        cache: Any,
        routes: Sequence[Route],
    ) -> Any:
        """Logits of the last position for each row; ``cache`` is updated in place."""
        import contextlib

        kwargs: dict[str, Any] = {}
        if self.has_lora:
            kwargs["adapter_names"] = [r.lora or BASE_ROW for r in routes]
        scope: Any = contextlib.nullcontext()
        if self._bottlenecks is not None:
            scope = self._bottlenecks.route([r.bottleneck for r in routes])
        with scope:
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=True,
                logits_to_keep=1,
                **{self._cache_kwarg: cache},
                **kwargs,
            )
        return out.logits[:, -1, :]

    def eos_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        generation = getattr(self.model, "generation_config", None)
        configured = getattr(generation, "eos_token_id", None)
        if isinstance(configured, int):
            ids.add(configured)
        elif isinstance(configured, list):
            ids.update(int(i) for i in configured)
        return frozenset(ids)

    def max_positions(self) -> int:
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", 0) or 1 << 30)
