"""``customize validate`` and ``customize convert``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from customize.catalog import (
    CUSTOMIZATION_TYPES,
    CustomizationType,
    DataFormat,
    Family,
    family_for_model,
    family_named,
    token_estimate,
)
from customize.commands.common import JsonOut, emit_json, err, out, reported_errors
from customize.datasets.convert import CONVERT_FORMATS, ConvertFormat, convert_file
from customize.datasets.formats import DatasetSpec, dataset_spec, spec_for_format
from customize.datasets.validate import DatasetScan
from customize.errors import UsageError

DataPath = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="JSONL dataset file.")
]
Base = Annotated[
    str | None, typer.Option("--base", help="Base model id or ARN; picks the format and limits.")
]
FamilyOpt = Annotated[
    str | None, typer.Option("--family", help="Model family, when --base does not identify it.")
]
_TYPE_ALIASES = {"rft": "REINFORCEMENT_FINE_TUNING"}
KindName = Literal[
    "FINE_TUNING", "CONTINUED_PRE_TRAINING", "DISTILLATION", "REINFORCEMENT_FINE_TUNING", "rft"
]
Kind = Annotated[
    KindName,
    typer.Option(
        "--type", case_sensitive=False, help="Customization type (rft = REINFORCEMENT_FINE_TUNING)."
    ),
]


def resolve_family(base: str | None, family: str | None) -> Family | None:
    if family:
        return family_named(family)
    return family_for_model(base) if base else None


def customization_type(value: str) -> CustomizationType:
    upper = _TYPE_ALIASES.get(value.lower(), value).upper().replace("-", "_")
    if upper not in CUSTOMIZATION_TYPES:
        raise UsageError(f"--type {value!r} must be one of {', '.join(CUSTOMIZATION_TYPES)}")
    return upper


def _spec(
    base: str | None, family: str | None, kind: str, data_format: str | None
) -> tuple[DatasetSpec, Family | None]:
    chosen = resolve_family(base, family)
    if chosen is not None:
        return dataset_spec(chosen, customization_type(kind)), chosen
    formats = (
        "prompt-completion",
        "continued-pretraining",
        "claude-messages",
        "bedrock-conversation-2024",
    )
    if data_format in formats:
        return spec_for_format(data_format), None  # type: ignore[arg-type]
    raise UsageError(f"pass --base MODEL_ID (or --family, or --format one of {', '.join(formats)})")


def _limits_line(spec: DatasetSpec, family: Family | None) -> str:
    if spec.limits is None or family is None:
        return "no documented limits applied"
    limits = spec.limits
    records = f"{spec.min_records or 1}..{spec.max_records or 'any'} records"
    tokens = (
        f"{spec.max_tokens_per_record} tokens per record"
        if spec.max_tokens_per_record
        else "no token limit"
    )
    source = f"source {limits.source}, checked {limits.checked}"
    line = f"limits for {family.display}: {records}, {tokens} ({source})"
    if spec.role == "validation":
        line += "; validation has no minimum of its own"
    return line + limits.unconfirmed_line()


def validate(
    data: DataPath,
    base: Base = None,
    family: FamilyOpt = None,
    kind: Kind = "FINE_TUNING",
    data_format: Annotated[
        str | None, typer.Option("--format", help="Check one format without a model's limits.")
    ] = None,
    role: Annotated[
        Literal["training", "validation"],
        typer.Option(
            "--role",
            help="validation: no record minimum of its own (AWS counts both files together).",
        ),
    ] = "training",
    bucket: Annotated[
        str | None,
        typer.Option("--bucket", help="The S3 bucket the data will be in (media must be there)."),
    ] = None,
    max_problems: Annotated[
        int | None,
        typer.Option(
            "--max-problems",
            min=0,
            help="Show at most this many problems (default: all; 1000 with --json).",
        ),
    ] = None,
    as_json: JsonOut = False,
) -> None:
    """Check a JSONL dataset against the format Bedrock requires for a base model.

    Lists every problem with its line number; exits 1 when there is any.
    """
    with reported_errors(as_json):
        spec, chosen = _spec(base, family, kind, data_format)
        spec = spec.for_role("validation" if role == "validation" else "training").in_bucket(bucket)
        cap = max_problems if max_problems is not None else (1000 if as_json else None)
        scan = DatasetScan(data, spec)
        shown: list[dict[str, Any]] = []
        for problem in scan:
            if cap is not None and len(shown) >= cap:
                continue
            shown.append(
                {"line": problem.line, "reason": problem.reason, "warning": problem.warning}
            )
            if not as_json:
                sys.stdout.write(f"{data.name}: {problem}\n")
        stats = scan.stats
        if as_json:
            emit_json(
                {
                    "ok": stats.problems == 0,
                    "file": str(data),
                    "format": spec.format,
                    "family": chosen.name if chosen else None,
                    "stats": stats.as_dict(),
                    "limits": spec.limits.model_dump() if spec.limits else None,
                    "token_estimate": token_estimate().model_dump(),
                    "problems": shown,
                    "problems_not_shown": stats.problems + stats.warnings - len(shown),
                }
            )
        else:
            console = out()
            if stats.problems + stats.warnings > len(shown):
                console.print(f"… and {stats.problems + stats.warnings - len(shown)} more")
            verdict = (
                "[green]OK[/green]"
                if stats.problems == 0
                else f"[red]{stats.problems} problem(s)[/red]"
            )
            if stats.warnings:
                verdict += f", {stats.warnings} warning(s)"
            console.print(
                f"{data.name}: {verdict} — {stats.records} records ({spec.format}), "
                f"about {stats.estimated_tokens:,} tokens, largest record about "
                f"{stats.max_record_tokens:,} "
                f"tokens (line {stats.max_record_line})"
            )
            console.print(
                f"[dim]{_limits_line(spec, chosen)}; tokens are estimated at "
                f"{token_estimate().chars_per_token:g} characters per token[/dim]"
            )
        if stats.problems:
            raise typer.Exit(1)


def _convert_format(value: str, option: str) -> ConvertFormat:
    if value not in CONVERT_FORMATS:
        raise UsageError(f"{option} must be one of {', '.join(CONVERT_FORMATS)}")
    return value  # type: ignore[return-value]


def convert(
    source: DataPath,
    target: Annotated[
        Path,
        typer.Argument(
            dir_okay=False, help="Output JSONL file (written only if every line converts)."
        ),
    ],
    from_format: Annotated[
        str, typer.Option("--from", help=f"Input format: {', '.join(CONVERT_FORMATS)}.")
    ],
    to_format: Annotated[
        str | None, typer.Option("--to", help=f"Output format: {', '.join(CONVERT_FORMATS)}.")
    ] = None,
    to_base: Annotated[
        str | None, typer.Option("--to-base", help="Convert to the format this base model needs.")
    ] = None,
    as_json: JsonOut = False,
) -> None:
    """Convert a dataset between Bedrock's formats and the OpenAI chat format."""
    with reported_errors(as_json):
        source_format = _convert_format(from_format, "--from")
        if to_base:
            family_format: DataFormat = family_for_model(to_base).format
            target_format = _convert_format(family_format, "--to-base")
        elif to_format:
            target_format = _convert_format(to_format, "--to")
        else:
            raise UsageError("pass --to FORMAT or --to-base MODEL_ID")
        result = convert_file(source, target, source_format, target_format)
        if as_json:
            emit_json(
                {
                    "ok": True,
                    "records": result.records,
                    "output": result.output,
                    "from": source_format,
                    "to": target_format,
                    "warnings": [
                        {"line": n, "reason": "empty line: skipped"} for n in result.blank_lines
                    ],
                }
            )
        else:
            for lineno in result.blank_lines:
                err().print(f"warning: line {lineno}: empty line: skipped")
            out().print(
                f"wrote {result.records} records ({source_format} → {target_format}) "
                f"to {result.output}"
            )
