"""DPO tokens/s and memory on a larger model built offline (no download).

A Llama is built from a ``transformers`` config (random weights: throughput and memory do not
depend on what the weights know) with the built-in character tokenizer, saved to a temporary
folder and trained with ``strata train dpo``'s code path (trl DPOTrainer + LoRA, SFT term on)
on the synthetic preference pairs. Prints the report's tokens/s and peak memory (CUDA's peak
allocated when on a GPU, else the process's peak RSS).

    .venv/bin/python -m bench.dpo_throughput                          # ~120M params, 20 steps
    .venv/bin/python -m bench.dpo_throughput --hidden 1024 --layers 16 --steps 50 --batch 16
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def build(out: Path, hidden: int, layers: int) -> int:
    from transformers import LlamaConfig, LlamaForCausalLM

    from adapters_local.models.char_tokenizer import save_tokenizer_files, vocabulary

    heads = max(1, hidden // 64)
    config = LlamaConfig(
        vocab_size=len(vocabulary()), hidden_size=hidden, intermediate_size=hidden * 3,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=512, pad_token_id=0, eos_token_id=5, bos_token_id=None,
        tie_word_embeddings=True,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(out))
    save_tokenizer_files(out)
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from adapters_local.preference.dpo import DpoOptions, train_dpo
    from adapters_local.preference.engine import RunOptions
    from adapters_local.preference.pairs import write_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        parameters = build(root / "base", args.hidden, args.layers)
        data = write_synthetic(root / "data", train=max(64, args.steps * args.batch), test=8)
        run = RunOptions(
            base=str(root / "base"), data=data["pairs"], out=root / "dpo", steps=args.steps,
            lr=1e-4, batch_size=args.batch, device=args.device,
        )  # fmt: skip
        report = train_dpo(DpoOptions(run), console=None)
    figures = {
        "base_parameters": parameters,
        "trainable_parameters": report["parameters"]["trainable_parameters"],
        "steps": report["steps_done"],
        "batch_pairs": args.batch,
        "tokens_per_second": report["tokens_per_second"],
        "train_wall_seconds": report["train_wall_seconds"],
        "peak_memory": report["peak_memory"],
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
