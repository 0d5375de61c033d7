"""The shipped built-in model answers its tasks; the build script is deterministic."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from adapters_local.data.tasks import BUILTIN_TASKS, make_items, words_of
from adapters_local.models.compat import TOKENIZER_CLASSES_4X
from adapters_local.models.loading import BUILTIN_DIR, load_model, load_tokenizer
from adapters_local.training.builtin_build import held_out_items, main, references
from adapters_local.training.evaluate import greedy_answers


def test_builtin_answers_held_out_items_of_every_task() -> None:
    model = load_model(BUILTIN_DIR, "cpu")
    tokenizer = load_tokenizer(BUILTIN_DIR)
    items = held_out_items()
    answers = greedy_answers(model, tokenizer, [r.messages for r in references(items)])
    hits: Counter[str] = Counter()
    for item, answer in zip(items, answers, strict=True):
        hits[item.task] += answer == item.answer
    total = sum(hits.values()) / len(items)
    per_task = {t.name: hits[t.name] / (len(items) / len(BUILTIN_TASKS)) for t in BUILTIN_TASKS}
    assert total >= 0.95, per_task
    assert min(per_task.values()) >= 0.85, per_task


def test_held_out_words_never_appear_in_training_stream() -> None:
    from itertools import islice

    from adapters_local.data.tasks import item_stream

    held = words_of(held_out_items())
    stream = item_stream(BUILTIN_TASKS, 0, exclude=held)
    assert not held & words_of(list(islice(stream, 5000)))
    assert held == words_of(make_items(BUILTIN_TASKS, 200, 7_777))


def test_shipped_folder_is_readable_by_transformers_4x_loaders() -> None:
    config = json.loads((BUILTIN_DIR / "config.json").read_text())
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"]
    assert config["torch_dtype"] == "float32"
    tokenizer_config = json.loads((BUILTIN_DIR / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] in TOKENIZER_CLASSES_4X
    assert "chat_template" in tokenizer_config


def test_build_script_is_seeded_and_learns(tmp_path: Path) -> None:
    """A short build twice: identical weights, falling loss, a loadable folder with a report."""
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        main(["--out", str(out), "--steps", "40", "--threads", "1"])
    weights = (first / "model.safetensors").read_bytes()
    assert weights == (second / "model.safetensors").read_bytes()
    report = json.loads((first / "build_report.json").read_text())
    curve = report["loss_curve_every_50_steps"]
    assert curve[-1] < curve[0] - 1.0
    assert 0.0 <= report["held_out_exact_match"] <= 1.0
    model = load_model(first, "cpu")
    assert sum(p.numel() for p in model.parameters()) == report["parameters"]
