"""The import folder check: a tiny Llama passes; quantized or unsupported folders are refused."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from typer.testing import CliRunner

from customize.cli import app
from customize.imports.check import check_import_folder


def _copy(source: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


def _edit_config(folder: Path, **changes: object) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_tiny_llama_passes(tiny_llama: Path) -> None:
    check = check_import_folder(tiny_llama)
    assert check.ok, check.problems
    assert check.problems == []
    assert check.architecture == "LlamaForCausalLM" and check.model_type == "llama"
    assert check.dtype == "BF16" and set(check.dtypes) == {"BF16"}
    assert check.weight_files == ["model.safetensors"]
    assert (
        "tokenizer.json" in check.tokenizer_files
        and "tokenizer_config.json" in check.tokenizer_files
    )
    assert check.total_bytes == sum(p.stat().st_size for p in tiny_llama.iterdir())


def test_quantization_config_is_refused(tiny_llama: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_llama, tmp_path, "gptq")
    _edit_config(folder, quantization_config={"quant_method": "gptq", "bits": 4})
    check = check_import_folder(folder)
    assert not check.ok
    assert check.problems == [
        "config.json has quantization_config (quant_method 'gptq'); Bedrock imports only "
        "unquantized FP32/FP16/BF16 weights"
    ]


def test_int8_weights_are_refused(tiny_llama: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_llama, tmp_path, "int8")
    (folder / "model.safetensors").unlink()
    save_file(
        {
            "model.embed_tokens.weight": np.zeros((34, 64), dtype=np.int8),
            "model.norm.weight": np.ones((64,), dtype=np.float16),
        },
        str(folder / "model.safetensors"),
    )
    check = check_import_folder(folder)
    assert not check.ok
    assert check.problems == [
        "model.safetensors: tensor model.embed_tokens.weight is I8; Bedrock accepts only "
        "F32/F16/BF16 weights (is the model quantized?)"
    ]
    assert check.dtypes == {"I8": 34 * 64, "F16": 64} and check.dtype == "I8"


def test_unsupported_architecture_is_refused(tiny_llama: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_llama, tmp_path, "gpt2")
    _edit_config(folder, architectures=["GPT2LMHeadModel"], model_type="gpt2")
    check = check_import_folder(folder)
    assert not check.ok and len(check.problems) == 1
    assert check.problems[0].startswith(
        "architecture GPT2LMHeadModel is not supported by Bedrock Custom Model Import"
    )
    assert "LlamaForCausalLM" in check.problems[0] and "Qwen3ForCausalLM" in check.problems[0]


def test_pickle_weights_and_missing_tokenizer_are_refused(tiny_llama: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_llama, tmp_path, "bin-only")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    (folder / "tokenizer.json").unlink()
    check = check_import_folder(folder)
    assert check.problems == [
        "no .safetensors weight files (found pytorch_model.bin; "
        "re-save with save_pretrained(safe_serialization=True))",
        "no tokenizer file: need tokenizer.json or tokenizer.model or vocab.json+merges.txt",
    ]


def test_truncated_weights_and_missing_shards_are_refused(tiny_llama: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_llama, tmp_path, "broken")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    (folder / "model.safetensors.index.json").write_text(
        json.dumps(
            {"weight_map": {"a": "model.safetensors", "b": "model-00002-of-00002.safetensors"}}
        )
    )
    problems = check_import_folder(folder).problems
    assert len(problems) == 2
    assert (
        problems[0].startswith("model.safetensors: header describes")
        and "but the file holds" in problems[0]
    )
    assert (
        problems[1]
        == "model.safetensors.index.json names missing shard model-00002-of-00002.safetensors"
    )


def test_size_limit(tiny_llama: Path, tmp_path: Path) -> None:
    check = check_import_folder(tiny_llama, max_total_bytes=1000)
    assert not check.ok
    assert check.problems == [
        f"the folder holds {check.total_bytes:,} bytes, over Bedrock's import limit of 1,000 "
        "for text models"
    ]


def test_size_limit_from_the_rules_file_with_a_sparse_200gb_file(
    tiny_llama: Path, tmp_path: Path
) -> None:
    folder = _copy(tiny_llama, tmp_path, "huge")
    header = json.dumps(
        {
            "huge": {
                "dtype": "BF16",
                "shape": [100_000_000_001],
                "data_offsets": [0, 200_000_000_002],
            }
        }
    ).encode()
    shard = folder / "model-00002-of-00002.safetensors"
    with shard.open("wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header)
        handle.truncate(8 + len(header) + 200_000_000_002)  # sparse: takes no disk space
    problems = check_import_folder(folder).problems
    assert len(problems) == 1 and problems[0].endswith(
        "over Bedrock's import limit of 200,000,000,000 for text models"
    )


def test_not_a_directory(tmp_path: Path) -> None:
    check = check_import_folder(tmp_path / "missing")
    assert not check.ok and check.problems == [f"{tmp_path / 'missing'} is not a directory"]


def test_import_check_command(tiny_llama: Path, tmp_path: Path, runner: CliRunner) -> None:
    passed = runner.invoke(app, ["import-check", str(tiny_llama), "--json"])
    assert passed.exit_code == 0, passed.output
    assert json.loads(passed.stdout)["architecture"] == "LlamaForCausalLM"
    folder = _copy(tiny_llama, tmp_path, "quantized")
    _edit_config(folder, quantization_config={"quant_method": "awq"})
    refused = runner.invoke(app, ["import-check", str(folder)])
    assert refused.exit_code == 1
    assert "quant_method 'awq'" in refused.stdout


def test_check_module_imports_neither_boto3_nor_torch() -> None:
    code = (
        "import sys, customize.imports.check; "
        "print(sorted(m for m in ('boto3', 'botocore', 'torch') if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


@pytest.mark.parametrize("module", ["customize.variants.store", "customize.cli"])
def test_gateway_facing_modules_do_not_import_boto3(module: str) -> None:
    code = f"import sys, {module}; print('boto3' in sys.modules or 'botocore' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "False"


# Issue 13 item 8 and issue 14 item 7: rules from model-customization-import-model -------------


def _sparse_shard(folder: Path, size: int) -> None:
    header = json.dumps(
        {"huge": {"dtype": "BF16", "shape": [size // 2], "data_offsets": [0, size]}}
    ).encode()
    with (folder / "model-00002-of-00002.safetensors").open("wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header)
        handle.truncate(8 + len(header) + size)  # sparse: takes no disk space


def test_multimodal_models_have_the_lower_size_limit(tiny_llama: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_llama, tmp_path, "vision")
    _edit_config(folder, architectures=["Qwen2_5_VLForConditionalGeneration"])
    _sparse_shard(folder, 120_000_000_000)  # under the text limit, over the multimodal one
    problems = check_import_folder(folder).problems
    assert len(problems) == 1 and problems[0].endswith(
        "over Bedrock's import limit of 100,000,000,000 for multimodal models"
    )
    _edit_config(folder, architectures=["LlamaForCausalLM"])
    assert check_import_folder(folder).ok


def test_mxfp4_gpt_oss_is_refused_with_what_to_do(tiny_llama: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_llama, tmp_path, "oss")
    _edit_config(
        folder, architectures=["GptOssForCausalLM"], quantization_config={"quant_method": "mxfp4"}
    )
    [problem] = check_import_folder(folder).problems
    assert "mxfp4" in problem and "Dequantize to bf16" in problem and "Mxfp4Config" in problem


def test_converse_or_invoke_only_is_named(
    tiny_llama: Path, tmp_path: Path, runner: CliRunner
) -> None:
    assert check_import_folder(tiny_llama).api == "converse"
    folder = _copy(tiny_llama, tmp_path, "oss")
    _edit_config(folder, architectures=["GptOssForCausalLM"])
    check = check_import_folder(folder)
    assert check.ok and check.api == "invoke"
    assert check.warnings and "InvokeModel only, not Converse" in check.warnings[0]
    result = runner.invoke(app, ["import-check", str(folder)])
    assert (
        result.exit_code == 0
        and "warning: GPT-OSS imports are served through InvokeModel"
        in " ".join(result.stdout.split())
    )


def test_context_over_128k_is_refused(tiny_llama: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_llama, tmp_path, "long")
    _edit_config(folder, max_position_embeddings=262_144)
    [problem] = check_import_folder(folder).problems
    assert problem.startswith("max_position_embeddings is 262,144, over the 131,072-token context")
    _edit_config(folder, max_position_embeddings=131_072)
    assert check_import_folder(folder).ok


def test_llama3_rope_scaling_override_is_warned(tiny_llama: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_llama, tmp_path, "llama32")
    rope = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}  # fmt: skip
    _edit_config(folder, rope_scaling=rope)
    check = check_import_folder(folder)
    assert check.ok
    [warning] = check.warnings
    assert "factor 32.0" in warning and "Bedrock overrides it with factor 8" in warning
    _edit_config(folder, rope_scaling={**rope, "factor": 8.0})
    assert check_import_folder(folder).warnings == []


def test_qwen3_moe_is_accepted(tiny_llama: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_llama, tmp_path, "moe")
    _edit_config(folder, architectures=["Qwen3MoeForCausalLM"])
    assert check_import_folder(folder).ok
