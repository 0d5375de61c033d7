"""The peer: a LiteLLM proxy (1 worker) from a separate venv, on the same wire fake.

LiteLLM is never a dependency of this project; ``--litellm-python`` names a venv made with
``python -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'``.
Its bedrock converse provider is pointed at the fake with ``aws_bedrock_runtime_endpoint``; it
serves only the OpenAI surface, so the comparison is made there.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import _figures as fig
from bench._load import LOOPBACK
from bench._scenarios import MODEL_ID

READY_PATH = "/health/readiness"
StartProxy = Callable[..., Awaitable[Any]]


def litellm_config(fake_port: int, key: str) -> str:
    return (
        "model_list:\n"
        "  - model_name: default\n"
        "    litellm_params:\n"
        f"      model: bedrock/converse/{MODEL_ID}\n"
        "      aws_region_name: us-east-1\n"
        f"      aws_bedrock_runtime_endpoint: http://{LOOPBACK}:{fake_port}\n"
        "      aws_access_key_id: AKIDBENCHEXAMPLE\n"
        "      aws_secret_access_key: bench-secret-example\n"
        "general_settings:\n"
        f"  master_key: {key}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )


def litellm_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRATA_"))}
    env.pop("PYTHONPATH", None)  # the other venv must not see this repo's packages
    # No network here: the bundled price map instead of a download that would time out.
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", AWS_EC2_METADATA_DISABLED="true")
    env["HOME"] = str(workdir)
    return env


async def start_litellm(
    args: argparse.Namespace, workdir: Path, fake_port: int, key: str, start_proxy: StartProxy
) -> Any:
    script = Path(args.litellm_python).with_name("litellm")
    if not script.exists():
        raise RuntimeError(f"no litellm console script next to {args.litellm_python}")
    config = workdir / "litellm.yaml"
    config.write_text(litellm_config(fake_port, key), encoding="utf-8")

    def argv(port: int) -> list[str]:
        return [
            str(script),
            "--config",
            str(config),
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--num_workers",
            "1",
        ]

    return await start_proxy(
        "litellm",
        argv,
        litellm_env(workdir),
        workdir,
        READY_PATH,
        args.startup_runs,
        max(args.startup_timeout, 120.0),
    )


def _run(report: dict[str, Any], via: str, surface: str, conc: int) -> dict[str, Any]:
    for r in report["runs"]:
        if (r["via"], r["surface"], r["concurrency"]) == (via, surface, conc):
            return dict(r)
    return {}


def side_by_side(report: dict[str, Any], concurrency: int) -> list[dict[str, Any]]:
    """Strata and LiteLLM on the same OpenAI requests, with how many times better Strata is."""
    rows: list[dict[str, Any]] = []

    def add(name: str, unit: str, strata: float, litellm: float, lower_is_better: bool) -> None:
        if lower_is_better:
            ratio = litellm / strata if strata > 0 else math.nan
        else:
            ratio = strata / litellm if litellm > 0 else math.nan
        rows.append(
            {"name": name, "unit": unit, "strata": strata, "litellm": litellm, "x_better": ratio}
        )

    for surface in ("openai", "openai-stream"):
        s, ll = report["added_ms"]["strata"], report["added_ms"]["litellm"]
        if surface in s and surface in ll:
            add(
                f"added latency p50, sequential, {surface}",
                "ms",
                s[surface]["total_p50_ms"],
                ll[surface]["total_p50_ms"],
                True,
            )
    for surface in ("openai", "openai-stream"):
        s_run = _run(report, "strata", surface, concurrency)
        ll_run = _run(report, "litellm", surface, concurrency)
        if s_run and ll_run:
            add(
                f"proxy CPU per request, c{concurrency}, {surface}",
                "ms",
                s_run["gateway_cpu_ms_per_request"],
                ll_run["gateway_cpu_ms_per_request"],
                True,
            )
            add(
                f"throughput at c{concurrency}, {surface}",
                "req/s",
                s_run["throughput_rps"],
                ll_run["throughput_rps"],
                False,
            )
    servers = report["servers"]
    add(
        "idle RSS",
        "MiB",
        servers["strata"]["idle_rss_mib"],
        servers["litellm"]["idle_rss_mib"],
        True,
    )
    add(
        "start-up (median)",
        "s",
        servers["strata"]["startup_s_median"],
        servers["litellm"]["startup_s_median"],
        True,
    )
    return [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        for row in rows
    ]


def render_side_by_side(rows: list[dict[str, Any]]) -> str:
    def num(value: float | None) -> str:
        return "n/a" if value is None else fig.format_number(value)

    body = [
        [
            r["name"],
            f"{num(r['strata'])} {r['unit']}",
            f"{num(r['litellm'])} {r['unit']}",
            "n/a" if r["x_better"] is None else f"{r['x_better']:.1f}x",
        ]
        for r in rows
    ]
    title = "measured in this run against the same fake (OpenAI surface):"
    return title + "\n" + fig.table(["figure", "strata", "litellm (1 worker)", "x better"], body)
