"""Merge a LoRA into its base and write a folder for Bedrock Custom Model Import.

A LoRA merge changes weights, never the architecture, so the base's own config.json and tokenizer
files are kept (plus the keys a transformers 4.x loader needs; see ``compat``) rather than what
transformers 5 would write. The result then goes through the same import checks as
``strata customize import``.

The chat template is written once, inside tokenizer_config.json: Bedrock reads a template from
chat_template.jinja, chat_template.json or tokenizer_config.json, and a separate file silently
wins over the embedded one (AWS, "Handling Custom Chat Templates and Tokenizers",
https://docs.aws.amazon.com/bedrock/latest/userguide/custom-chat-templates-tokenizers.html), so two
copies that drift apart would serve a template nobody tested. The embedded field is the one every
transformers 4.x loader reads. The template kept is the one Bedrock's precedence would pick from
the base folder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters_local.bottleneck.config import is_bottleneck_folder
from adapters_local.models.compat import DTYPE_NAMES, config_for_4x, tokenizer_config_for_4x
from adapters_local.models.loading import ModelError, is_lora_folder, resolve_base

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
)
TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


class ExportError(ValueError):
    """Why an adapter cannot be exported; one line for the user."""


@dataclass(frozen=True)
class ExportResult:
    out: Path
    ok: bool
    problems: list[str]
    size_mb: float


def export_merged(base: str, adapter: Path, out: Path, dtype: str = "bf16") -> ExportResult:
    import torch
    from peft import PeftModel

    if dtype not in DTYPE_NAMES:
        raise ExportError(f"unknown dtype {dtype!r} (bf16, fp16 or fp32)")
    if is_bottleneck_folder(adapter):
        raise ExportError(
            "bottleneck adapters cannot be exported for Bedrock: they add non-linear layers "
            "(up(relu(down(x)))) that cannot be merged into the base weights, and Bedrock imports "
            "only the base architecture; serve them locally, or train a LoRA to export"
        )
    if not is_lora_folder(adapter):
        raise ExportError(f"{adapter} is not a LoRA adapter folder (no LoRA adapter_config.json)")
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty")
    try:
        base_path = resolve_base(base)
    except ModelError as exc:
        raise ExportError(str(exc)) from None
    from adapters_local.models.loading import load_model

    # Merge in fp32 on the CPU (exact), then cast once.
    model = load_model(base_path, "cpu", torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    dtype_name = DTYPE_NAMES[dtype]
    merged = merged.to(getattr(torch, dtype_name))
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out), max_shard_size="4GB")
    _write_base_files(base_path, out, dtype_name)
    return _check(out)


def _write_base_files(base: Path, out: Path, dtype_name: str) -> None:
    config = json.loads((base / "config.json").read_text())
    (out / "config.json").write_text(
        json.dumps(config_for_4x(config, dtype_name), indent=2, sort_keys=True) + "\n"
    )
    if (base / "generation_config.json").is_file():
        shutil.copyfile(base / "generation_config.json", out / "generation_config.json")
    for name in TOKENIZER_FILES:
        if (base / name).is_file():
            shutil.copyfile(base / name, out / name)
    tokenizer_config = base / "tokenizer_config.json"
    data = json.loads(tokenizer_config.read_text()) if tokenizer_config.is_file() else {}
    template = base_chat_template(base, data)
    if template is not None:
        data["chat_template"] = template
    if data:
        data = tokenizer_config_for_4x(data)
        (out / "tokenizer_config.json").write_text(json.dumps(data, indent=2) + "\n")


def base_chat_template(base: Path, tokenizer_config: dict[str, Any]) -> Any:
    """The base's chat template as Bedrock would pick it: a separate file before the embedded
    field. A string, or a list of named templates (chat_template.json may hold either)."""
    if (base / "chat_template.jinja").is_file():
        return (base / "chat_template.jinja").read_text()
    if (base / "chat_template.json").is_file():
        return json.loads((base / "chat_template.json").read_text()).get("chat_template")
    return tokenizer_config.get("chat_template")


def _check(out: Path) -> ExportResult:
    from customize.imports.check import check_import_folder

    check = check_import_folder(out)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return ExportResult(out, check.ok, list(check.problems), size / 2**20)
