"""A transcript of the whole customization lifecycle against moto plus the loopback fake.

    .venv/bin/python -m tests.customize.customize_transcript

Starts moto (S3, IAM, customization jobs) and the Bedrock control-plane fake on 127.0.0.1, then
runs the installed ``strata`` console script, as a user would, for: estimate → submit → a failed
job → the same submit refused with the retry hint → submit --retry → follow → deploy on demand →
variant → delete. Between commands it plays Bedrock's part (a job fails; the retry trains and
completes) through moto's backend and the fake's scripted answers. Not a test: it prints.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from moto.backends import get_backend
from moto.server import ThreadedMotoServer

from tests.customize.customize_fake_bedrock import ACCOUNT, REGION, FakeBedrock

NOVA = "amazon.nova-micro-v1:0:128k"
STRATA = str(Path(sys.executable).with_name("strata"))
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "bedrock.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def run(env: dict[str, str], *args: str, expect: int = 0) -> str:
    shown = " ".join(shlex.quote(a) for a in ["strata", *args])
    print(f"\n$ {shown}", flush=True)
    done = subprocess.run([STRATA, *args], capture_output=True, text=True, env=env, timeout=120)
    for stream in (done.stderr, done.stdout):
        if stream.strip():
            print(stream.rstrip())
    print(f"[exit {done.returncode}]")
    if done.returncode != expect:
        raise SystemExit(f"unexpected exit status {done.returncode} (wanted {expect})")
    return done.stdout


def bedrock_says(text: str) -> None:
    print(f"\n# (Bedrock) {text}")


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    fake = FakeBedrock(upstream=moto_url, s3_endpoint=moto_url).start()
    fake.serving.polls_to_finish = 1
    work = Path(tempfile.mkdtemp(prefix="strata-transcript-"))
    empty = work / "aws-empty"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRATA_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_EC2_METADATA_DISABLED="true", AWS_ENDPOINT_URL_S3=moto_url,
        AWS_ENDPOINT_URL_IAM=moto_url, AWS_ENDPOINT_URL_BEDROCK=fake.url,
        STRATA_HOME=str(work / "home"), COLUMNS="120",
    )  # fmt: skip
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    try:
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="ft-bucket")
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="bedrock-ft", AssumeRolePolicyDocument=json.dumps(TRUST)
        )["Role"]["Arn"]
        data = work / "support.jsonl"
        record = {
            "schemaVersion": "bedrock-conversation-2024",
            "system": [{"text": "You are a support agent."}],
            "messages": [
                {"role": "user", "content": [{"text": "My order has not arrived."}]},
                {"role": "assistant", "content": [{"text": "Sorry! Let me check the tracking."}]},
            ],
        }
        data.write_text((json.dumps(record) + "\n") * 200)
        common = ["--base", NOVA, "--data", str(data), "--output", "s3://ft-bucket/support",
                  "--role-arn", role, "--hp", "epochCount=2"]  # fmt: skip

        run(
            env,
            "customize",
            "estimate",
            "--base",
            NOVA,
            "--data",
            str(data),
            "--hp",
            "epochCount=2",
        )
        first = run(env, "customize", "submit", *common).strip().splitlines()[-1]
        name = first.rsplit("/", 1)[-1]
        bedrock_says(f"job {name} fails during data processing")
        job = get_backend("bedrock")[ACCOUNT][REGION].model_customization_jobs[name]
        job.status, job.failure_message = (
            "Failed",
            "Internal error in data processing; please retry",
        )
        run(env, "customize", "status", first, "--wait", expect=1)
        run(env, "customize", "submit", *common, expect=1)
        retry = run(env, "customize", "submit", *common, "--retry").strip().splitlines()[-1]
        retry_name = retry.rsplit("/", 1)[-1]

        model = fake.add_custom_model(f"{retry_name}-model", NOVA)
        base = {
            "jobArn": retry, "jobName": retry_name, "customizationType": "FINE_TUNING",
            "baseModelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{NOVA}",
            "creationTime": time.time() - 3600, "hyperParameters": {"epochCount": "2"},
            "trainingDataConfig": {"s3Uri": "s3://ft-bucket/support/data/x/support.jsonl"},
            "outputModelName": f"{retry_name}-model",
        }  # fmt: skip
        fake.script_job(retry_name, [
            {**base, "status": "InProgress", "statusDetails": {
                "validationDetails": {"status": "Completed"},
                "dataProcessingDetails": {"status": "InProgress"}}},
            {**base, "status": "InProgress", "statusDetails": {
                "validationDetails": {"status": "Completed"},
                "dataProcessingDetails": {"status": "Completed"},
                "trainingDetails": {"status": "InProgress"}},
             "trainingMetrics": {"trainingLoss": 1.2345}},
            {**base, "status": "Completed", "endTime": time.time(), "outputModelArn": model,
             "statusDetails": {"validationDetails": {"status": "Completed"},
                               "dataProcessingDetails": {"status": "Completed"},
                               "trainingDetails": {"status": "Completed"}},
             "trainingMetrics": {"trainingLoss": 0.4321}},
        ])  # fmt: skip
        bedrock_says(f"job {retry_name} validates, processes the data, trains, completes")
        run(env, "customize", "status", retry, "--wait", "--poll-interval", "0.1")
        served = run(env, "customize", "provision", "--model", model, "--on-demand", "--wait",
                     "--poll-interval", "0.1").strip().splitlines()[0]  # fmt: skip
        run(env, "variants", "add", "support-v2", "--job", retry)
        run(env, "variants", "list")
        run(env, "customize", "deployments", "list")
        run(env, "customize", "deployments", "delete", served, "--yes")
        run(env, "customize", "models", "delete", model, "--yes")
        run(env, "customize", "models", "list")
        run(env, "variants", "remove", "support-v2")
    finally:
        fake.stop()
        moto.stop()


if __name__ == "__main__":
    main()
