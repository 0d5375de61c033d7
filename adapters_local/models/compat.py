"""Make model folders written by transformers 5 readable by transformers 4.x loaders.

transformers 5 writes ``rope_parameters`` and ``dtype`` where 4.x reads top-level ``rope_theta``
and ``torch_dtype`` (a 4.x loader silently falls back to rope_theta=10000, which corrupts any
model trained with another value). It also names ``TokenizersBackend`` in tokenizer_config.json,
a class 4.x does not have. Bedrock's model import runs a 4.x-style loader.

Both dtype keys are always written, and always equal: transformers 4.57 and 5.x read ``dtype``
first, so a stale ``"dtype": "float32"`` beside ``"torch_dtype": "bfloat16"`` loads a bf16 export
as float32 (twice the memory, and not what was exported).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOKENIZER_CLASSES_4X = frozenset(
    {
        "PreTrainedTokenizerFast",
        "LlamaTokenizer",
        "LlamaTokenizerFast",
        "GPT2Tokenizer",
        "GPT2TokenizerFast",
        "Qwen2Tokenizer",
        "Qwen2TokenizerFast",
        "GemmaTokenizer",
        "GemmaTokenizerFast",
        "MistralTokenizer",
        "T5Tokenizer",
        "T5TokenizerFast",
        "CodeLlamaTokenizer",
        "CodeLlamaTokenizerFast",
    }
)

DTYPE_NAMES = {
    "fp32": "float32",
    "float32": "float32",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
}


def config_for_4x(config: dict[str, Any], dtype_name: str) -> dict[str, Any]:
    """A copy of ``config`` that also carries the keys 4.x reads."""
    out = dict(config)
    rope = out.get("rope_parameters")
    if isinstance(rope, dict):
        if "rope_theta" in rope and "rope_theta" not in out:
            out["rope_theta"] = rope["rope_theta"]
        rope_type = rope.get("rope_type", "default")
        if rope_type != "default" and "rope_scaling" not in out:
            out["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    out["torch_dtype"] = dtype_name
    out["dtype"] = dtype_name
    return out


# Without this a 4.x PreTrainedTokenizerFast also returns token_type_ids, and
# ``model.generate(**tokenizer(text, return_tensors="pt"))`` fails on the unexpected keyword.
MODEL_INPUT_NAMES = ["input_ids", "attention_mask"]


def tokenizer_config_for_4x(config: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    if out.get("tokenizer_class") not in TOKENIZER_CLASSES_4X:
        out["tokenizer_class"] = "PreTrainedTokenizerFast"
    out["model_input_names"] = list(MODEL_INPUT_NAMES)
    return out


def rewrite_config_for_4x(folder: Path, dtype_name: str) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps(config_for_4x(config, dtype_name), indent=2, sort_keys=True) + "\n")
