"""The variant registry: the store the gateway reads, and the variants commands."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customize.cli import variants_app
from customize.errors import UsageError
from customize.variants.store import Variant, VariantExists, VariantStore, default_store_path


def test_round_trip(tmp_path: Path) -> None:
    store = VariantStore(tmp_path / "home" / "variants.sqlite")
    variant = Variant(
        name="support-v2",
        target="bedrock:arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefghijkl",
        base_model="amazon.nova-micro-v1:0:128k",
        method="fine_tuning",
        dataset_hash="sha256:abc",
        hyperparameters={"epochCount": "2"},
        job_arn="arn:aws:bedrock:us-east-1:123456789012:model-customization-job/x/abcdefghijkl",
    )
    store.add(variant)
    store.add(Variant(name="local-lora", target="local:tiny-llama@support-lora"))
    assert store.get("support-v2") == variant
    assert [v.name for v in store.list()] == ["local-lora", "support-v2"]
    assert store.remove("local-lora") is True and store.remove("local-lora") is False
    assert store.get("local-lora") is None
    with pytest.raises(FrozenInstanceError):
        variant.target = "bedrock:other"  # type: ignore[misc]


def test_names_are_unique_unless_replaced(tmp_path: Path) -> None:
    store = VariantStore(tmp_path / "variants.sqlite")
    store.add(Variant(name="a", target="bedrock:amazon.nova-micro-v1:0"))
    with pytest.raises(VariantExists, match="variant 'a' already exists"):
        store.add(Variant(name="a", target="bedrock:amazon.nova-lite-v1:0"))
    store.add(Variant(name="a", target="bedrock:amazon.nova-lite-v1:0"), replace=True)
    assert store.get("a") == Variant(
        name="a", target="bedrock:amazon.nova-lite-v1:0", created_at=store.get("a").created_at
    )  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "target", "message"),
    [
        ("v", "variant:other", "cannot point at another variant"),
        ("v", "openai:gpt-4o", "must start with bedrock: or local:"),
        ("v", "bedrock:", "names no model"),
        ("v", "local:tiny@", "must be local:<base> or local:<base>@<adapter>"),
        ("bad name", "local:tiny", "variant name 'bad name'"),
    ],
)
def test_invalid_variants_are_refused(name: str, target: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Variant(name=name, target=target)


def test_reading_a_missing_registry_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    store = VariantStore(tmp_path / "nowhere" / "variants.sqlite")
    assert store.list() == [] and store.get("x") is None and store.remove("x") is False
    assert not (tmp_path / "nowhere").exists()


def test_readers_are_not_blocked_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "variants.sqlite"
    store = VariantStore(path)
    store.add(Variant(name="committed", target="local:tiny"))
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute(
        "INSERT INTO variants (name, target, created_at) VALUES ('pending', 'local:x', 'now')"
    )
    # Without WAL this read would wait out the busy timeout and fail with "database is locked".
    assert [v.name for v in store.list()] == ["committed"]
    writer.execute("COMMIT")
    writer.close()
    assert [v.name for v in store.list()] == ["committed", "pending"]


def test_concurrent_writer_process_and_reader(tmp_path: Path) -> None:
    path = tmp_path / "variants.sqlite"
    code = (
        "import sys; from pathlib import Path\n"
        "from customize.variants.store import Variant, VariantStore\n"
        "store = VariantStore(Path(sys.argv[1]))\n"
        "for i in range(150):\n"
        "    store.add(Variant(name=f'v{i:03d}', target=f'local:base@adapter{i}'))\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(path)])
    store = VariantStore(path)
    counts = []
    while writer.poll() is None:
        counts.append(len(store.list()))
    assert writer.wait() == 0
    counts.append(len(store.list()))
    assert counts == sorted(counts) and counts[-1] == 150


def test_variants_commands(runner: CliRunner) -> None:
    added = runner.invoke(
        variants_app,
        [
            "add",
            "lora-a",
            "--target",
            "local:tiny-llama@lora-a",
            "--base",
            "tiny-llama",
            "--method",
            "lora",
            "--hp",
            "r=8",
            "--json",
        ],
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["store"] == str(default_store_path())
    listed = json.loads(runner.invoke(variants_app, ["list", "--json"]).stdout)["variants"]
    assert [(v["name"], v["target"], v["hyperparameters"]) for v in listed] == [
        ("lora-a", "local:tiny-llama@lora-a", {"r": "8"})
    ]
    shown = runner.invoke(variants_app, ["show", "lora-a"])
    assert (
        shown.exit_code == 0 and "local:tiny-llama@lora-a" in shown.stdout and "r=8" in shown.stdout
    )
    duplicate = runner.invoke(variants_app, ["add", "lora-a", "--target", "local:tiny-llama"])
    assert duplicate.exit_code == 1 and "already exists (use --replace" in duplicate.stderr
    both = runner.invoke(variants_app, ["add", "x", "--target", "local:a", "--job", "j"])
    assert both.exit_code == 1 and "exactly one of --target, --job and --import-job" in both.stderr
    removed = runner.invoke(variants_app, ["remove", "lora-a", "--json"])
    assert json.loads(removed.stdout) == {"ok": True, "removed": "lora-a"}
    missing = runner.invoke(variants_app, ["show", "lora-a", "--json"])
    assert missing.exit_code == 1 and json.loads(missing.stdout) == {
        "ok": False,
        "error": "no variant named 'lora-a'",
    }
