"""Waiting and the progress display, with plain data (no AWS)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from customize.errors import OperationFailed
from customize.jobs.follow import job_rows, snapshot
from customize.progress import StatusDisplay, elapsed_since, format_elapsed
from customize.waiting import wait_for

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


JOB_ARN = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/x/abcdefghijkl"


def _job(status: str, **extra: object) -> dict[str, object]:
    return {"jobArn": JOB_ARN, "jobName": "x", "status": status, "creationTime": START, **extra}


def test_snapshot_reads_substeps_losses_and_ignores_stale_failure_messages() -> None:
    running = snapshot(
        _job(
            "InProgress",
            statusDetails={
                "trainingDetails": {"status": "InProgress"},
                "validationDetails": {"status": "Completed"},
            },
            trainingMetrics={"trainingLoss": 0.5},
            validationMetrics=[{"validationLoss": 0.9}, {"validationLoss": 0.7}],
            failureMessage="Failure Message",
        )
    )
    assert running.steps == (("Validation", "Completed"), ("Training", "InProgress"))
    assert (running.training_loss, running.validation_loss) == (0.5, 0.7)
    assert running.failure_message is None and not running.done
    failed = snapshot(
        _job("Failed", failureMessage="bad data", endTime=START + timedelta(minutes=3))
    )
    assert failed.done and failed.failure_message == "bad data" and failed.ended is not None
    rows = dict(job_rows(failed, START + timedelta(hours=5)))
    assert rows["Elapsed"] == "0:03:00"  # an ended job stops the clock


def test_elapsed_formatting_handles_naive_times() -> None:
    assert format_elapsed(timedelta(hours=26, minutes=3, seconds=4)) == "26:03:04"
    naive = datetime(2026, 1, 1, 12, 0)
    assert elapsed_since(naive, None, START + timedelta(seconds=75)) == "0:01:15"
    assert elapsed_since(None, None, START) == "-"


def test_terminal_gets_a_live_panel() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    with StatusDisplay(console, "Bedrock customization job", job_rows) as display:
        display.update(snapshot(_job("InProgress", trainingMetrics={"trainingLoss": 1.25})))
        display.update(snapshot(_job("Completed", trainingMetrics={"trainingLoss": 0.25})))
    text = buffer.getvalue()
    assert "Bedrock customization job" in text and "╭" in text  # a panel, redrawn in place
    assert "Completed" in text and "0.2500" in text


def test_piped_output_prints_a_line_only_when_something_changes() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=200)
    with StatusDisplay(console, "job", job_rows) as display:
        for status in ("InProgress", "InProgress", "InProgress", "Completed"):
            display.update(snapshot(_job(status)))
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2
    assert "Status: InProgress" in lines[0] and "Status: Completed" in lines[1]


def test_wait_for_polls_until_done_and_can_give_up() -> None:
    states = iter(["a", "b", "done"])
    slept: list[float] = []
    seen: list[str] = []
    final = wait_for(
        lambda: next(states),
        lambda s: s == "done",
        interval=7,
        sleep=slept.append,
        on_update=seen.append,
    )
    assert final == "done" and seen == ["a", "b", "done"] and slept == [7, 7]

    ticks = iter(range(100))
    with pytest.raises(OperationFailed, match="gave up waiting after 3s"):
        wait_for(
            lambda: "running",
            lambda s: False,
            interval=1,
            sleep=lambda _: None,
            timeout=3,
            clock=lambda: next(ticks),
        )
