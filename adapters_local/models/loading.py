"""Where base models live and how they are loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BUILTIN = "builtin"
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"


class ModelError(ValueError):
    """A base model or adapter folder that cannot be used; the message is one clear line."""


def resolve_base(base: str | Path) -> Path:
    path = BUILTIN_DIR if str(base) == BUILTIN else Path(base).expanduser()
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a Hugging Face model folder (no config.json)")
    return path


def pick_device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: Path, device: str, dtype: Any = None) -> Any:
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    if dtype is None:
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    return model.to(device)


def is_lora_folder(folder: Path) -> bool:
    config = folder / "adapter_config.json"
    if not config.is_file():
        return False
    return str(json.loads(config.read_text()).get("peft_type", "")).upper() == "LORA"
