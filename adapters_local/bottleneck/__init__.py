"""Bottleneck adapters (Houlsby and Pfeiffer styles) for decoder-only transformers models.

peft has none, and AdapterHub's ``adapters`` pins transformers 4.x, so this is a small module of
our own. Adapters attach through forward hooks on each decoder layer's attention and MLP blocks;
the model's own modules and state-dict names are untouched, so a LoRA (peft) can sit underneath.
"""

from adapters_local.bottleneck.config import BottleneckConfig, Style

__all__ = ["BottleneckConfig", "Style"]
