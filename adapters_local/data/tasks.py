"""Synthetic string tasks: what the built-in model is trained on, and what tests teach it next.

Each task maps a lowercase word to its answer with a pure function, so exact-match scoring needs
no reference model. Items are drawn from a seeded ``random.Random`` so that a seed fixes the
whole data set.
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

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
