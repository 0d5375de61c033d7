"""A loopback Bedrock control plane for the operations moto 5 lacks.

It speaks the ``rest-json`` protocol botocore uses for the ``bedrock`` service (paths and methods
from botocore's ``bedrock/2023-04-20/service-2.json``; errors as an HTTP status, an
``x-amzn-ErrorType`` header and a ``{"message"}`` body; timestamps as epoch seconds), so the real
boto3 client reaches it through ``AWS_ENDPOINT_URL_BEDROCK``.

It implements model import jobs, imported models, Provisioned Throughput and custom model
deployments (creating, changing, deleting and listing them: customize_fake_manage.py), with
scripted outcomes (how many polls before a job ends, and which ones fail with
which ``failureMessage``). Every other request is forwarded unchanged to an upstream moto server,
with one correction: moto 5.2.5 looks up a ``{jobIdentifier}`` URI label without percent-decoding
it, so a job ARN (``arn%3Aaws%3A…%2Fname``) is never found there. The real service accepts the ARN
or the name; moto's ARNs end in ``/NAME``, so the forwarder hands moto the name.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3

from tests.customize.customize_fake_manage import ManageOps, NotFound
from tests.fakes.loopback import LoopbackHTTPServer

ACCOUNT = "123456789012"
REGION = "us-east-1"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _id() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:bedrock:{REGION}:{ACCOUNT}:{kind}/{name}"


@dataclass
class Script:
    """How the fake's long operations end."""

    polls_to_finish: int = 2  # GETs that still report the in-progress status
    failures: dict[str, str] = field(default_factory=dict)  # resource name → failureMessage


@dataclass
class FakeState:
    import_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    imported_models: dict[str, dict[str, Any]] = field(default_factory=dict)
    provisioned: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_models: dict[str, dict[str, Any]] = field(default_factory=dict)
    scripted_jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # clientRequestToken → ARN created
    polls: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    denied: dict[tuple[str, str], str] = field(default_factory=dict)  # (method, path) → message
    deleted: list[str] = field(default_factory=list)  # ARNs deleted, in order
    bodies: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # requests seen
    log_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # jobs moto cannot hold


class FakeBedrock(ManageOps, LoopbackHTTPServer):
    def __init__(self, upstream: str | None = None, s3_endpoint: str | None = None) -> None:
        self.upstream = upstream
        self.s3_endpoint = s3_endpoint
        self.state = FakeState()
        self.imports = Script()
        self.serving = Script()
        self._lock = threading.Lock()
        LoopbackHTTPServer.__init__(self, self._handler_class())

    def reset(self) -> None:
        with self._lock:
            self.state = FakeState()
            self.imports = Script()
            self.serving = Script()

    # Test helpers -----------------------------------------------------------------------------

    def add_custom_model(self, name: str, base_model_id: str) -> str:
        arn = _arn("custom-model", f"{base_model_id}/{_id()}")
        self.state.custom_models[arn] = {
            "modelArn": arn,
            "modelName": name,
            "baseModelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{base_model_id}",
            "creationTime": time.time(),
            "modelStatus": "Active",
        }
        return arn

    def deny(self, method: str, path: str, message: str) -> None:
        """Answer ``method path`` with AccessDeniedException, as for a missing IAM permission."""
        self.state.denied[(method, path)] = message

    def script_job(self, name: str, responses: list[dict[str, Any]]) -> None:
        """Successive GetModelCustomizationJob answers for ``name`` (the last one repeats)."""
        self.state.scripted_jobs[name] = responses

    # Operations -------------------------------------------------------------------------------

    def _finished(self, key: str) -> bool:
        self.state.polls[key] = self.state.polls.get(key, 0) + 1
        script = self.imports if key.startswith("import:") else self.serving
        return self.state.polls[key] > script.polls_to_finish

    def _idempotent(self, token: str | None, create: Callable[[], str]) -> str:
        if token and token in self.state.tokens:
            return self.state.tokens[token]
        arn = create()
        if token:
            self.state.tokens[token] = arn
        return arn

    def create_model_import_job(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        _require(body, "jobName", "importedModelName", "roleArn", "modelDataSource")
        source = body["modelDataSource"].get("s3DataSource", {}).get("s3Uri", "")
        if not source.startswith("s3://"):
            raise ApiError(
                400, "ValidationException", "modelDataSource.s3DataSource.s3Uri must be s3://"
            )

        def create() -> str:
            if body["jobName"] in self.state.import_jobs:
                raise ApiError(400, "ConflictException", f"job {body['jobName']} already exists")
            arn = _arn("model-import-job", _id())
            self.state.import_jobs[body["jobName"]] = {
                "jobArn": arn,
                "jobName": body["jobName"],
                "importedModelName": body["importedModelName"],
                "roleArn": body["roleArn"],
                "modelDataSource": body["modelDataSource"],
                "status": "InProgress",
                "creationTime": time.time(),
                "lastModifiedTime": time.time(),
            }
            return arn

        return 201, {"jobArn": self._idempotent(body.get("clientRequestToken"), create)}

    def _import_job(self, identifier: str) -> dict[str, Any]:
        for job in self.state.import_jobs.values():
            if identifier in (job["jobArn"], job["jobName"]):
                return job
        raise ApiError(404, "ResourceNotFoundException", f"model import job {identifier} not found")

    def _source_problem(self, job: dict[str, Any]) -> str | None:
        """What Bedrock would say when the uploaded folder is not there."""
        if self.s3_endpoint is None:
            return None
        uri = job["modelDataSource"]["s3DataSource"]["s3Uri"]
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        s3 = boto3.client("s3", endpoint_url=self.s3_endpoint, region_name=REGION)
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        names = {
            item["Key"].removeprefix(prefix).lstrip("/") for item in listed.get("Contents", [])
        }
        return None if "config.json" in names else f"config.json was not found under {uri}"

    def get_model_import_job(self, identifier: str) -> tuple[int, dict[str, Any]]:
        job = self._import_job(identifier)
        if job["status"] == "InProgress" and self._finished(f"import:{job['jobArn']}"):
            failure = self.imports.failures.get(job["importedModelName"]) or self._source_problem(
                job
            )
            job["endTime"] = job["lastModifiedTime"] = time.time()
            if failure:
                job.update(status="Failed", failureMessage=failure)
            else:
                model_arn = _arn("imported-model", _id())
                job.update(status="Completed", importedModelArn=model_arn)
                self.state.imported_models[model_arn] = {
                    "modelArn": model_arn,
                    "modelName": job["importedModelName"],
                    "jobName": job["jobName"],
                    "jobArn": job["jobArn"],
                    "modelDataSource": job["modelDataSource"],
                    "creationTime": time.time(),
                    "modelArchitecture": "llama",
                    "instructSupported": True,
                }
        return 200, job

    def get_imported_model(self, identifier: str) -> tuple[int, dict[str, Any]]:
        for model in self.state.imported_models.values():
            if identifier in (model["modelArn"], model["modelName"]):
                return 200, model
        raise ApiError(404, "ResourceNotFoundException", f"imported model {identifier} not found")

    def create_provisioned_model_throughput(
        self, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        _require(body, "modelUnits", "provisionedModelName", "modelId")
        if not isinstance(body["modelUnits"], int) or body["modelUnits"] < 1:
            raise ApiError(400, "ValidationException", "modelUnits must be a positive integer")

        def create() -> str:
            arn = _arn("provisioned-model", _id())
            self.state.provisioned[arn] = {
                "provisionedModelArn": arn,
                "provisionedModelName": body["provisionedModelName"],
                "modelArn": body["modelId"],
                "desiredModelArn": body["modelId"],
                "foundationModelArn": f"arn:aws:bedrock:{REGION}::foundation-model/base",
                "modelUnits": body["modelUnits"],
                "desiredModelUnits": body["modelUnits"],
                "status": "Creating",
                "creationTime": time.time(),
                "lastModifiedTime": time.time(),
                **(
                    {"commitmentDuration": body["commitmentDuration"]}
                    if "commitmentDuration" in body
                    else {}
                ),
            }
            return arn

        return 201, {
            "provisionedModelArn": self._idempotent(body.get("clientRequestToken"), create)
        }

    def _advance_serving(self, item: dict[str, Any], key: str, ready: str) -> None:
        if item["status"] in ("Creating",) and self._finished(f"serving:{key}"):
            name = item.get("provisionedModelName") or item.get("modelDeploymentName")
            failure = self.serving.failures.get(str(name))
            if failure:
                item.update(status="Failed", failureMessage=failure)
            else:
                item.update(status=ready)

    def get_provisioned_model_throughput(self, identifier: str) -> tuple[int, dict[str, Any]]:
        for arn, item in self.state.provisioned.items():
            if identifier in (arn, item["provisionedModelName"]):
                self._advance_serving(item, arn, "InService")
                return 200, item
        raise ApiError(
            404, "ResourceNotFoundException", f"provisioned model {identifier} not found"
        )

    def create_custom_model_deployment(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        _require(body, "modelDeploymentName", "modelArn")
        if body["modelArn"] not in self.state.custom_models:
            raise ApiError(
                404, "ResourceNotFoundException", f"custom model {body['modelArn']} not found"
            )

        def create() -> str:
            arn = _arn("custom-model-deployment", _id())
            self.state.deployments[arn] = {
                "customModelDeploymentArn": arn,
                "modelDeploymentName": body["modelDeploymentName"],
                "modelArn": body["modelArn"],
                "createdAt": time.time(),
                "status": "Creating",
            }
            return arn

        return 202, {
            "customModelDeploymentArn": self._idempotent(body.get("clientRequestToken"), create)
        }

    def get_custom_model_deployment(self, identifier: str) -> tuple[int, dict[str, Any]]:
        for arn, item in self.state.deployments.items():
            if identifier in (arn, item["modelDeploymentName"]):
                self._advance_serving(item, arn, "Active")
                return 200, item
        raise ApiError(404, "ResourceNotFoundException", f"deployment {identifier} not found")

    # Routing ----------------------------------------------------------------------------------

    def route(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]] | None:
        """The local answer, or None to forward the request upstream."""
        segments = [unquote(part) for part in path.strip("/").split("/")]
        self.state.bodies.append((method, path, body))
        try:
            return self._route(method, segments, query, body)
        except NotFound as missing:
            raise ApiError(404, "ResourceNotFoundException", f"{missing} not found") from None

    def _route(
        self, method: str, segments: list[str], query: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]] | None:
        path = "/" + "/".join(segments)
        match (method, segments):
            case ("POST", ["model-import-jobs"]):
                return self.create_model_import_job(body)
            case ("GET", ["model-import-jobs", identifier]):
                return self.get_model_import_job(identifier)
            case ("GET", ["imported-models", identifier]):
                return self.get_imported_model(identifier)
            case ("POST", ["provisioned-model-throughput"]):
                return self.create_provisioned_model_throughput(body)
            case ("GET", ["provisioned-model-throughput", identifier]):
                return self.get_provisioned_model_throughput(identifier)
            case ("GET", ["provisioned-model-throughputs"]):
                return self.list_provisioned_model_throughputs(query)
            case ("PATCH", ["provisioned-model-throughput", identifier]):
                return self.update_provisioned(identifier, body)
            case ("DELETE", ["provisioned-model-throughput", identifier]):
                return self.delete_provisioned(identifier)
            case ("PATCH", ["model-customization", "custom-model-deployments", identifier]):
                return self.update_deployment(identifier, body)
            case ("DELETE", ["model-customization", "custom-model-deployments", identifier]):
                return self.delete_deployment(identifier)
            case ("GET", ["imported-models"]):
                return self.list_imported_models()
            case ("DELETE", ["imported-models", identifier]):
                return self.delete_imported_model(identifier)
            case ("GET", ["model-import-jobs"]):
                return self.list_import_jobs(query)
            case ("POST", ["model-customization-jobs"]):
                return self.create_log_job(body)
            case ("GET", ["model-customization-jobs", identifier]) if self.get_log_job(identifier):
                return self.get_log_job(identifier)
            case ("GET", ["custom-models"]):
                return self.list_custom_models()
            case ("DELETE", ["custom-models", identifier]):
                return self.delete_own_custom_model(identifier)
            case ("POST", ["model-customization", "custom-model-deployments"]):
                return self.create_custom_model_deployment(body)
            case ("GET", ["model-customization", "custom-model-deployments", identifier]):
                return self.get_custom_model_deployment(identifier)
            case ("GET", ["model-customization", "custom-model-deployments"]):
                return self.list_custom_model_deployments(query)
            case ("GET", ["custom-models", identifier]) if identifier in self.state.custom_models:
                return 200, self.state.custom_models[identifier]
            case ("GET", ["model-customization-jobs", identifier]) if self._scripted(identifier):
                return 200, self._next_scripted(identifier)
        if self.upstream is None:
            raise ApiError(
                404, "UnknownOperationException", f"{method} {path} is not implemented by the fake"
            )
        return None

    def _scripted(self, identifier: str) -> bool:
        return any(
            identifier == name or identifier.endswith(f"/{name}")
            for name in self.state.scripted_jobs
        )

    def _next_scripted(self, identifier: str) -> dict[str, Any]:
        name = next(
            n for n in self.state.scripted_jobs if identifier == n or identifier.endswith(f"/{n}")
        )
        responses = self.state.scripted_jobs[name]
        return responses.pop(0) if len(responses) > 1 else responses[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def _reply(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", _id())
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                fake.state.requests.append((self.command, split.path))
                try:
                    if "/bedrock/aws4_request" not in (self.headers.get("Authorization") or ""):
                        raise ApiError(
                            403,
                            "UnrecognizedClientException",
                            "request is not SigV4-signed for bedrock",
                        )
                    if (self.command, split.path) in fake.state.denied:
                        raise ApiError(
                            403,
                            "AccessDeniedException",
                            fake.state.denied[(self.command, split.path)],
                        )
                    query = {k: v[0] for k, v in parse_qs(split.query).items()}
                    body = json.loads(raw) if raw else {}
                    with fake._lock:
                        answer = fake.route(self.command, split.path, query, body)
                except ApiError as error:
                    self._reply(
                        error.status, {"message": error.message}, {"x-amzn-ErrorType": error.code}
                    )
                    return
                if answer is None:
                    path = fake.moto_custom_model_path(_moto_path(split.path))
                    self._forward(path + (f"?{split.query}" if split.query else ""), raw)
                else:
                    self._reply(*answer)

            def _forward(self, target: str, raw: bytes) -> None:
                assert fake.upstream is not None
                upstream = urlsplit(fake.upstream)
                connection = http.client.HTTPConnection(
                    upstream.hostname or "127.0.0.1", upstream.port, timeout=30
                )
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                headers["Content-Length"] = str(len(raw))
                connection.request(self.command, target, body=raw, headers=headers)
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "server",
                        "date",
                    ):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                connection.close()

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        return Handler


def _moto_path(path: str) -> str:
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "model-customization-jobs":
        parts[2] = unquote(parts[2]).rsplit("/", 1)[-1]
    return "/".join(parts)


def _require(body: dict[str, Any], *names: str) -> None:
    missing = [name for name in names if name not in body]
    if missing:
        raise ApiError(
            400, "ValidationException", f"missing required field(s): {', '.join(missing)}"
        )


JOB_ARN_PATTERN = re.compile(r"^arn:aws:bedrock:[a-z0-9-]+:\d{12}:model-import-job/[a-z0-9]{12}$")
