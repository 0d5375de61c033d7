"""Synthetic string tasks: what the built-in model is trained on, and what tests teach it next.

Each task maps a lowercase word to its answer with a pure function, so exact-match scoring needs
no reference model. Items are drawn from a seeded ``random.Random`` so that a seed fixes the
whole data set.
"""

from __future__ import annotations

import argparse
import codecs
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Task:
    name: str
    instruction: str
    solve: Callable[[str], str]

    def prompt(self, word: str) -> str:
        return f"{self.instruction}: {word}"


@dataclass(frozen=True)
class Item:
    task: str
    prompt: str
    answer: str


def _rot13(word: str) -> str:
    return codecs.encode(word, "rot13")


def _shift1(word: str) -> str:
    return "".join(LETTERS[(LETTERS.index(c) + 1) % 26] if c in LETTERS else c for c in word)


BUILTIN_TASKS: tuple[Task, ...] = (
    Task("copy", "Copy", lambda w: w),
    Task("uppercase", "Uppercase", str.upper),
    Task("reverse", "Reverse", lambda w: w[::-1]),
    Task("sort", "Sort letters", lambda w: "".join(sorted(w))),
)

# Tasks the built-in model never saw: fine-tuning tests teach them. Both share the instruction
# "Encode" so that one prompt gets a different answer from each adapter.
NEW_TASKS: dict[str, Task] = {
    "rot13": Task("rot13", "Encode", _rot13),
    "shift1": Task("shift1", "Encode", _shift1),
}


def random_word(rng: random.Random, min_len: int = 2, max_len: int = 8) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(min_len, max_len)))


def make_items(
    tasks: Iterable[Task],
    count: int,
    seed: int,
    *,
    exclude: frozenset[str] = frozenset(),
    min_len: int = 2,
    max_len: int = 8,
) -> list[Item]:
    """``count`` items cycling over ``tasks``; words in ``exclude`` are skipped (held-out sets)."""
    rng = random.Random(seed)
    task_list = list(tasks)
    items: list[Item] = []
    while len(items) < count:
        task = task_list[len(items) % len(task_list)]
        word = random_word(rng, min_len, max_len)
        if word in exclude:
            continue
        items.append(Item(task.name, task.prompt(word), task.solve(word)))
    return items


def words_of(items: Iterable[Item]) -> frozenset[str]:
    return frozenset(item.prompt.split(": ", 1)[1] for item in items)


def item_stream(
    tasks: Iterable[Task], seed: int, *, exclude: frozenset[str] = frozenset()
) -> Iterator[Item]:
    """An endless seeded stream of training items, drawn 1,000 at a time."""
    task_list = list(tasks)
    block = 0
    while True:
        yield from make_items(task_list, 1000, seed * 1_000_003 + block, exclude=exclude)
        block += 1


def to_jsonl_record(item: Item) -> dict[str, str]:
    """Bedrock's prompt/completion format, so the same file feeds local and Bedrock training."""
    return {"prompt": item.prompt, "completion": item.answer}


def write_task_files(task: str, out: Path, train: int = 2500, test: int = 100) -> tuple[Path, Path]:
    """``out/train.jsonl`` and ``out/test.jsonl``; no test word appears in the training file."""
    held_out = make_items([NEW_TASKS[task]], test, seed=99)
    items = make_items([NEW_TASKS[task]], train, seed=1, exclude=words_of(held_out))
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "train.jsonl", out / "test.jsonl"
    for path, chunk in zip(paths, (items, held_out), strict=True):
        path.write_text("".join(json.dumps(to_jsonl_record(i)) + "\n" for i in chunk))
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic task as Bedrock JSONL.")
    parser.add_argument("task", choices=sorted(NEW_TASKS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train", type=int, default=2500)
    parser.add_argument("--test", type=int, default=100)
    args = parser.parse_args(argv)
    train, test = write_task_files(args.task, args.out, args.train, args.test)
    print(f"wrote {args.train} examples to {train} and {args.test} to {test}")


if __name__ == "__main__":
    main()
