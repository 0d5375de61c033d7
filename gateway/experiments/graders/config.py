"""The ``graders:`` section of strata.yaml: named graders, and which aliases' live traffic each
scores, as a fraction of calls.

    graders:
      rot13-exact:
        kind: exact                      # exact | contains | regex | json_schema | judge
        expected: ./eval.jsonl           # expected answers, keyed by prompt (last user turn)
        sample: {support: 0.1}           # alias → fraction of its calls graded
      helpful:
        kind: judge
        alias: judge                     # the judge is called through this gateway alias
        rubric: "Is the answer polite and correct?"
        mode: pairwise                   # single (a 0-10 score) | pairwise (vs a reference)
        baseline: haiku                  # pairwise without expected answers: vs this alias
        sample: {support: 0.02}
      schema: {kind: json_schema, schema: {type: object, required: [name]}, sample: {extract: 1}}
      mine: {kind: "python:my_graders:score", sample: {support: 0.5}}
      preferred: {kind: "reward:rm/", sample: {support: 0.2}}   # a `strata train reward` model

``strata ab status ALIAS --metric grader:NAME`` reads a grader's outcomes.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.experiments.graders.base import Grader
from gateway.experiments.graders.judge import DEFAULT_RUBRIC, Complete, JudgeGrader
from gateway.experiments.graders.python import PythonGrader, load_function
from gateway.experiments.graders.schema import JsonSchemaGrader
from gateway.experiments.graders.text import TextGrader

Kind = Literal["exact", "contains", "regex", "json_schema", "python", "judge", "reward"]


class GraderSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    expected: Path | None = None
    pattern: str | None = None
    ignore_case: bool = False
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    schema_file: Path | None = None
    function: str | None = None
    folder: Path | None = None  # kind reward: what `strata train reward --out` wrote
    alias: str | None = None
    rubric: str = DEFAULT_RUBRIC
    mode: Literal["single", "pairwise"] = "single"
    baseline: str | None = None
    sample: dict[str, float] = Field(default_factory=dict)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _python_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict) and str(value.get("kind", "")).startswith("python:"):
            value = dict(value)
            value["function"] = str(value["kind"]).removeprefix("python:")
            value["kind"] = "python"
        if isinstance(value, dict) and str(value.get("kind", "")).startswith("reward:"):
            value = dict(value)
            value["folder"] = str(value["kind"]).removeprefix("reward:")
            value["kind"] = "reward"
        return value

    @field_validator("sample")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        for alias, fraction in value.items():
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"{alias}: a fraction from 0 to 1")
        return value

    @model_validator(mode="after")
    def _needs(self) -> GraderSection:
        if self.kind == "python" and not self.function:
            raise ValueError("kind python needs function: module:function")
        if self.kind == "json_schema" and (self.json_schema is None) == (self.schema_file is None):
            raise ValueError("kind json_schema needs exactly one of schema or schema_file")
        if self.kind == "reward" and not self.folder:
            raise ValueError("kind reward needs folder: a strata train reward output")
        if self.kind == "judge" and not self.alias:
            raise ValueError("kind judge needs alias: the gateway alias that judges")
        return self


def build_grader(name: str, section: GraderSection, complete: Complete | None) -> Grader:
    """The grader a section describes; ValueError naming the field when it cannot be built."""
    from gateway.experiments.dataset import expected_answers

    expected = expected_answers(section.expected) if section.expected is not None else None
    if section.kind in ("exact", "contains", "regex"):
        return TextGrader(
            name,
            section.kind,
            expected,
            pattern=section.pattern,
            ignore_case=section.ignore_case,
        )
    if section.kind == "json_schema":
        schema = section.json_schema
        if section.schema_file is not None:
            try:
                schema = orjson.loads(section.schema_file.read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise ValueError(f"schema_file: cannot read {section.schema_file}: {exc}") from None
        assert schema is not None
        return JsonSchemaGrader(name, schema)
    if section.kind == "python":
        assert section.function is not None
        return PythonGrader(name, load_function(section.function))
    if section.kind == "reward":
        assert section.folder is not None
        return _reward_grader(name, section.folder)
    if complete is None:
        raise ValueError("a judge needs a gateway to call")
    assert section.alias is not None
    references = TextGrader(name, "exact", expected) if expected is not None else None
    return JudgeGrader(
        name,
        complete,
        alias=section.alias,
        rubric=section.rubric,
        mode=section.mode,
        references=references,
        baseline=section.baseline,
    )


def _reward_grader(name: str, folder: Path) -> Grader:
    # Imported here: torch and peft load only when a reward grader is configured.
    from adapters_local.models.loading import ModelError
    from adapters_local.preference import scorer

    try:
        scorer.check_folder(folder)
    except ModelError as exc:
        raise ValueError(f"folder: {exc}") from None
    return PythonGrader(name, functools.partial(scorer.grade_with, str(folder)))
