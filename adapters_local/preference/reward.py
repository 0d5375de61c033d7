"""``strata train reward``: a reward model from preference pairs, with trl's ``RewardTrainer``.

The base gets a one-output sequence-classification head (``score``) and a LoRA on every linear
layer; peft saves the head beside the LoRA (``modules_to_save``), so the folder is small and
loads onto the same base. The report's figure is the pairwise accuracy on held-out pairs: how
often the chosen answer scores above the rejected one.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from rich.console import Console

from adapters_local.data.records import DataError
from adapters_local.preference import engine
from adapters_local.preference.pairs import Pair, read_pairs

HELD_OUT_FRACTION = 0.1
BASE_FILE = "reward_base.txt"  # which base the head and LoRA belong to


def split_pairs(pairs: list[Pair], test: Path | None, seed: int) -> tuple[list[Pair], list[Pair]]:
    if test is not None:
        return pairs, read_pairs(test)
    shuffled = pairs[:]
    random.Random(seed).shuffle(shuffled)
    cut = max(1, int(len(shuffled) * HELD_OUT_FRACTION))
    if len(shuffled) - cut < 1:
        raise DataError("too few pairs to hold any out: pass --test")
    return shuffled[cut:], shuffled[:cut]


def pair_rows(tokenizer: Any, pairs: list[Pair]) -> list[dict[str, str]]:
    return [
        {
            "prompt": engine.prompt_text(tokenizer, p.prompt),
            "chosen": p.chosen,
            "rejected": p.rejected,
        }
        for p in pairs
    ]


def train_reward(options: engine.RunOptions, console: Console | None) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl.trainer.reward_config import RewardConfig
    from trl.trainer.reward_trainer import RewardTrainer

    from adapters_local.models.loading import load_tokenizer, resolve_base
    from adapters_local.preference.scorer import RewardScorer

    train, held = split_pairs(read_pairs(options.data), options.test_data, options.seed)
    device = engine.prepare_torch(options)
    path = resolve_base(options.base)
    tokenizer = load_tokenizer(path)
    model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    base_parameters = sum(p.numel() for p in model.parameters())
    peft = engine.lora_config(options.rank, "SEQ_CLS")
    progress = engine.progress_callback(options.steps, console)
    trainer = RewardTrainer(
        model=model.to(device),
        args=engine.trainer_args(RewardConfig, options, device, max_length=256),
        train_dataset=Dataset.from_list(pair_rows(tokenizer, train)),
        processing_class=tokenizer,
        peft_config=peft,
        callbacks=[progress],
    )
    engine.without_printer(trainer).train()
    options.out.mkdir(parents=True, exist_ok=True)
    tuned: Any = trainer.model
    tuned.save_pretrained(str(options.out))
    tokenizer.save_pretrained(str(options.out))
    (options.out / BASE_FILE).write_text(str(path) + "\n")
    scorer = RewardScorer(tuned, tokenizer)
    accuracy = scorer.pairwise_accuracy(held)
    report = {
        "method": "reward",
        "base": options.base,
        "base_parameters": base_parameters,
        "hyper_parameters": {
            "steps": options.steps, "lr": options.lr, "batch_size": options.batch_size,
            "lora_rank": options.rank, "seed": options.seed,
        },
        "train_pairs": len(train),
        "held_out_pairs": len(held),
        "held_out_source": str(options.test_data) if options.test_data else "10% of --data",
        "held_out_pairwise_accuracy": round(accuracy, 4),
        "train_loss_curve": engine.curve(progress.rows, "loss"),
        "train_accuracy_curve": engine.curve(progress.rows, "accuracy"),
        **engine.run_summary(progress, device),
    }  # fmt: skip
    engine.write_report(options.out, report)
    return report
