"""``customize models list|delete`` and ``customize imports list|status``."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.table import Table

from customize.commands.common import (
    JsonOut,
    PollInterval,
    Profile,
    Region,
    Wait,
    Yes,
    confirm,
    emit_json,
    finish,
    make_typer,
    out,
    reported_errors,
    wait_and_show,
)

models_app = make_typer("Custom and imported models (each is billed for storage until deleted).")
imports_app = make_typer("Bedrock model import jobs.")


@models_app.command("list")
def models_list(
    kind: Annotated[
        Literal["all", "custom", "imported"], typer.Option("--kind", help="Which models.")
    ] = "all",
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """List custom (fine-tuned, distilled) and imported models."""
    from customize.aws import AwsContext
    from customize.serving.models import ModelKind, list_models

    with reported_errors(as_json):
        kinds: tuple[ModelKind, ...] = ("custom", "imported") if kind == "all" else (kind,)
        rows = list_models(AwsContext(region, profile).bedrock, kinds)
        if as_json:
            emit_json({"ok": True, "models": [row.as_dict() for row in rows]})
            return
        table = Table("Kind", "Name", "Base / architecture", "Created", "ARN")
        for column in table.columns:
            column.overflow = "fold"
        for row in rows:
            created = row.created.strftime("%Y-%m-%d %H:%M") if row.created else "-"
            table.add_row(row.kind, row.name, row.base or "-", created, row.arn)
        out().print(table)


@models_app.command("delete")
def models_delete(
    arn: Annotated[str, typer.Argument(help="Custom or imported model ARN.")],
    yes: Yes = False,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Delete a custom or imported model (refused while a throughput or deployment serves it)."""
    from customize.aws import AwsContext
    from customize.serving.models import delete_model, model_kind
    from customize.variants.store import VariantStore

    with reported_errors(as_json):
        routing = [v.name for v in VariantStore.default().list() if v.model_arn == arn]
        lines = [f"{model_kind(arn)} model {arn} will be deleted; this cannot be undone"]
        lines += [f"variant {name} is built on it and will stop working" for name in routing]
        confirm(lines, "Delete this model?", yes=yes, as_json=as_json)
        kind = delete_model(AwsContext(region, profile).bedrock, arn)
        if not as_json:
            out().print(f"deleted {kind} model {arn}")
        finish(
            {"ok": True, "deleted": arn, "kind": kind, "variants_affected": routing}, None, as_json
        )


@imports_app.command("list")
def imports_list(
    status_equals: Annotated[
        Literal["InProgress", "Completed", "Failed"] | None,
        typer.Option("--status", case_sensitive=False, help="Only jobs in this status."),
    ] = None,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """List model import jobs, newest first."""
    from customize.aws import AwsContext
    from customize.imports.submit import import_snapshot

    with reported_errors(as_json):
        bedrock = AwsContext(region, profile).bedrock
        request: dict[str, str] = {"sortBy": "CreationTime", "sortOrder": "Descending"}
        if status_equals:
            request["statusEquals"] = status_equals
        jobs = [
            import_snapshot(summary)
            for page in bedrock.get_paginator("list_model_import_jobs").paginate(**request)  # type: ignore[arg-type]
            for summary in page.get("modelImportJobSummaries", [])
        ]
        if as_json:
            emit_json({"ok": True, "imports": [job.as_dict() for job in jobs]})
            return
        for job in jobs:
            out().print(f"{job.name}  {job.status}  {job.imported_model_arn or '-'}  {job.arn}")


@imports_app.command("status")
def imports_status(
    job: Annotated[str, typer.Argument(help="Import job ARN or name.")],
    wait: Wait = False,
    poll_interval: PollInterval = 30.0,
    region: Region = None,
    profile: Profile = None,
    as_json: JsonOut = False,
) -> None:
    """Show a model import job; --wait follows it until it ends (exit 1 if it fails)."""
    from customize.aws import AwsContext
    from customize.imports.submit import get_import, import_rows

    with reported_errors(as_json):
        bedrock = AwsContext(region, profile).bedrock
        state = get_import(bedrock, job)
        if wait and not state.done:
            state = wait_and_show(
                lambda: get_import(bedrock, job), title="Bedrock model import", rows=import_rows,
                interval=poll_interval, as_json=as_json,
            )  # fmt: skip
        failure = (
            f"import job {state.name} failed: {state.failure_message or 'no failure message'}"
            if state.status == "Failed"
            else None
        )
        if not as_json:
            out().print(f"{state.name}: {state.status} {state.imported_model_arn or ''}".rstrip())
        finish({"ok": True, "import": state.as_dict()}, failure, as_json)
