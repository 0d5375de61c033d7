"""A loopback SageMaker control plane for what moto 5.2.5 lacks, forwarding the rest to moto.

moto marks every training job Completed the moment it is created, overwrites the request's
``MetricDefinitions`` with a fixed one of its own, and has no StopTrainingJob nor
ListTrainingJobsForHyperParameterTuningJob. So training jobs live here, speaking the ``json``
protocol botocore uses for SageMaker (``X-Amz-Target: SageMaker.<Operation>``, errors as
``{"__type", "message"}``, timestamps as epoch seconds), reached by the real boto3 client through
``AWS_ENDPOINT_URL_SAGEMAKER``. Every other operation (tuning jobs, model package groups and
packages) is forwarded unchanged to the moto server.

Each DescribeTrainingJob advances a job one step along ``Script.steps`` (the test "advances
moto's state"): entering Training writes the scripted log lines to CloudWatch Logs (moto), and
completing writes the scripted model files to S3 (moto) under OUTPUT/JOB/output/model/, playing
the part of the container.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import boto3

from tests.fakes.loopback import LoopbackHTTPServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
STEPS = (
    ("InProgress", "Starting", "Preparing the instances for training"),
    ("InProgress", "Downloading", "Downloading input data"),
    ("InProgress", "Training", "Training image download completed. Training in progress."),
    ("InProgress", "Uploading", "Uploading generated training model"),
    ("Completed", "Completed", "Training job completed"),
)


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Script:
    steps: tuple[tuple[str, str, str], ...] = STEPS
    log_lines: list[str] = field(default_factory=list)
    artifacts: dict[str, bytes] = field(default_factory=dict)  # relative path → bytes
    failure: str | None = None  # end as Failed with this reason instead of Completed
    billable_seconds: int = 600


class FakeSageMaker(LoopbackHTTPServer):
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.script = Script()
        self._lock = threading.Lock()
        LoopbackHTTPServer.__init__(self, self._handler())

    def reset(self) -> None:
        with self._lock:
            self.jobs.clear()
            self.requests.clear()
            self.script = Script()

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.requests]

    def add_tuning_child(
        self, tuning_job: str, name: str, tuned: dict[str, str], objective: float
    ) -> None:
        """A finished training job launched by ``tuning_job`` (as HPO would start it)."""
        now = time.time()
        self.jobs[name] = {
            "TrainingJobName": name,
            "TrainingJobArn": _arn("training-job", name),
            "TuningJobArn": _arn("hyper-parameter-tuning-job", tuning_job),
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "CreationTime": now,
            "TrainingStartTime": now,
            "TrainingEndTime": now,
            "HyperParameters": tuned,
            "FinalObjective": objective,
        }

    # Operations -------------------------------------------------------------------------------

    def _logs(self) -> Any:
        return boto3.client("logs", endpoint_url=self.upstream, region_name=REGION)

    def _s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.upstream, region_name=REGION)

    def create_training_job(self, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("TrainingJobName", "AlgorithmSpecification", "RoleArn", "OutputDataConfig",
                    "ResourceConfig", "StoppingCondition"):  # fmt: skip
            if key not in body:
                raise ApiError("ValidationException", f"{key} is required")
        name = body["TrainingJobName"]
        if name in self.jobs:
            raise ApiError("ResourceInUse", f"Training job {name} already exists")
        if body.get("EnableManagedSpotTraining") and "MaxWaitTimeInSeconds" not in body.get(
            "StoppingCondition", {}
        ):
            raise ApiError("ValidationException", "MaxWaitTimeInSeconds is required for spot")
        now = time.time()
        self.jobs[name] = {
            **body,
            "TrainingJobArn": _arn("training-job", name),
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Starting",
            "SecondaryStatusTransitions": [],
            "CreationTime": now,
            "LastModifiedTime": now,
            "_step": -1,
            "_script": self.script,
        }
        return {"TrainingJobArn": self.jobs[name]["TrainingJobArn"]}

    def _job(self, name: str) -> dict[str, Any]:
        job = self.jobs.get(name.rsplit("/", 1)[-1])
        if job is None:
            raise ApiError("ValidationException", f"Requested resource not found: {name}")
        return job

    def _advance(self, job: dict[str, Any]) -> None:
        script: Script = job["_script"]
        if job["TrainingJobStatus"] != "InProgress" or job["_step"] + 1 >= len(script.steps):
            return
        job["_step"] += 1
        status, secondary, message = script.steps[job["_step"]]
        now = time.time()
        if job["SecondaryStatusTransitions"]:
            job["SecondaryStatusTransitions"][-1]["EndTime"] = now
        if status == "Completed" and script.failure:
            status, secondary, message = "Failed", "Failed", script.failure
            job["FailureReason"] = script.failure
        job["SecondaryStatusTransitions"].append(
            {"Status": secondary, "StartTime": now, "StatusMessage": message}
        )
        job.update(TrainingJobStatus=status, SecondaryStatus=secondary, LastModifiedTime=now)
        if secondary == "Training":
            job["TrainingStartTime"] = now
            self._write_logs(job["TrainingJobName"], script.log_lines)
        if status in ("Completed", "Failed"):
            job["TrainingEndTime"] = now
            job["BillableTimeInSeconds"] = script.billable_seconds
        if status == "Completed":
            self._write_artifacts(job, script.artifacts)

    def _write_logs(self, name: str, lines: list[str]) -> None:
        logs = self._logs()
        group = "/aws/sagemaker/TrainingJobs"
        if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
            logs.create_log_group(logGroupName=group)
        stream = f"{name}/algo-1-{int(time.time())}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        if lines:
            stamp = int(time.time() * 1000)
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": stamp + i, "message": m} for i, m in enumerate(lines)],
            )

    def _write_artifacts(self, job: dict[str, Any], files: dict[str, bytes]) -> None:
        output = job["OutputDataConfig"]["S3OutputPath"].removeprefix("s3://")
        bucket, _, prefix = output.partition("/")
        key_root = "/".join(
            p for p in (prefix.strip("/"), job["TrainingJobName"], "output/model") if p
        )
        s3 = self._s3()
        for relative, data in files.items():
            s3.put_object(Bucket=bucket, Key=f"{key_root}/{relative}", Body=data)
        job["ModelArtifacts"] = {"S3ModelArtifacts": f"s3://{bucket}/{key_root}/"}

    def describe_training_job(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(body["TrainingJobName"])
        self._advance(job)
        return {k: v for k, v in job.items() if not k.startswith("_") and k != "FinalObjective"}

    def stop_training_job(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(body["TrainingJobName"])
        if job["TrainingJobStatus"] != "InProgress":
            raise ApiError("ValidationException", "The job is not in progress")
        job.update(TrainingJobStatus="Stopping", SecondaryStatus="Stopping")
        return {}

    def list_training_jobs(self, body: dict[str, Any]) -> dict[str, Any]:
        contains = body.get("NameContains", "")
        jobs = [j for j in self.jobs.values() if contains in j["TrainingJobName"]]
        jobs.sort(key=lambda j: j["CreationTime"], reverse=body.get("SortOrder") == "Descending")
        return {"TrainingJobSummaries": [_summary(j) for j in jobs[: body.get("MaxResults", 100)]]}

    def list_for_tuning(self, body: dict[str, Any]) -> dict[str, Any]:
        arn = _arn("hyper-parameter-tuning-job", body["HyperParameterTuningJobName"])
        jobs = [j for j in self.jobs.values() if j.get("TuningJobArn") == arn]
        jobs.sort(key=lambda j: j["FinalObjective"], reverse=body.get("SortOrder") == "Descending")
        return {
            "TrainingJobSummaries": [
                {
                    **_summary(j),
                    "TunedHyperParameters": j["HyperParameters"],
                    "FinalHyperParameterTuningJobObjectiveMetric": {
                        "MetricName": "eval_loss",
                        "Value": j["FinalObjective"],
                    },
                }
                for j in jobs
            ]
        }

    def handle(self, operation: str, body: dict[str, Any]) -> dict[str, Any] | None:
        handlers = {
            "CreateTrainingJob": self.create_training_job,
            "DescribeTrainingJob": self.describe_training_job,
            "StopTrainingJob": self.stop_training_job,
            "ListTrainingJobs": self.list_training_jobs,
            "ListTrainingJobsForHyperParameterTuningJob": self.list_for_tuning,
        }
        handler = handlers.get(operation)
        if handler is None:
            return None
        with self._lock:
            return handler(body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "").removeprefix("SageMaker.")
                body = json.loads(raw or b"{}")
                fake.requests.append((operation, body))
                try:
                    if "/sagemaker/aws4_request" not in (self.headers.get("Authorization") or ""):
                        raise ApiError("UnrecognizedClientException", "not SigV4-signed", 403)
                    answer = fake.handle(operation, body)
                except ApiError as error:
                    payload = {"__type": error.code, "message": error.message}
                    self._reply(error.status, json.dumps(payload).encode())
                    return
                if answer is not None:
                    self._reply(200, json.dumps(answer).encode())
                    return
                self._forward(raw)

            def _forward(self, raw: bytes) -> None:
                split = urlsplit(fake.upstream)
                connection = http.client.HTTPConnection(split.hostname or "", split.port)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                connection.request("POST", self.path, body=raw, headers=headers)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                self._reply(response.status, data)

        return Handler


def trust(service: str) -> str:
    """A role trust policy letting ``service`` (e.g. sagemaker.amazonaws.com) assume the role."""
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"


def _summary(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "TrainingJobName": job["TrainingJobName"],
        "TrainingJobArn": job["TrainingJobArn"],
        "CreationTime": job["CreationTime"],
        "TrainingJobStatus": job["TrainingJobStatus"],
    }
