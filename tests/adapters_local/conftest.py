"""Session fixtures: task data and adapters trained once on the built-in model (CPU, seconds)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from adapters_local.data.tasks import NEW_TASKS, Item, make_items, to_jsonl_record, words_of
from tests.conftest import cpu_share

TRAIN_ITEMS = 2500
EVAL_ITEMS = 100


@dataclass(frozen=True)
class TaskData:
    train: Path
    eval: Path
    eval_items: list[Item]


@dataclass(frozen=True)
class Trained:
    folder: Path
    report: dict[str, Any]
    output: str = ""  # what the CLI printed, when trained through it


def _write(path: Path, items: list[Item]) -> Path:
    path.write_text("".join(json.dumps(to_jsonl_record(i)) + "\n" for i in items))
    return path


def scored_split(data: TaskData, seed: int = 0) -> list[Any]:
    """The half of ``data.eval`` that a run given ``--eval data.eval`` scores (as References)."""
    from adapters_local.data.records import read_jsonl
    from adapters_local.data.splits import make_splits
    from adapters_local.training.evaluate import Reference

    splits = make_splits([], read_jsonl(data.eval), None, holdout=0.1, seed=seed, names=("",) * 3)
    return [Reference(r.messages, r.answer) for r in splits.test]


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(min(2, cpu_share()))
    yield
    torch.set_num_threads(previous)


def built_once(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Trained]
) -> Trained:
    """``build(folder)`` once per test session, even when pytest-xdist runs it in several worker
    processes: the first to get here trains into a folder under the session's shared temp root,
    the others wait on its lock and read the same folder. Tests treat it as read-only."""
    root = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # every worker's basetemp is a child of the session's
    folder, done = root / f"shared-{name}", root / f"shared-{name}.json"
    with FileLock(str(root / f"shared-{name}.lock")):
        if not done.exists():
            folder.mkdir()
            trained = build(folder)
            done.write_text(json.dumps({"report": trained.report, "output": trained.output}))
    saved = json.loads(done.read_text())
    return Trained(folder, saved["report"], saved["output"])


@pytest.fixture(scope="session")
def task_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TaskData]:
    folder = tmp_path_factory.mktemp("task-data")
    data: dict[str, TaskData] = {}
    for name, task in NEW_TASKS.items():
        held_out = make_items([task], EVAL_ITEMS, seed=99)
        train = make_items([task], TRAIN_ITEMS, seed=1, exclude=words_of(held_out))
        data[name] = TaskData(
            _write(folder / f"{name}-train.jsonl", train),
            _write(folder / f"{name}-eval.jsonl", held_out),
            held_out,
        )
    return data


def _train_lora(data: TaskData, out: Path) -> Trained:
    """``strata train lora`` with its defaults: no hyper-parameter flags at all.

    The checkpoint is picked on 10% carved from the training file; ``--test`` scores it."""
    from typer.testing import CliRunner

    from adapters_local.cli import train_app

    args = ["lora", "--data", str(data.train), "--test", str(data.eval), "--out", str(out)]
    result = CliRunner().invoke(train_app, args)
    assert result.exit_code == 0, result.output
    return Trained(out, json.loads((out / "report.json").read_text()), result.output)


@pytest.fixture(scope="session")
def lora_rot13(task_data: dict[str, TaskData], tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return built_once(
        tmp_path_factory, "lora-rot13", lambda out: _train_lora(task_data["rot13"], out)
    )


@pytest.fixture(scope="session")
def lora_shift1(
    task_data: dict[str, TaskData], tmp_path_factory: pytest.TempPathFactory
) -> Trained:
    return built_once(
        tmp_path_factory, "lora-shift1", lambda out: _train_lora(task_data["shift1"], out)
    )


def train_bottleneck(data: TaskData, out: Path, style: str) -> Trained:
    from adapters_local.training.loop import train
    from adapters_local.training.settings import BottleneckOptions, TrainSettings

    settings = TrainSettings(
        method="bottleneck",
        base="builtin",
        data=data.train,
        eval_data=data.eval,
        out=out,
        bottleneck=BottleneckOptions(
            style="houlsby" if style == "houlsby" else "pfeiffer", reduction_factor=2
        ),
        steps=300,
        lr=1e-2,
        row_len=256,
        rows_per_step=4,
        eval_every=100,
        warmup_steps=10,
    )
    return Trained(out, train(settings))


@pytest.fixture(scope="session")
def bottleneck_houlsby(
    task_data: dict[str, TaskData], tmp_path_factory: pytest.TempPathFactory
) -> Trained:
    return built_once(
        tmp_path_factory,
        "bn-houlsby",
        lambda out: train_bottleneck(task_data["shift1"], out, "houlsby"),
    )
