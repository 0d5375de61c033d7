"""What every command shares: option types, consoles, JSON output and one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, Protocol, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape

from customize.aws_errors import describe_aws_error
from customize.errors import CustomizeError
from customize.progress import Rows, StatusDisplay
from customize.waiting import wait_for

Region = Annotated[
    str | None, typer.Option("--region", help="AWS region (default: the AWS config's region).")
]
Profile = Annotated[
    str | None,
    typer.Option("--profile", help="AWS named profile (default: the standard credential chain)."),
]
JsonOut = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout instead of text.")
]
# A floor, so a typo cannot spin a tight loop against the Get* APIs' request-rate quotas.
MIN_POLL_INTERVAL = 0.1
PollInterval = Annotated[
    float,
    typer.Option(
        "--poll-interval",
        min=MIN_POLL_INTERVAL,
        help=f"Seconds between status checks while waiting (at least {MIN_POLL_INTERVAL:g}).",
    ),
]
# Every command that starts long work returns at once unless asked to follow it.
Wait = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Follow it until it ends (default: return now).")
]
Yes = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed with --json).")
]
Tags = Annotated[
    list[str] | None, typer.Option("--tag", help="Tag KEY=VALUE for what is created (repeatable).")
]
KmsKey = Annotated[
    str | None, typer.Option("--kms-key", help="KMS key ARN/ID to encrypt what is created.")
]
Subnets = Annotated[
    list[str] | None, typer.Option("--subnet", help="VPC subnet id for the job (repeatable).")
]
SecurityGroups = Annotated[
    list[str] | None,
    typer.Option("--security-group", help="VPC security group id for the job (repeatable)."),
]


def make_typer(help_text: str, **options: Any) -> typer.Typer:
    """Every (sub)app of the CLI: locals in tracebacks could show credentials; never print them."""
    settings: dict[str, Any] = {
        "no_args_is_help": True,
        "pretty_exceptions_show_locals": False,
        "rich_markup_mode": None,
    }
    return typer.Typer(help=help_text, **{**settings, **options})


def out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def emit_json(payload: object) -> None:
    sys.stdout.write(json.dumps(payload, default=_json_default, indent=2) + "\n")
    sys.stdout.flush()


def fail(line: str, *, as_json: bool = False) -> NoReturn:
    if as_json:
        emit_json({"ok": False, "error": line})
    err().print(f"[bold red]error:[/bold red] {escape(line)}")
    raise typer.Exit(1)


def finish(payload: dict[str, Any], failure: str | None, as_json: bool) -> None:
    """End a command that waited on AWS: one JSON document either way, exit 1 on failure."""
    if as_json:
        emit_json({**payload, "ok": failure is None, **({"error": failure} if failure else {})})
    if failure is not None:
        err().print(f"[bold red]error:[/bold red] {escape(failure)}")
        raise typer.Exit(1)


@contextmanager
def reported_errors(as_json: bool = False) -> Iterator[None]:
    """Show our errors and AWS SDK errors as one line and exit 1; let anything else through."""
    try:
        yield
    except (click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort):
        raise
    except CustomizeError as error:
        fail(str(error), as_json=as_json)
    except Exception as error:
        line = describe_aws_error(error)
        if line is None:
            raise
        fail(line, as_json=as_json)


def confirm(lines: list[str], question: str, *, yes: bool, as_json: bool) -> None:
    """Show what an action costs or destroys and ask; ``--yes`` skips, ``--json`` needs it."""
    if yes:
        return
    if as_json:
        from customize.errors import UsageError

        raise UsageError(f"{question.rstrip('?')}: not confirmed; pass --yes with --json")
    console = err()
    for line in lines:
        console.print(escape(line))
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)


def vpc_config(subnets: list[str] | None, groups: list[str] | None) -> dict[str, list[str]] | None:
    if not subnets and not groups:
        return None
    if not subnets or not groups:
        from customize.errors import UsageError

        raise UsageError("a VPC needs both --subnet and --security-group")
    return {"subnetIds": list(subnets), "securityGroupIds": list(groups)}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in tags.items()]


def note(message: str, *, as_json: bool) -> None:
    """Progress chatter goes to stderr, so stdout stays clean for --json and pipes."""
    if not as_json:
        err().print(f"[dim]{escape(message)}[/dim]")


class _Waitable(Protocol):
    @property
    def done(self) -> bool: ...


W = TypeVar("W", bound=_Waitable)


def wait_and_show(
    fetch: Callable[[], W],
    *,
    title: str,
    rows: Callable[[W, datetime], Rows],
    interval: float,
    as_json: bool,
) -> W:
    """Poll until the state is final, drawing progress on stderr unless the output is JSON."""
    if as_json:
        return wait_for(fetch, lambda state: state.done, interval=interval)
    with StatusDisplay(err(), title, rows) as display:
        return wait_for(
            fetch, lambda state: state.done, interval=interval, on_update=display.update
        )
