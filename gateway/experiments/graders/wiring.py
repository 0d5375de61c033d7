"""What the lifespan calls: the configured graders built into a ``GraderService``, with the
judge's calls going through the gateway's own pipeline (so admission, routing, retries and the
ledger treat them as calls of their own, billed to the graded call's tenant)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from gateway.accounting.store import Database
from gateway.auth import Principal
from gateway.canonical import ContentBlock, ConverseRequest, InferenceConfig, Message, SystemBlock
from gateway.errors import ConfigError
from gateway.experiments.graders.base import Chat, Sample
from gateway.experiments.graders.config import GraderSection, build_grader
from gateway.experiments.graders.service import JUDGE, Configured, GraderService
from gateway.pipeline.call import Call, new_request_id
from gateway.pipeline.pipeline import Pipeline

JUDGE_MAX_TOKENS = 16  # a score or a verdict


def request_of(chat: Chat, max_tokens: int | None = None) -> ConverseRequest:
    system = [SystemBlock(text=m["content"]) for m in chat if m["role"] == "system"]
    messages = [
        Message(role=m["role"], content=[ContentBlock(text=m["content"])])  # type: ignore[arg-type]
        for m in chat
        if m["role"] != "system"
    ]
    config = InferenceConfig(temperature=0.0, maxTokens=max_tokens) if max_tokens else None
    return ConverseRequest(messages=messages, system=system or None, inferenceConfig=config)


class PipelineComplete:
    """The judge's ``Complete`` inside the gateway: one call through the pipeline."""

    def __init__(self, pipeline: Callable[[], Pipeline]) -> None:
        self._pipeline = pipeline

    async def __call__(self, alias: str, chat: Chat, *, sample: Sample) -> str:
        judging = any(m["role"] == "system" for m in chat)  # the judge's prompts have one
        call = Call(
            request_id=new_request_id(),
            principal=Principal(tenant=sample.tenant or "default", key_id="grader"),
            surface="openai",
            model=alias,
            request=request_of(chat, JUDGE_MAX_TOKENS if judging else None),
            context={JUDGE: sample.request_id},
        )
        response = await self._pipeline().converse(call)
        return response.text()


def open_graders(
    sections: Mapping[str, GraderSection],
    aliases: Collection[str],
    db: Database | None,
    pipeline: Callable[[], Pipeline],
) -> GraderService:
    """The service (with no graders it still notes forced-arm calls for the sample-ratio
    check); ConfigError naming the grader and field."""
    complete = PipelineComplete(pipeline)
    built: dict[str, Configured] = {}
    for name, section in sections.items():
        named = [("sample", a) for a in section.sample]
        for field, alias in (("alias", section.alias), ("baseline", section.baseline)):
            if alias:
                named.append((field, alias))
        for field, alias in named:
            if alias not in aliases:
                raise ConfigError(f"graders.{name}.{field}: no alias {alias!r}")
        try:
            grader = build_grader(name, section, complete)
        except ValueError as exc:
            raise ConfigError(f"graders.{name}: {exc}") from None
        built[name] = Configured(grader, section.sample, section.timeout_s)
    return GraderService(built, db)
