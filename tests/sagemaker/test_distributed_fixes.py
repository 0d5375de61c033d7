"""Regression tests for the torchrun path (issue 14 item 6, the parts in distributed.py)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from adapters_local.training.distributed import backend_for


def test_cpu_training_uses_gloo_even_where_cuda_exists() -> None:
    # The old code chose "nccl" whenever torch.cuda.is_available(), whatever --device said.
    assert backend_for("cpu", cuda_available=True) == "gloo"
    assert backend_for("cuda:1", cuda_available=True) == "nccl"
    assert backend_for("cuda", cuda_available=False) == "gloo"


@pytest.mark.slow
def test_only_rank_zero_reports_saved_adapter(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f"Copy: {w}", "completion": w}) + "\n" for w in "abcdefgh")
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    strata = shutil.which("strata", path=str(Path(sys.executable).parent))
    assert strata is not None
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--no-python",
            "--nproc_per_node=2",
            "--master_addr=127.0.0.1",
            f"--master_port={port}",
            strata,
            "train",
            "lora",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "out"),
            "--steps",
            "2",
            "--row-len",
            "64",
            "--rows-per-step",
            "1",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (result.stdout + result.stderr).count("saved adapter to") == 1
    assert json.loads((tmp_path / "out" / "report.json").read_text())["world_size"] == 2
