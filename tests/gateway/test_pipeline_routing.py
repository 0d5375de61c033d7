"""Routing through the pipeline: experiments and their admin route, response headers on both
surfaces, per-target regions, and variants resolved per attempt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from customize.variants.store import Variant, VariantStore
from gateway.errors import RateLimited
from gateway.pipeline.call import Call
from tests.fakes.bedrock_faults import by_model
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Reply
from tests.gateway.harness import TEST_KEY
from tests.gateway.pipeline_harness import AUTH, Settled, converse_body, gateway

ALIASES = """\
  support:
    experiment:
      sticky_by: user
      variants:
        control: {target: "bedrock:base-model", weight: 70}
        tuned: {targets: ["variant:support-v2", "bedrock:base-model"], weight: 30}
  chain: ["variant:nope", "bedrock:base-model"]
  west: "bedrock@us-west-2:base-model"
  arn: "bedrock:arn:aws:bedrock:eu-west-1:123456789012:custom-model/x/abc"
"""
ARN = "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0/tuned1"


@pytest.fixture
def url(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None, settled: Settled
) -> Iterator[str]:
    store = VariantStore(tmp_path / "home" / "variants.sqlite")
    store.add(Variant(name="support-v2", target=f"bedrock:{ARN}", method="fine_tuning"))
    with gateway(tmp_path, wire, ALIASES, settled) as url:
        yield url


def _variant(client: httpx.Client, user: str) -> str:
    r = client.post(
        "/model/support/converse", json=converse_body("hi"), headers={"x-strata-user": user}
    )
    assert r.status_code == 200, r.text
    return r.headers["x-strata-variant"]


def test_experiment_is_sticky_and_reweighting_moves_only_control_users(
    url: str, wire: BedrockWireServer
) -> None:
    users = [f"u{i}" for i in range(120)]
    with httpx.Client(base_url=url, headers=AUTH) as client:
        before = {u: _variant(client, u) for u in users}
        assert {u: _variant(client, u) for u in users[:30]} == {u: before[u] for u in users[:30]}
        assert set(before.values()) == {"control", "tuned"}
        # The tuned arm reached the variant's model; control the base model.
        assert {c.model_id for c in wire.calls} == {ARN, "base-model"}

        r = client.put("/admin/experiments/support", json={"weights": {"control": 50, "tuned": 50}})
        assert r.status_code == 200, r.text
        assert r.json()["weights"] == {"control": 50.0, "tuned": 50.0}
        after = {u: _variant(client, u) for u in users}
    moved = [u for u in users if before[u] != after[u]]
    assert moved  # ~20 % of 120 must move
    assert all(before[u] == "control" and after[u] == "tuned" for u in moved)


def test_openai_user_field_is_the_sticky_unit(url: str) -> None:
    with httpx.Client(base_url=url, headers=AUTH) as client:
        seen = set()
        for i in range(40):
            body = {"model": "support", "messages": [{"role": "user", "content": "x"}]}
            by_field = client.post("/v1/chat/completions", json={**body, "user": f"u{i}"})
            assert by_field.status_code == 200, by_field.text
            seen.add(by_field.headers["x-strata-variant"])
            assert by_field.headers["x-strata-variant"] == _variant(client, f"u{i}")
    assert seen == {"control", "tuned"}


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"weights": {"control": 50, "tuned": "lots"}}, 400, "weights.tuned"),
        ({"weights": {"control": 50, "ghost": 50}}, 400, "weights.ghost"),
        ({"weights": {"control": 0, "tuned": 0}}, 400, "weights"),
        ({"weight": {"control": 1}}, 400, "weights"),
    ],
)
def test_bad_weights_are_refused_naming_the_field(
    url: str, body: dict[str, Any], status: int, param: str
) -> None:
    r = httpx.put(f"{url}/admin/experiments/support", json=body, headers=AUTH)
    assert r.status_code == status
    assert r.json()["error"]["param"] == param
    shown = httpx.get(f"{url}/admin/experiments/support", headers=AUTH).json()
    assert shown["weights"] == {"control": 70.0, "tuned": 30.0}


def test_admin_route_needs_a_key_and_an_experiment(url: str) -> None:
    weights = {"weights": {"control": 1, "tuned": 1}}
    assert httpx.put(f"{url}/admin/experiments/support", json=weights).status_code == 401
    r = httpx.put(
        f"{url}/admin/experiments/support",
        json=weights,
        headers={"Authorization": "Bearer sk-strata-wrong"},
    )
    assert r.status_code == 401
    r = httpx.put(f"{url}/admin/experiments/chain", json=weights, headers=AUTH)
    assert r.status_code == 404
    assert "support" in r.json()["error"]["message"]


def test_unknown_variant_first_in_a_chain_falls_back(url: str, wire: BedrockWireServer) -> None:
    # Resolved per attempt: before issue 8 the whole alias answered 404 here.
    r = httpx.post(f"{url}/model/chain/converse", json=converse_body("hi"), headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.headers["x-strata-target"] == "bedrock:base-model"
    assert r.headers["x-strata-attempts"] == "1"
    assert [c.model_id for c in wire.calls] == ["base-model"]


def _region(call: FakeRequest) -> str:
    # The SigV4 credential scope: <key>/<date>/<region>/bedrock/aws4_request.
    return call.headers["authorization"].split("Credential=")[1].split("/")[2]


@pytest.mark.parametrize("transport", ["direct", "aiobotocore"])
def test_targets_go_to_their_region(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None, transport: str
) -> None:
    with (
        gateway(tmp_path, wire, ALIASES, bedrock_transport=transport) as url,
        httpx.Client(base_url=url, headers=AUTH) as client,
    ):
        for model in ["west", "arn", "default", "bedrock@ap-south-1:base-model"]:
            r = client.post(f"/model/{model}/converse", json=converse_body("hi"))
            assert r.status_code == 200, r.text
    assert [_region(c) for c in wire.calls] == ["us-west-2", "eu-west-1", "us-east-1", "ap-south-1"]
    assert wire.calls[1].model_id.startswith("arn:aws:bedrock:eu-west-1:")


def test_headers_on_answers_and_errors_on_both_surfaces(
    url: str, wire: BedrockWireServer, settled: Settled, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=url, headers=AUTH) as client:
        ok = client.post("/model/default/converse", json=converse_body("hi"))
        chat = client.post(
            "/v1/chat/completions",
            json={"model": "default", "messages": [{"role": "user", "content": "hi"}]},
        )
        missing = client.post("/model/nosuch/converse", json=converse_body("hi"))
        unauthorised = httpx.post(f"{url}/v1/chat/completions", json={})
    for r in (ok, chat):
        assert r.status_code == 200
        assert len(r.headers["x-strata-request-id"]) == 36
        assert r.headers["x-strata-target"] == "bedrock:default-model"
        assert r.headers["x-strata-attempts"] == "1"
        assert float(r.headers["x-strata-overhead-ms"]) >= 0
        assert "x-strata-variant" not in r.headers
    assert ok.headers["x-amzn-requestid"] == ok.headers["x-strata-request-id"]
    assert "x-amzn-requestid" not in chat.headers
    assert missing.status_code == 404 and missing.headers["x-strata-request-id"]
    assert unauthorised.status_code == 401 and unauthorised.headers["x-strata-request-id"]
    # Settle saw the same ids the client got.
    ids = {call.request_id for call, _ in settled.wait(3)}
    assert {ok.headers["x-strata-request-id"], chat.headers["x-strata-request-id"]} <= ids

    # boto3 reads the id into ResponseMetadata, on answers and on errors alike.
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", TEST_KEY)
    runtime = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    messages: Any = [{"role": "user", "content": [{"text": "hi"}]}]
    out = runtime.converse(modelId="default", messages=messages)
    assert len(out["ResponseMetadata"]["RequestId"]) == 36
    wire.handler = by_model({"default-model": lambda r: Reply(error="ValidationException")})
    with pytest.raises(ClientError) as info:
        runtime.converse(modelId="default", messages=messages)
    assert len(info.value.response["ResponseMetadata"]["RequestId"]) == 36


def test_bad_timeout_header_is_refused(url: str) -> None:
    r = httpx.post(
        f"{url}/model/default/converse",
        json=converse_body("hi"),
        headers={**AUTH, "x-strata-timeout-ms": "soon"},
    )
    assert r.status_code == 400
    assert "x-strata-timeout-ms" in r.json()["message"]


class RefuseBlocked:
    """An admit stage as a later issue would write one: it sees the routed plan and refuses
    before any upstream attempt."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, tuple[str, ...]]] = []

    async def admit(self, call: Call) -> None:
        assert call.plan is not None
        self.seen.append((call.plan.alias, tuple(str(t) for t in call.plan.targets)))
        if call.hints.user == "blocked":
            raise RateLimited("this user is over their limit", retry_after=7)


def test_an_admit_stage_refuses_before_any_upstream_call(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None, settled: Settled
) -> None:
    stage = RefuseBlocked()
    with gateway(tmp_path, wire, "  a: [bedrock:m, bedrock:n]\n", settled, admit=[stage]) as url:
        refused = httpx.post(
            f"{url}/model/a/converse",
            json=converse_body("hi"),
            headers={**AUTH, "x-strata-user": "blocked"},
        )
        served = httpx.post(f"{url}/model/a/converse", json=converse_body("hi"), headers=AUTH)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "7"
    assert refused.headers["x-strata-attempts"] == "0"
    assert served.status_code == 200
    assert wire.counts == {"m": 1}  # only the admitted call went upstream
    assert stage.seen == [("a", ("bedrock:m", "bedrock:n"))] * 2
    outcomes = [outcome for _, outcome in settled.wait(2)]
    assert [o.error_class for o in outcomes] == ["throttled", None]
    assert outcomes[0].attempts == 0
