"""moto (S3, IAM, CloudWatch Logs, SageMaker model registry and tuning) behind the SageMaker fake.

The CLI reaches them through the standard ``AWS_ENDPOINT_URL_<SERVICE>`` variables, exactly as it
would reach AWS: SageMaker to ``FakeSageMaker`` (which forwards what it does not own to moto),
everything else straight to the moto server.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer

from tests.fakes.sagemaker import REGION, FakeSageMaker, trust


@dataclass
class Aws:
    moto_url: str
    fake: FakeSageMaker
    bucket: str
    role_arn: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def fake_sagemaker(moto_url: str) -> Iterator[FakeSageMaker]:
    fake = FakeSageMaker(upstream=moto_url).start()
    yield fake
    fake.stop()


@pytest.fixture
def aws(
    moto_url: str, fake_sagemaker: FakeSageMaker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Aws:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("COLUMNS", "200")
    urllib.request.urlopen(
        urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    ).close()
    fake_sagemaker.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for service in ("S3", "IAM", "CLOUDWATCH_LOGS", "BEDROCK"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", fake_sagemaker.url)
    handles = Aws(moto_url, fake_sagemaker, "strata-sm-bucket", "")
    handles.client("s3").create_bucket(Bucket=handles.bucket)
    role = handles.client("iam").create_role(
        RoleName="sagemaker-training", AssumeRolePolicyDocument=trust("sagemaker.amazonaws.com")
    )
    handles.role_arn = role["Role"]["Arn"]
    return handles


@pytest.fixture(scope="session")
def cli() -> typer.Typer:
    """The ``strata`` app with every package's commands mounted, as the console script has it."""
    from gateway import cli as root

    if not any(group.name == "train" for group in root.app.registered_groups):
        root._mount()
    return root.app


@pytest.fixture
def data_files(tmp_path: Path) -> tuple[Path, Path]:
    train = tmp_path / "upper.jsonl"
    evaluation = tmp_path / "upper-eval.jsonl"
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    train.write_text(
        "".join(
            json.dumps({"prompt": f"Uppercase: {w}", "completion": w.upper()}) + "\n"
            for w in words[:6]
        )
    )
    evaluation.write_text(
        "".join(
            json.dumps({"prompt": f"Uppercase: {w}", "completion": w.upper()}) + "\n"
            for w in words[6:]
        )
    )
    return train, evaluation
