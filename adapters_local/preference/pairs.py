"""Preference pairs: the JSONL format every preference method reads, and the synthetic task.

A pair line is ``{"prompt": str | [{"role", "content"}...], "chosen": str, "rejected": str}``.

The synthetic task (``python -m adapters_local.preference.pairs --out data``) reuses the
built-in model's own string tasks (copy, uppercase, reverse, sort), so both answers of every
pair are correct; the preferred one is in a fixed style: it ends with ``STYLE_MARK``. A base model
never produces the mark, so the preferred-style rate starts at 0 and the task's exact match
(scored with the mark removed) says whether tuning broke the task itself.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters_local.data.messages import ChatMessage
from adapters_local.data.records import DataError
from adapters_local.data.tasks import BUILTIN_TASKS, make_items, words_of

STYLE_MARK = "!"
_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Pair:
    prompt: tuple[ChatMessage, ...]
    chosen: str
    rejected: str


@dataclass(frozen=True)
class Prompt:
    """A held-out prompt with its task answer (without the style mark), for the figures."""

    messages: tuple[ChatMessage, ...]
    answer: str


def styled(answer: str) -> bool:
    return answer.strip().endswith(STYLE_MARK)


def unstyled(answer: str) -> str:
    return answer.strip().removesuffix(STYLE_MARK)


def _messages(value: Any) -> tuple[ChatMessage, ...]:
    if isinstance(value, str) and value:
        return (ChatMessage("user", value),)
    if isinstance(value, list) and value:
        turns = []
        for turn in value:
            if not isinstance(turn, dict) or turn.get("role") not in _ROLES:
                raise ValueError("prompt turns need a role of system, user or assistant")
            if not isinstance(turn.get("content"), str):
                raise ValueError("prompt turn content must be a string")
            turns.append(ChatMessage(turn["role"], turn["content"]))
        return tuple(turns)
    raise ValueError("prompt must be a non-empty string or list of turns")


def parse_pair(data: Any) -> Pair:
    if not isinstance(data, dict):
        raise ValueError("each line must be a JSON object")
    missing = [k for k in ("prompt", "chosen", "rejected") if k not in data]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    chosen, rejected = data["chosen"], data["rejected"]
    if not isinstance(chosen, str) or not isinstance(rejected, str) or not chosen or not rejected:
        raise ValueError("chosen and rejected must be non-empty strings")
    if chosen == rejected:
        raise ValueError("chosen and rejected are the same answer")
    return Pair(_messages(data["prompt"]), chosen, rejected)


def read_pairs(path: Path) -> list[Pair]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    pairs: list[Pair] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            pairs.append(parse_pair(json.loads(line)))
        except (ValueError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}:{number}: {exc}") from None
    if not pairs:
        raise DataError(f"{path}: no pairs")
    return pairs


def pair_record(pair: Pair) -> dict[str, Any]:
    prompt: Any = (
        pair.prompt[0].content
        if len(pair.prompt) == 1 and pair.prompt[0].role == "user"
        else [{"role": m.role, "content": m.content} for m in pair.prompt]
    )
    return {"prompt": prompt, "chosen": pair.chosen, "rejected": pair.rejected}


def write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def synthetic_pairs(count: int, seed: int, exclude: frozenset[str] = frozenset()) -> list[Pair]:
    items = make_items(BUILTIN_TASKS, count, seed, exclude=exclude)
    return [Pair((ChatMessage("user", i.prompt),), i.answer + STYLE_MARK, i.answer) for i in items]


def write_synthetic(out: Path, train: int = 800, test: int = 100) -> dict[str, Path]:
    """``pairs.jsonl`` (train), ``test_pairs.jsonl`` and ``prompts.jsonl`` (the test prompts
    with their answers, ``prompt``/``completion`` as Bedrock writes them); no test word is in
    the training pairs. Also ``long_prompts.jsonl`` and ``long_test.jsonl`` for GRPO."""
    held = synthetic_pairs(test, seed=77)
    pairs = synthetic_pairs(train, seed=5, exclude=_words(held))
    paths = {
        "pairs": out / "pairs.jsonl",
        "test_pairs": out / "test_pairs.jsonl",
        "prompts": out / "prompts.jsonl",
    }
    write_jsonl(paths["pairs"], [pair_record(p) for p in pairs])
    write_jsonl(paths["test_pairs"], [pair_record(p) for p in held])
    write_jsonl(
        paths["prompts"],
        [{"prompt": p.prompt[0].content, "completion": p.rejected} for p in held],
    )
    # GRPO's prompts: words longer (9-12 letters) than the built-in model was trained on (2-8),
    # which it gets partly right, so sampled answers differ in reward.
    for name, seed, count in (("long_prompts", 11, 400), ("long_test", 12, 64)):
        items = make_items(BUILTIN_TASKS, count, seed, min_len=9, max_len=12)
        paths[name] = out / f"{name}.jsonl"
        write_jsonl(paths[name], [{"prompt": i.prompt, "completion": i.answer} for i in items])
    return paths


def _words(pairs: Sequence[Pair]) -> frozenset[str]:
    from adapters_local.data.tasks import Item

    return words_of(Item("", p.prompt[-1].content, "") for p in pairs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the synthetic preference task.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train", type=int, default=800)
    parser.add_argument("--test", type=int, default=100)
    args = parser.parse_args(argv)
    paths = write_synthetic(args.out, args.train, args.test)
    print(f"wrote {args.train} pairs to {paths['pairs']}, {args.test} to {paths['test_pairs']}")


if __name__ == "__main__":
    main()
