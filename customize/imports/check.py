"""Will Bedrock Custom Model Import accept this folder? A pure check, before any upload.

``check_import_folder(path)`` reads config.json, the safetensors headers (never the tensors) and
the file list, and returns every reason Bedrock would refuse the folder. It imports neither boto3
nor torch: the local export pipeline calls it too.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customize.catalog import ImportRules, import_rules
from customize.imports.safetensors_header import HeaderError, read_header


@dataclass(frozen=True)
class ImportCheck:
    ok: bool
    problems: list[str]
    warnings: list[str] = field(default_factory=list)  # accepted, but served differently
    api: str | None = None  # "converse" or "invoke" (InvokeModel only)
    architecture: str | None = None
    model_type: str | None = None
    dtype: str | None = None  # the dtype holding most parameters, e.g. "BF16"
    dtypes: dict[str, int] = field(default_factory=dict)  # dtype → number of parameters
    total_bytes: int = 0
    weight_files: list[str] = field(default_factory=list)
    tokenizer_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "warnings": self.warnings,
            "api": self.api,
            "architecture": self.architecture,
            "model_type": self.model_type,
            "dtype": self.dtype,
            "dtypes": self.dtypes,
            "total_bytes": self.total_bytes,
            "weight_files": self.weight_files,
            "tokenizer_files": self.tokenizer_files,
        }


def _config(path: Path, problems: list[str]) -> dict[str, Any] | None:
    config_path = path / "config.json"
    if not config_path.is_file():
        problems.append("config.json is missing")
        return None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        problems.append(f"config.json is not valid JSON ({error})")
        return None
    if not isinstance(config, dict):
        problems.append("config.json is not a JSON object")
        return None
    return config


def _architecture(config: dict[str, Any], rules: ImportRules, problems: list[str]) -> str | None:
    architectures = config.get("architectures")
    if not isinstance(architectures, list) or not architectures:
        problems.append("config.json has no 'architectures' entry")
        return None
    name = str(architectures[0])
    if name not in rules.architectures:
        supported = ", ".join(sorted(rules.architectures))
        problems.append(
            f"architecture {name} is not supported by Bedrock Custom Model Import "
            f"(supported: {supported})"
        )
    return name


def _quantization(config: dict[str, Any], rules: ImportRules, problems: list[str]) -> None:
    quantization = config.get("quantization_config")
    if quantization:
        method = (
            quantization.get("quant_method", "unknown")
            if isinstance(quantization, dict)
            else "unknown"
        )
        if str(method).lower() == "mxfp4":
            problems.append(f"config.json has quantization_config (mxfp4): {rules.mxfp4_hint}")
            return
        problems.append(
            f"config.json has quantization_config (quant_method {method!r}); Bedrock imports only "
            "unquantized FP32/FP16/BF16 weights"
        )


def _context(
    config: dict[str, Any], rules: ImportRules, problems: list[str], warnings: list[str]
) -> None:
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > rules.max_context_tokens:
        problems.append(
            f"max_position_embeddings is {positions:,}, over the "
            f"{rules.max_context_tokens:,}-token context Bedrock serves imported models with "
            f"({rules.max_context_note}); lower it in config.json"
        )
    rope = config.get("rope_scaling")
    if isinstance(rope, dict) and (rope.get("rope_type") or rope.get("type")) == "llama3":
        factor = rope.get("factor")
        if factor != 8 and factor != 8.0:
            warnings.append(
                f"rope_scaling is llama3 with factor {factor}; Bedrock overrides it with factor 8, "
                f"so long-context behaviour will differ ({rules.rope_scaling_note})"
            )


def _weights(path: Path, rules: ImportRules, problems: list[str]) -> tuple[list[str], Counter[str]]:
    files = sorted(p for p in path.iterdir() if p.suffix == ".safetensors" and p.is_file())
    params: Counter[str] = Counter()
    if not files:
        others = sorted(
            p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".gguf")
        )
        hint = (
            f" (found {', '.join(others)}; re-save with save_pretrained(safe_serialization=True))"
            if others
            else ""
        )
        problems.append(f"no .safetensors weight files{hint}")
        return [], params
    for file in files:
        try:
            header = read_header(file)
        except HeaderError as error:
            problems.append(f"{file.name}: {error}")
            continue
        bad: dict[str, str] = {}
        for tensor in header.tensors:
            params[tensor.dtype] += tensor.elements
            if tensor.dtype not in rules.weight_dtypes:
                bad.setdefault(tensor.dtype, tensor.name)
        for dtype, example in bad.items():
            problems.append(
                f"{file.name}: tensor {example} is {dtype}; Bedrock accepts only "
                f"{'/'.join(rules.weight_dtypes)} weights (is the model quantized?)"
            )
    problems += _missing_shards(path)
    return [f.name for f in files], params


def _missing_shards(path: Path) -> list[str]:
    index_path = path / "model.safetensors.index.json"
    if not index_path.is_file():
        return []
    try:
        weight_map = json.loads(index_path.read_text(encoding="utf-8")).get("weight_map", {})
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return ["model.safetensors.index.json is not a valid index"]
    missing = sorted({str(name) for name in weight_map.values()} - {p.name for p in path.iterdir()})
    return [f"model.safetensors.index.json names missing shard {name}" for name in missing]


def _tokenizer(path: Path, rules: ImportRules, problems: list[str]) -> list[str]:
    rule = rules.tokenizer_files
    present = {p.name for p in path.iterdir()}
    found = [name for name in [rule.config] if name in present]
    if rule.config not in present:
        problems.append(f"{rule.config} is missing")
    for group in rule.any_of:
        if set(group) <= present:
            return found + list(group)
    options = " or ".join("+".join(group) for group in rule.any_of)
    problems.append(f"no tokenizer file: need {options}")
    return found


def check_import_folder(path: Path, *, max_total_bytes: int | None = None) -> ImportCheck:
    """Every reason Bedrock would refuse ``path``; ``max_total_bytes`` overrides the size limit."""
    rules = import_rules()
    if not path.is_dir():
        return ImportCheck(ok=False, problems=[f"{path} is not a directory"])
    problems: list[str] = []
    warnings: list[str] = []
    config = _config(path, problems)
    architecture = _architecture(config, rules, problems) if config is not None else None
    if config is not None:
        _quantization(config, rules, problems)
        _context(config, rules, problems, warnings)
    rule = rules.architectures.get(architecture or "")
    if rule is not None and rule.api == "invoke":
        warnings.append(
            f"{rule.display} imports are served through InvokeModel only, not Converse "
            f"({rules.api_source}); the gateway's variant: targets call Converse"
        )
    weight_files, params = _weights(path, rules, problems)
    tokenizer_files = _tokenizer(path, rules, problems)
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    multimodal = rule is not None and rule.multimodal
    default_limit = rules.max_total_bytes_multimodal if multimodal else rules.max_total_bytes
    limit = default_limit if max_total_bytes is None else max_total_bytes
    if total > limit:
        kind = "multimodal" if multimodal else "text"
        problems.append(
            f"the folder holds {total:,} bytes, over Bedrock's import limit of {limit:,} for "
            f"{kind} models"
        )
    return ImportCheck(
        ok=not problems,
        problems=problems,
        warnings=warnings,
        api=rule.api if rule is not None else None,
        architecture=architecture,
        model_type=config.get("model_type") if config is not None else None,
        dtype=params.most_common(1)[0][0] if params else None,
        dtypes=dict(params),
        total_bytes=total,
        weight_files=weight_files,
        tokenizer_files=tokenizer_files,
    )
