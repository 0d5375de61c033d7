"""What a local training run (``strata train lora|bottleneck --out DIR``) tells the variant
registry: its base, method and training data hash from ``DIR/report.json``, and the lineage
stages dataset → training run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from customize.errors import UsageError


def read_run(folder: Path) -> dict[str, Any]:
    report = folder / "report.json"
    try:
        data: dict[str, Any] = json.loads(report.read_text())
    except FileNotFoundError:
        raise UsageError(
            f"--run: {report} not found; is {folder} a training run's --out?"
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--run: cannot read {report}: {exc}") from None
    return data


def run_lineage(folder: Path, report: dict[str, Any]) -> dict[str, str]:
    lineage = {"training_run": str(folder.resolve())}
    if report.get("data_sha256"):
        lineage["dataset"] = f"sha256:{report['data_sha256']}"
    return lineage
