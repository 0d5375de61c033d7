"""Build the built-in model: a small Llama trained from scratch on synthetic string tasks.

Run ``python -m adapters_local.training.builtin_build --out DIR`` to regenerate
``adapters_local/models/builtin``.
Everything is seeded (data, initialisation, order), so the same seed, steps and thread count give
the same weights.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters_local.data.chat_format import training_example
from adapters_local.data.packing import pack
from adapters_local.data.tasks import BUILTIN_TASKS, Item, item_stream, make_items, words_of
from adapters_local.models.char_tokenizer import END, PAD, save_tokenizer_files, vocabulary
from adapters_local.models.compat import rewrite_config_for_4x
from adapters_local.training.evaluate import Reference, exact_match, user_turn

HELD_OUT_SEED = 7_777


@dataclass(frozen=True)
class BuildSettings:
    steps: int = 2000
    seed: int = 0
    lr: float = 3e-3
    examples_per_step: int = 48
    row_len: int = 256
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    threads: int = 2


def model_config(settings: BuildSettings) -> Any:
    from transformers import LlamaConfig

    vocab = vocabulary()
    return LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=settings.hidden,
        intermediate_size=settings.hidden * 3,
        num_hidden_layers=settings.layers,
        num_attention_heads=settings.heads,
        num_key_value_heads=settings.heads,
        max_position_embeddings=512,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True,
        pad_token_id=vocab[PAD],
        eos_token_id=vocab[END],
        bos_token_id=None,
    )


def held_out_items(count: int = 200) -> list[Item]:
    """Evaluation items; training never sees their words (see ``training_items``)."""
    return make_items(BUILTIN_TASKS, count, HELD_OUT_SEED)


def references(items: list[Item]) -> list[Reference]:
    return [Reference(user_turn(i.prompt), i.answer) for i in items]


def _batches(tokenizer: Any, settings: BuildSettings) -> Iterator[Any]:
    import torch

    stream = item_stream(BUILTIN_TASKS, settings.seed, exclude=words_of(held_out_items()))
    while True:
        examples = [
            training_example(tokenizer, user_turn(item.prompt), item.answer)
            for item, _ in zip(stream, range(settings.examples_per_step), strict=False)
        ]
        rows = pack(examples, settings.row_len, tokenizer.pad_token_id)
        yield (
            torch.tensor([r.input_ids for r in rows]),
            torch.tensor([r.labels for r in rows]),
            torch.tensor([r.position_ids for r in rows]),
        )


def _lr_factor(step: int, total: int, warmup: int = 100) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def train(
    settings: BuildSettings, log: Callable[[str], None] = print
) -> tuple[Any, Any, list[float]]:
    """Returns (model, tokenizer, loss curve sampled every 50 steps)."""
    import tempfile

    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    with tempfile.TemporaryDirectory() as folder:
        save_tokenizer_files(Path(folder))
        tokenizer = AutoTokenizer.from_pretrained(folder)
    model: Any = LlamaForCausalLM(model_config(settings))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, settings.steps)
    )
    model.train()
    curve: list[float] = []
    started = time.monotonic()
    batches = _batches(tokenizer, settings)
    for step in range(settings.steps):
        input_ids, labels, positions = next(batches)
        loss = model(
            input_ids=input_ids, labels=labels, position_ids=positions, use_cache=False
        ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == settings.steps - 1:
            curve.append(round(loss.item(), 4))
            log(f"step {step} loss {loss.item():.4f} ({time.monotonic() - started:.0f}s)")
    model.eval()
    return model, tokenizer, curve


def save(model: Any, out: Path, meta: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    save_tokenizer_files(out)
    rewrite_config_for_4x(out, "float32")
    (out / "build_report.json").write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=BuildSettings.steps)
    parser.add_argument("--seed", type=int, default=BuildSettings.seed)
    parser.add_argument("--threads", type=int, default=BuildSettings.threads)
    args = parser.parse_args(argv)
    settings = BuildSettings(steps=args.steps, seed=args.seed, threads=args.threads)
    started = time.monotonic()
    model, tokenizer, curve = train(settings)
    score = exact_match(model, tokenizer, references(held_out_items()))
    meta = {
        "settings": settings.__dict__,
        "loss_curve_every_50_steps": curve,
        "held_out_exact_match": score,
        "wall_seconds": round(time.monotonic() - started, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    save(model, args.out, meta)
    print(f"held-out exact match {score:.3f}; saved to {args.out}")


if __name__ == "__main__":
    main()
