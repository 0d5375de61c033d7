"""The typer apps the ``strata`` CLI mounts: ``app`` as ``strata customize``, ``variants_app`` as
``strata variants``. Importing this module loads no AWS SDK; commands load it when they need it.
"""

from __future__ import annotations

from customize.commands import (
    datasets_cmd,
    import_cmd,
    jobs_cmd,
    manage_cmd,
    serving_cmd,
    submit_cmd,
    variants_cmd,
)
from customize.commands.common import make_typer

app = make_typer("Bedrock customization: datasets, fine-tuning jobs, serving, model import.")
app.command("validate")(datasets_cmd.validate)
app.command("convert")(datasets_cmd.convert)
app.command("estimate")(submit_cmd.estimate)
app.command("submit")(submit_cmd.submit)
app.command("status")(jobs_cmd.status)
app.command("list")(jobs_cmd.list_jobs)
app.command("stop")(jobs_cmd.stop)
app.add_typer(serving_cmd.provision_app, name="provision")
app.add_typer(serving_cmd.deployments_app, name="deployments")
app.add_typer(manage_cmd.models_app, name="models")
app.command("import")(import_cmd.import_model)
app.command("import-check")(import_cmd.import_check)
app.add_typer(manage_cmd.imports_app, name="imports")

variants_app = make_typer("Named variants the gateway can route to as variant:NAME.")
variants_app.command("add")(variants_cmd.add)
variants_app.command("list")(variants_cmd.list_variants)
variants_app.command("show")(variants_cmd.show)
variants_app.command("remove")(variants_cmd.remove)


def main() -> None:
    """``python -m customize``: the customize commands, plus ``variants``, without the gateway."""
    root = make_typer("Strata customization manager.")
    root.add_typer(app, name="customize")
    root.add_typer(variants_app, name="variants")
    root()
