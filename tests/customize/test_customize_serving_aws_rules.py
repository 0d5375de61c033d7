"""Issue 13: what costs money can be seen, changed and removed (items 3, 7, 8, 14).

Provisioned Throughput, deployments and imported models live in the loopback fake; jobs and
their custom models in moto. Everything is reached through the real boto3 client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from customize.cli import app, variants_app
from customize.variants.store import VariantStore
from tests.customize.customize_test_env import Aws

NOVA = "amazon.nova-micro-v1:0:128k"
TITAN = "amazon.titan-text-lite-v1:0:4k"
CHAT = {
    "schemaVersion": "bedrock-conversation-2024",
    "messages": [
        {"role": "user", "content": [{"text": "Capital of France?"}]},
        {"role": "assistant", "content": [{"text": "Paris."}]},
    ],
}


def _json(result: Result) -> Any:
    assert result.stdout.strip(), result.output
    return json.loads(result.stdout)


def _ok(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return _json(result)


def _completed_job(
    tmp_path: Path, aws: Aws, runner: CliRunner, base: str = NOVA
) -> tuple[str, str]:
    """A job that Bedrock reports Completed, with the custom model it made (job ARN, model ARN)."""
    data = tmp_path / "train.jsonl"
    data.write_text((json.dumps(CHAT) + "\n") * 40)
    if base == TITAN:
        data.write_text((json.dumps({"prompt": "q", "completion": "a"}) + "\n") * 40)
    args = ["submit", "--base", base, "--data", str(data), "--output", f"s3://{aws.bucket}/j"]
    job = _ok(runner.invoke(app, [*args, "--role-arn", aws.role_arn, "--json"]))
    moto_job = aws.moto_bedrock().model_customization_jobs[job["job_name"]]
    moto_job.status = "Completed"
    moto_job.output_model_arn = aws.fake.add_custom_model(job["custom_model_name"], base)
    return job["job_arn"], moto_job.output_model_arn


# Item 3: Provisioned Throughput: price shown, confirmation, update, delete ---------------------


def test_item3_provision_units_shows_the_hourly_price_and_needs_confirmation(
    aws: Aws, runner: CliRunner
) -> None:
    model = aws.fake.add_custom_model("support", TITAN)
    args = ["provision", "--model", model, "--units", "2", "--commitment", "OneMonth"]
    declined = runner.invoke(app, args, input="n\n")
    assert declined.exit_code == 1
    assert "2 unit(s) x $18.4 per hour = $36.80 per hour" in declined.stderr
    assert "commitment OneMonth: 730 hours, at least $26,864.00" in declined.stderr
    assert aws.fake.state.provisioned == {}
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 1 and "pass --yes with --json" in _json(as_json)["error"]
    assert aws.fake.state.provisioned == {}
    accepted = runner.invoke(app, args, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    [(_arn, item)] = aws.fake.state.provisioned.items()
    assert item["modelUnits"] == 2 and item["commitmentDuration"] == "OneMonth"


def test_item3_provision_update_list_and_delete(aws: Aws, runner: CliRunner) -> None:
    first = aws.fake.add_custom_model("v1", TITAN)
    second = aws.fake.add_custom_model("v2", TITAN)
    aws.fake.serving.polls_to_finish = 0
    made = _ok(
        runner.invoke(
            app, ["provision", "--model", first, "--units", "1", "--yes", "--json", "--wait"]
        )
    )
    arn = made["serving"]["arn"]
    listed = _ok(runner.invoke(app, ["provision", "list", "--json"]))["provisioned"]
    assert [p["arn"] for p in listed] == [arn]
    _ok(runner.invoke(app, ["provision", "update", arn, "--model", second, "--yes", "--json"]))
    assert aws.fake.state.provisioned[arn]["modelArn"] == second
    declined = runner.invoke(app, ["provision", "delete", arn], input="n\n")
    assert declined.exit_code == 1 and arn in aws.fake.state.provisioned
    _ok(runner.invoke(app, ["provision", "delete", arn, "--yes", "--json"]))
    assert aws.fake.state.deleted == [arn] and aws.fake.state.provisioned == {}


def test_item3_deployments_list_update_delete(aws: Aws, runner: CliRunner) -> None:
    model = aws.fake.add_custom_model("nova-ft", NOVA)
    other = aws.fake.add_custom_model("nova-ft2", NOVA)
    aws.fake.serving.polls_to_finish = 0
    made = _ok(
        runner.invoke(app, ["provision", "--model", model, "--on-demand", "--json", "--wait"])
    )
    arn = made["serving"]["arn"]
    assert [
        d["arn"] for d in _ok(runner.invoke(app, ["deployments", "list", "--json"]))["deployments"]
    ] == [arn]
    _ok(runner.invoke(app, ["deployments", "update", arn, "--model", other, "--yes", "--json"]))
    assert aws.fake.state.deployments[arn]["modelArn"] == other
    _ok(runner.invoke(app, ["deployments", "delete", arn, "--yes", "--json"]))
    assert aws.fake.state.deleted == [arn]


def test_item3_models_list_and_delete(
    tmp_path: Path, aws: Aws, runner: CliRunner, tiny_llama: Path
) -> None:
    served = aws.fake.add_custom_model("served", NOVA)
    spare = aws.fake.add_custom_model("spare", NOVA)
    aws.fake.serving.polls_to_finish = aws.fake.imports.polls_to_finish = 0
    _ok(runner.invoke(app, ["provision", "--model", served, "--on-demand", "--json", "--wait"]))
    payload = _ok(
        runner.invoke(
            app,
            ["import", "--model-dir", str(tiny_llama), "--output", f"s3://{aws.bucket}/imp",
             "--role-arn", aws.role_arn, "--name", "tiny", "--wait", "--json"],
        )
    )  # fmt: skip
    imported = payload["import"]["imported_model_arn"]
    # The import says what hosting it costs: CMUs per 5-minute window, from the price table.
    assert "per 5-minute window" in payload["estimate"]["lines"][0]
    models = _ok(runner.invoke(app, ["models", "list", "--json"]))["models"]
    assert {(m["kind"], m["arn"]) for m in models} >= {
        ("custom", served), ("custom", spare), ("imported", imported)
    }  # fmt: skip
    refused = runner.invoke(app, ["models", "delete", served, "--yes", "--json"])
    assert refused.exit_code == 1 and "still served by deployment" in _json(refused)["error"]
    _ok(runner.invoke(app, ["models", "delete", spare, "--yes", "--json"]))
    _ok(runner.invoke(app, ["models", "delete", imported, "--yes", "--json"]))
    assert aws.fake.state.deleted == [spare, imported]
    kinds = {
        m["kind"]
        for m in _ok(runner.invoke(app, ["models", "list", "--kind", "imported", "--json"]))[
            "models"
        ]
    }
    assert kinds == set()


def test_item3_moto_custom_model_from_a_job_is_deleted(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text((json.dumps(CHAT) + "\n") * 10)
    args = ["submit", "--base", NOVA, "--data", str(data), "--output", f"s3://{aws.bucket}/j"]
    job = _ok(runner.invoke(app, [*args, "--role-arn", aws.role_arn, "--json"]))
    model_arn = aws.moto_bedrock().model_customization_jobs[job["job_name"]].output_model_arn
    assert job["custom_model_name"] in aws.moto_bedrock().custom_models
    _ok(runner.invoke(app, ["models", "delete", model_arn, "--yes", "--json"]))
    assert job["custom_model_name"] not in aws.moto_bedrock().custom_models


# Item 7 -------------------------------------------------------------------------------------


def test_item7_imported_models_need_no_provisioning(aws: Aws, runner: CliRunner) -> None:
    imported = "arn:aws:bedrock:us-east-1:123456789012:imported-model/abcdefghijkl"
    for mode in (["--units", "1", "--yes"], ["--on-demand"]):
        result = runner.invoke(app, ["provision", "--model", imported, *mode, "--json"])
        assert result.exit_code == 1
        assert _json(result)["error"].startswith(
            f"{imported} is an imported model: Bedrock serves imported models on demand"
        )
    assert not any(m == "POST" for m, _ in aws.fake.state.requests)


# Item 14 ------------------------------------------------------------------------------------


def test_item14_variant_of_an_unserved_model_is_refused_with_the_next_command(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    job_arn, model = _completed_job(tmp_path, aws, runner)
    result = runner.invoke(variants_app, ["add", "ft", "--job", job_arn, "--json"])
    assert result.exit_code == 1
    error = _json(result)["error"]
    assert "could not be invoked" in error and "--deploy on-demand" in error
    assert f"strata customize provision --model {model} --on-demand --wait" in error
    assert VariantStore.default().get("ft") is None


def test_item14_deploy_on_demand_registers_the_deployment(
    tmp_path: Path, aws: Aws, runner: CliRunner
) -> None:
    job_arn, model = _completed_job(tmp_path, aws, runner)
    added = _ok(
        runner.invoke(
            variants_app,
            [
                "add",
                "ft",
                "--job",
                job_arn,
                "--deploy",
                "on-demand",
                "--poll-interval",
                "0.1",
                "--json",
            ],
        )
    )["variant"]
    [(arn, deployment)] = aws.fake.state.deployments.items()
    assert deployment["modelArn"] == model and deployment["status"] == "Active"
    assert added["target"] == f"bedrock:{arn}" and added["model_arn"] == model


def test_item14_provisioning_updates_variants_registered_on_the_bare_model(
    aws: Aws, runner: CliRunner
) -> None:
    model = aws.fake.add_custom_model("v1", TITAN)
    _ok(runner.invoke(variants_app, ["add", "early", "--target", f"bedrock:{model}", "--json"]))
    store = VariantStore.default()
    early = store.get("early")
    assert early is not None
    from dataclasses import replace

    store.add(replace(early, model_arn=model), replace=True)  # as `variants add --job` records it
    aws.fake.serving.polls_to_finish = 0
    made = _ok(
        runner.invoke(
            app, ["provision", "--model", model, "--units", "1", "--yes", "--wait", "--json"]
        )
    )
    assert made["variants_updated"] == ["early"]
    updated = store.get("early")
    assert updated is not None and updated.target == f"bedrock:{made['serving']['arn']}"


# Item 8 (variant side) ----------------------------------------------------------------------


def test_item8_invoke_only_import_warns_when_registered_as_a_variant(
    aws: Aws, runner: CliRunner, tiny_llama: Path
) -> None:
    aws.fake.imports.polls_to_finish = 0
    imported = _ok(
        runner.invoke(
            app,
            ["import", "--model-dir", str(tiny_llama), "--output", f"s3://{aws.bucket}/imp",
             "--role-arn", aws.role_arn, "--name", "oss", "--wait", "--json"],
        )
    )  # fmt: skip
    model = aws.fake.state.imported_models[imported["import"]["imported_model_arn"]]
    model.update(modelArchitecture="gpt-oss", instructSupported=False)  # what Bedrock reports
    added = runner.invoke(variants_app, ["add", "oss", "--import-job", imported["job_arn"]])
    assert added.exit_code == 0, added.output
    text = " ".join(added.stderr.split())
    assert "served through InvokeModel only, not Converse" in text and "variant:oss" in text
