"""Tokens/s of ``strata train lora`` (packed rows) against Hugging Face Trainer + peft, honestly.

Four sides train the same LoRA (r=16 on all linear layers) on the same data for the same number
of steps with about the same real tokens per step: ours (packed rows), and HF Trainer padded to
the longest example, with ``group_by_length``, and padding-free with
``DataCollatorWithFlattening``. Each run is its own subprocess (separate peak memory, no warm
caches shared); rounds interleave the sides, rotating their order, so drift in machine load hits
every side alike. Every side is timed the same way (see ``bench._train_sides``): wall and CPU
from model load to saved adapter. Medians with min-max over the rounds are printed, the ratios
per round too, and the load average before and after (the machine may be shared).

    python -m bench.train_throughput [--runs 3] [--steps 40] [--device cpu|cuda] [--base DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._train_sides import HF_SIDES, run_hf, run_ours

LETTERS = "abcdefghijklmnopqrstuvwxyz"
SIDES = ("ours", *HF_SIDES)


def make_data(path: Path, count: int, seed: int) -> None:
    """Copy tasks whose lengths vary widely (3..120 letters), as real SFT data's do."""
    rng = random.Random(seed)
    with path.open("w") as handle:
        for _ in range(count):
            size = int(rng.lognormvariate(3.0, 0.8))
            word = "".join(rng.choice(LETTERS) for _ in range(max(3, min(120, size))))
            handle.write(json.dumps({"prompt": f"Copy: {word}", "completion": word}) + "\n")


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
    result["tokens_per_s"] = result["real_tokens"] / result["wall_s"]
    result["tokens_per_cpu_s"] = result["real_tokens"] / result["cpu_s"]
    result["steps_tokens_per_s"] = result["real_tokens"] / max(result["steps_wall_s"], 1e-9)
    return result


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    keys = ("tokens_per_s", "tokens_per_cpu_s", "steps_tokens_per_s", "wall_s", "cpu_s")
    sides = {
        side: {
            **{k: spread([r[side][k] for r in rounds]) for k in (*keys, "peak_rss_mb")},
            "real_tokens": spread([r[side]["real_tokens"] for r in rounds]),
            "padding_fraction": spread([r[side]["padding_fraction"] for r in rounds]),
        }
        for side in SIDES
    }
    ratios = {
        side: {
            k: spread([r["ours"][k] / r[side][k] for r in rounds])
            for k in ("tokens_per_s", "tokens_per_cpu_s", "steps_tokens_per_s")
        }
        for side in HF_SIDES
    }
    return {"sides": sides, "ratios": ratios}


def _cell(s: dict[str, float], fmt: str = "{:,.0f}") -> str:
    return f"{fmt.format(s['median'])} [{fmt.format(s['min'])}-{fmt.format(s['max'])}]"


def render(summary: dict[str, Any], runs: int, loads: tuple[Any, Any]) -> str:
    lines = [f"median [min-max] over {runs} interleaved runs per side", ""]
    header = f"{'':24}" + "".join(f"{s:>26}" for s in SIDES)
    lines.append(header)
    rows = (
        ("tokens/s (wall)", "tokens_per_s", "{:,.0f}"),
        ("tokens/CPU-s", "tokens_per_cpu_s", "{:,.0f}"),
        ("tokens/s (steps only)", "steps_tokens_per_s", "{:,.0f}"),
        ("wall s", "wall_s", "{:.1f}"),
        ("CPU s", "cpu_s", "{:.1f}"),
        ("real tokens", "real_tokens", "{:,.0f}"),
        ("padding fraction", "padding_fraction", "{:.2f}"),
        ("peak RSS MB", "peak_rss_mb", "{:,.0f}"),
    )
    for label, key, fmt in rows:
        cells = "".join(f"{_cell(summary['sides'][s][key], fmt):>26}" for s in SIDES)
        lines.append(f"{label:24}{cells}")
    lines.append("")
    for side, description in HF_SIDES.items():
        r = summary["ratios"][side]
        lines.append(
            f"ours / {side}: wall {_cell(r['tokens_per_s'], '{:.2f}x')}, "
            f"CPU {_cell(r['tokens_per_cpu_s'], '{:.2f}x')}, "
            f"steps {_cell(r['steps_tokens_per_s'], '{:.2f}x')}  ({description})"
        )
    before, after = loads
    lines.append(f"load average before {before}, after {after} ({os.cpu_count()} CPUs)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per side")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--base", default="builtin")
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--hf-batch", type=int, default=16)
    parser.add_argument("--row-len", type=int, default=512)
    parser.add_argument("--rows-per-step", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--side", choices=SIDES, default=None)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    if args.side:
        _child(args)
        return
    if args.runs < 3:
        parser.error("--runs must be at least 3 (a median of fewer says little)")
    loads_before = tuple(round(x, 2) for x in os.getloadavg())
    rounds: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data.jsonl"
        make_data(data, args.examples, seed=0)
        if args.rows_per_step is None:
            # About as many real tokens per step as the baseline's batches hold.
            mean_tokens = _mean_tokens(args.base, data)
            args.rows_per_step = max(1, round(args.hf_batch * mean_tokens / args.row_len))
        for index in range(args.runs):
            order = SIDES[index % len(SIDES) :] + SIDES[: index % len(SIDES)]
            rounds.append({side: _spawn(side, args, data) for side in order})
            print(f"round {index + 1}/{args.runs} done ({', '.join(order)})", flush=True)
    loads_after = tuple(round(x, 2) for x in os.getloadavg())
    summary = summarize(rounds)
    print(render(summary, args.runs, (loads_before, loads_after)))
    if args.json:
        report = {"rounds": rounds, **summary, "load_average": [loads_before, loads_after]}
        args.json.write_text(json.dumps(report, indent=2) + "\n")


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
