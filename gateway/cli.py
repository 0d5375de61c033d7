"""The ``strata`` console script: one typer app, subcommands grouped by package."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Strata: Bedrock-centric LLM gateway and customization manager.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _serve_epilog() -> str:
    from gateway.settings import environment_help

    # Typer folds epilog lines; blank lines between entries keep one setting per line.
    return "Environment variables:\n\n" + "\n\n".join(environment_help().splitlines())


@app.command(epilog=_serve_epilog())
def serve(
    config: Annotated[
        Path | None, typer.Option(help="strata.yaml with aliases and providers")
    ] = None,
    host: Annotated[str | None, typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="port to listen on (default 8080)")
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(help="worker processes sharing the port, or auto: one per core (default 1)"),
    ] = None,
) -> None:
    """Run the gateway (OpenAI-compatible and Bedrock-native APIs)."""
    from pydantic import ValidationError

    from gateway.config import server_settings
    from gateway.errors import ConfigError
    from gateway.logs import configure
    from gateway.serving import bind, run
    from gateway.settings import Settings
    from gateway.workers import Supervisor, bind_group, refusal

    overrides: dict[str, object] = {}
    if config is not None:
        overrides["config"] = config
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if workers is not None:
        overrides["workers"] = workers
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        settings = server_settings(settings)  # strata.yaml's server: section
    except ConfigError as exc:
        typer.echo(f"strata: {exc.message}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            name = "STRATA_" + "_".join(str(p) for p in error["loc"]).upper()
            typer.echo(f"strata: {name}: {error['msg']}", err=True)
        raise typer.Exit(2) from None
    configure(settings.log_level)
    refused = refusal(settings)
    if refused is not None:
        typer.echo(f"strata: {refused}", err=True)
        raise typer.Exit(2)
    # Bind first: a busy port fails now, not after loading a model for seconds.
    try:
        if settings.workers == 1:
            sockets = [bind(settings.host, settings.port)]
        else:
            sockets = bind_group(settings.host, settings.port, settings.workers)
    except OSError as exc:
        typer.echo(
            f"strata: cannot listen on {settings.host}:{settings.port}: {exc.strerror}", err=True
        )
        raise typer.Exit(2) from None
    from gateway.app import create_app

    try:
        application = create_app(settings)
    except ConfigError as exc:
        for sock in sockets:
            sock.close()
        typer.echo(f"strata: {exc.message}", err=True)
        raise typer.Exit(2) from None
    if settings.workers == 1:
        run(application, settings, sockets[0])
    else:
        raise typer.Exit(Supervisor(application, settings, sockets).run())


def main() -> None:
    _mount()
    sys.exit(app())


def _mount() -> None:
    """Sub-apps of the other packages; each keeps its heavy imports inside its commands."""
    from adapters_local.cli import export_command, train_app
    from customize.cli import app as customize_app
    from customize.cli import variants_app
    from dashboards.cli import alarms_app, dashboards_app
    from gateway.accounting.cli import keys_app, tenants_app, usage_command
    from gateway.cache.cli import cache_app

    app.add_typer(keys_app, name="keys", help="API keys: create, list, revoke.")
    app.add_typer(tenants_app, name="tenants", help="Tenant-wide limits and budgets.")
    from gateway.experiments import cli_manage  # noqa: F401  (registers its ab commands)
    from gateway.experiments.cli import ab_app

    app.add_typer(ab_app, name="ab", help="A/B experiments on live traffic.")
    from gateway.experiments.feedback_cli import feedback_app

    app.add_typer(feedback_app, name="feedback", help="Preference data from rated traffic.")
    app.command("usage", help="Usage and cost from the ledger.")(usage_command)
    app.add_typer(cache_app, name="cache", help="The response cache: counters, flush.")
    app.add_typer(customize_app, name="customize", help="Bedrock customization jobs.")
    app.add_typer(variants_app, name="variants", help="Model variants the gateway can route to.")
    app.add_typer(train_app, name="train", help="Train adapters locally or on SageMaker.")
    app.add_typer(dashboards_app, name="dashboards", help="CloudWatch dashboard for the gateway.")
    app.add_typer(alarms_app, name="alarms", help="CloudWatch alarms for the gateway.")
    app.command("export", help="Merge a LoRA adapter and export for Bedrock import.")(
        export_command
    )
    from customize.sagemaker import commands as sagemaker_jobs
    from customize.sagemaker.tune_cmd import tune_app

    train_app.command("status")(sagemaker_jobs.status)
    train_app.command("stop")(sagemaker_jobs.stop)
    train_app.command("list")(sagemaker_jobs.list_jobs)
    train_app.command("register")(sagemaker_jobs.register_job)
    from adapters_local.preference.cli import register_commands

    register_commands(train_app)  # strata train reward | dpo | grpo
    app.add_typer(tune_app, name="tune", help="Hyper-parameter search (SageMaker HPO or Optuna).")
