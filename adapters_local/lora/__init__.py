"""LoRA adapters: peft does the layers; this folder holds our options and the trainable wrapper.

One folder per tuning method (as peft's ``tuners/<method>/``): adding a method means a new folder
with its options and a class that satisfies ``adapters_local.training.methods.Trainable``.
"""

from adapters_local.lora.config import ALL_LINEAR, LoraOptions

__all__ = ["ALL_LINEAR", "LoraOptions"]
