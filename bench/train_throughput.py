"""Tokens/s of ``strata train lora`` (packed rows) vs a plain Hugging Face Trainer + peft baseline.

Both train the same LoRA (same base model, data, steps and about the same real tokens per step);
the baseline pads every batch to its longest example, as ``DataCollatorForSeq2Seq`` does. Each
side runs in its own subprocess so that peak memory is measured separately. Prints one table and
the ratio; ``--json`` writes the figures too.

    python -m bench.train_throughput [--steps 60] [--device cpu|cuda] [--base builtin|DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def make_data(path: Path, count: int, seed: int) -> None:
    """Copy tasks whose lengths vary widely (3..120 letters), as real SFT data's do."""
    rng = random.Random(seed)
    with path.open("w") as handle:
        for _ in range(count):
            size = int(rng.lognormvariate(3.0, 0.8))
            word = "".join(rng.choice(LETTERS) for _ in range(max(3, min(120, size))))
            handle.write(json.dumps({"prompt": f"Copy: {word}", "completion": word}) + "\n")


def _peak(device: str) -> dict[str, float]:
    from adapters_local.training.report import peak_memory_mb

    return peak_memory_mb(device)


def run_ours(args: argparse.Namespace, data: Path, out: Path) -> dict[str, Any]:
    from adapters_local.training.loop import train
    from adapters_local.training.settings import LoraOptions, TrainSettings

    settings = TrainSettings(
        method="lora",
        base=args.base,
        data=data,
        out=out,
        lora=LoraOptions(rank=8, alpha=16, targets=("q_proj", "v_proj")),
        steps=args.steps,
        lr=1e-3,
        row_len=args.row_len,
        rows_per_step=args.rows_per_step,
        log_every=10**9,
        device=args.device,
        threads=args.threads,
    )
    report = train(settings)
    return {
        "tokens_per_second": report["tokens_per_second"],
        "seconds": report["train_wall_seconds"],
        "real_tokens": report["tokens_trained"],
        "padding_fraction": report["padding_fraction"],
        "peak_memory_mb": _peak(report_device(args.device)),
    }


def report_device(device: str | None) -> str:
    from adapters_local.models.loading import pick_device

    return pick_device(device)


def run_hf(args: argparse.Namespace, data: Path, out: Path) -> dict[str, Any]:
    import time

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from adapters_local.data.chat_format import training_example
    from adapters_local.data.records import read_jsonl
    from adapters_local.models.loading import load_model, load_tokenizer, resolve_base

    if args.threads:
        torch.set_num_threads(args.threads)
    device = report_device(args.device)
    base = resolve_base(args.base)
    tokenizer = load_tokenizer(base)
    tokenizer.padding_side = "right"
    examples = [training_example(tokenizer, r.messages, r.answer) for r in read_jsonl(data)]
    rows = [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in examples]
    model = get_peft_model(
        load_model(base, device),
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    training_args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=args.hf_batch,
        max_steps=args.steps,
        learning_rate=1e-3,
        logging_steps=10**9,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=not device.startswith("cuda"),
        bf16=device.startswith("cuda"),
        dataloader_num_workers=0,
        seed=0,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    seen: list[int] = []

    def collate(batch: list[dict[str, Any]]) -> Any:
        seen.append(sum(len(b["input_ids"]) for b in batch))
        return collator(batch)

    trainer = Trainer(model=model, args=training_args, train_dataset=rows, data_collator=collate)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    real = sum(seen[: args.steps])
    return {
        "tokens_per_second": round(real / seconds, 1),
        "seconds": round(seconds, 2),
        "real_tokens": real,
        "padding_fraction": None,
        "peak_memory_mb": _peak(device),
    }


def _child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        runner = run_ours if args.side == "ours" else run_hf
        result = runner(args, Path(args.data), Path(folder) / "out")
    print("RESULT " + json.dumps(result))


def _spawn(side: str, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.train_throughput", "--side", side, "--data", str(data)]
    for name in ("steps", "base", "row_len", "rows_per_step", "hf_batch", "threads", "device"):
        value = getattr(args, name)
        if value is not None:
            command += [f"--{name.replace('_', '-')}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{side} run failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--base", default="builtin")
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--hf-batch", type=int, default=16)
    parser.add_argument("--row-len", type=int, default=512)
    parser.add_argument("--rows-per-step", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--side", choices=["ours", "hf"], default=None)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    if args.side:
        _child(args)
        return
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data.jsonl"
        make_data(data, args.examples, seed=0)
        if args.rows_per_step is None:
            # About as many real tokens per step as the baseline's batches hold.
            mean_tokens = _mean_tokens(args.base, data)
            args.rows_per_step = max(1, round(args.hf_batch * mean_tokens / args.row_len))
        hf = _spawn("hf", args, data)
        ours = _spawn("ours", args, data)
    ratio = ours["tokens_per_second"] / hf["tokens_per_second"]
    print(f"{'':24}{'strata train lora':>20}{'HF Trainer + peft':>20}")
    for key in ("tokens_per_second", "real_tokens", "seconds"):
        print(f"{key:24}{ours[key]!s:>20}{hf[key]!s:>20}")
    for key, value in ours["peak_memory_mb"].items():
        print(f"{'peak ' + key:24}{value!s:>20}{hf['peak_memory_mb'][key]!s:>20}")
    print(f"padding fraction (ours, packed): {ours['padding_fraction']}")
    print(f"throughput ratio (ours / HF): {ratio:.2f}x  (goal >= 1.3x)")
    if args.json:
        args.json.write_text(json.dumps({"ours": ours, "hf": hf, "ratio": ratio}, indent=2))


def _mean_tokens(base: str, data: Path) -> float:
    from adapters_local.data.chat_format import training_example
    from adapters_local.data.records import read_jsonl
    from adapters_local.models.loading import load_tokenizer, resolve_base

    tokenizer = load_tokenizer(resolve_base(base))
    records = read_jsonl(data)
    sizes = [len(training_example(tokenizer, r.messages, r.answer).input_ids) for r in records]
    return sum(sizes) / len(sizes)


if __name__ == "__main__":
    main()
