"""Merging a LoRA and exporting for Bedrock import: same model, 4.x-readable files, checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters_local.cli import export_command
from adapters_local.data.chat_format import prompt_ids
from adapters_local.export.merge import ExportError, export_merged
from adapters_local.models.compat import TOKENIZER_CLASSES_4X
from adapters_local.models.loading import BUILTIN_DIR, load_model, load_tokenizer
from adapters_local.training.evaluate import greedy_answers, user_turn
from customize.imports.check import check_import_folder


def _adapter_model(folder: Path) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(load_model(BUILTIN_DIR, "cpu"), str(folder)).eval()


def _batch(tokenizer: Any, prompts: list[str]) -> Any:
    import torch

    rows = [prompt_ids(tokenizer, user_turn(p)) for p in prompts]
    width = max(len(r) for r in rows)
    return torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])


def _export(lora: Any, factory: pytest.TempPathFactory, dtype: str) -> Path:
    out = factory.mktemp("export") / dtype
    result = export_merged("builtin", lora.folder, out, dtype)
    assert result.ok, result.problems
    return out


@pytest.fixture(scope="module")
def exported_fp32(lora_rot13: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(lora_rot13, tmp_path_factory, "fp32")


def test_merged_logits_match_the_adapter(
    lora_rot13: Any, exported_fp32: Path, task_data: dict[str, Any]
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(BUILTIN_DIR)
    inputs = _batch(tokenizer, [i.prompt for i in task_data["rot13"].eval_items[:16]])
    with torch.no_grad():
        adapter_logits = _adapter_model(lora_rot13.folder)(input_ids=inputs).logits
        merged: Any = AutoModelForCausalLM.from_pretrained(str(exported_fp32))
        merged_logits = merged(input_ids=inputs).logits
    assert (adapter_logits - merged_logits).abs().max().item() < 1e-4
    # The adapter changed the model: the base's logits are far away.
    with torch.no_grad():
        base_logits = load_model(BUILTIN_DIR, "cpu")(input_ids=inputs).logits
    assert (adapter_logits - base_logits).abs().max().item() > 1.0


def test_exported_folder_reloads_and_answers_the_same(
    lora_rot13: Any, exported_fp32: Path, task_data: dict[str, Any]
) -> None:
    items = task_data["rot13"].eval_items[:40]
    conversations = [user_turn(i.prompt) for i in items]
    tokenizer = load_tokenizer(BUILTIN_DIR)
    expected = greedy_answers(_adapter_model(lora_rot13.folder), tokenizer, conversations)
    reloaded = greedy_answers(
        load_model(exported_fp32, "cpu"), load_tokenizer(exported_fp32), conversations
    )
    assert reloaded == expected
    assert sum(a == i.answer for a, i in zip(reloaded, items, strict=True)) >= 36


def test_export_files_are_readable_by_transformers_4x(exported_fp32: Path) -> None:
    config = json.loads((exported_fp32 / "config.json").read_text())
    base = json.loads((BUILTIN_DIR / "config.json").read_text())
    assert config["rope_theta"] == base["rope_parameters"]["rope_theta"]
    assert config["torch_dtype"] == "float32"
    assert {k: v for k, v in config.items() if k not in ("torch_dtype", "dtype")} == {
        k: v for k, v in base.items() if k not in ("torch_dtype", "dtype")
    }
    tokenizer_config = json.loads((exported_fp32 / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] in TOKENIZER_CLASSES_4X
    assert (exported_fp32 / "tokenizer.json").read_bytes() == (
        BUILTIN_DIR / "tokenizer.json"
    ).read_bytes()


def test_cli_exports_bf16_and_runs_import_checks(lora_rot13: Any, tmp_path: Path) -> None:
    import typer

    app = typer.Typer()
    app.command("export")(export_command)
    out = tmp_path / "bf16"
    result = CliRunner().invoke(
        app, ["--base", "builtin", "--adapter", str(lora_rot13.folder), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    check = check_import_folder(out)
    assert check.ok and check.dtype == "BF16"
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"


def test_export_refuses_bottleneck_adapters(bottleneck_houlsby: Any, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cannot be merged"):
        export_merged("builtin", bottleneck_houlsby.folder, tmp_path / "x")
    import typer

    app = typer.Typer()
    app.command("export")(export_command)
    result = CliRunner().invoke(
        app, ["--adapter", str(bottleneck_houlsby.folder), "--out", str(tmp_path / "y")]
    )
    assert result.exit_code == 2
    assert "bottleneck adapters cannot be exported" in result.output
    assert not (tmp_path / "y").exists()


def test_strata_console_script_runs_export_and_train(
    bottleneck_houlsby: Any, tmp_path: Path
) -> None:
    import subprocess
    import sys

    strata = Path(sys.executable).parent / "strata"
    if not strata.exists():
        pytest.skip("the strata console script is not installed in this environment")
    refused = subprocess.run(
        [str(strata), "export", "--adapter", str(bottleneck_houlsby.folder),
         "--out", str(tmp_path / "x")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "bottleneck adapters cannot be exported" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = subprocess.run(
        [str(strata), "train", "lora", "--data", str(tmp_path / "none.jsonl"),
         "--out", str(tmp_path / "o")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr and "Traceback" not in missing.stderr


def test_gateway_serves_an_exported_folder_as_its_local_model(
    exported_fp32: Path, task_data: dict[str, Any], tmp_path: Path
) -> None:
    """STRATA_LOCAL_MODEL: any Hugging Face folder replaces the built-in model as `default`."""
    import httpx

    from gateway.app import create_app
    from gateway.settings import Settings
    from tests.gateway.harness import TEST_KEY, serve

    app = create_app(Settings(home=tmp_path, dev_key=TEST_KEY, local_model=str(exported_fp32)))
    items = task_data["rot13"].eval_items[:10]
    with serve(app) as url:
        answers = [
            httpx.post(
                url + "/v1/chat/completions",
                timeout=120,
                headers={"Authorization": f"Bearer {TEST_KEY}"},
                json={
                    "model": "default",
                    "max_tokens": 16,
                    "messages": [{"role": "user", "content": item.prompt}],
                },
            ).json()["choices"][0]["message"]["content"]
            for item in items
        ]
    # The merged rot13 adapter is now the base model itself: no adapter is named.
    assert sum(a == i.answer for a, i in zip(answers, items, strict=True)) >= 9


@pytest.fixture(scope="module")
def exported_bf16(lora_rot13: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(lora_rot13, tmp_path_factory, "bf16")


def test_bf16_export_names_one_dtype_and_loads_as_bf16(exported_bf16: Path) -> None:
    """The base says float32; a loader reading either key must see the exported bfloat16."""
    import torch
    from transformers import AutoModelForCausalLM

    assert json.loads((BUILTIN_DIR / "config.json").read_text())["dtype"] == "float32"
    config = json.loads((exported_bf16 / "config.json").read_text())
    assert config["dtype"] == config["torch_dtype"] == "bfloat16"
    model: Any = AutoModelForCausalLM.from_pretrained(str(exported_bf16), dtype="auto")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_exported_tokenizer_feeds_generate_directly(exported_bf16: Path) -> None:
    """4.x tokenizers add token_type_ids unless the config names the model's inputs."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((exported_bf16 / "tokenizer_config.json").read_text())
    assert config["model_input_names"] == ["input_ids", "attention_mask"]
    tokenizer = AutoTokenizer.from_pretrained(str(exported_bf16))
    inputs = tokenizer(["Encode: abc"], return_tensors="pt")
    assert set(inputs) == {"input_ids", "attention_mask"}
    model: Any = AutoModelForCausalLM.from_pretrained(str(exported_bf16))
    out = model.generate(**inputs, max_new_tokens=2, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 2


def test_chat_template_is_shipped_once_and_unchanged(exported_bf16: Path) -> None:
    """AWS: a separate template file silently wins over the embedded one; keep a single copy."""
    config = json.loads((exported_bf16 / "tokenizer_config.json").read_text())
    assert not (exported_bf16 / "chat_template.jinja").exists()
    assert not (exported_bf16 / "chat_template.json").exists()
    base_template = (BUILTIN_DIR / "chat_template.jinja").read_text()
    assert config["chat_template"] == base_template
    conversation = [{"role": "user", "content": "Encode: abc"}]
    exported = load_tokenizer(exported_bf16).apply_chat_template(conversation, tokenize=False)
    base = load_tokenizer(BUILTIN_DIR).apply_chat_template(conversation, tokenize=False)
    assert exported == base
