"""``json_schema``: 1 when the answer is JSON valid against the schema, else 0 (the detail says
whether it was not JSON or which keyword failed, never the answer's text)."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson

from gateway.experiments.graders.base import Grade, Sample


class JsonSchemaGrader:
    def __init__(self, name: str, schema: dict[str, Any]) -> None:
        self.name = name
        try:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"schema: not a valid JSON Schema: {exc.message}") from None
        self._validator = cls(schema)

    async def grade(self, sample: Sample) -> Grade:
        text = _strip_fence(sample.answer)
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return Grade(0.0, "not JSON")
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(value))
        if error is None:
            return Grade(1.0, "valid")
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return Grade(0.0, f"{error.validator} failed at {where}")


def _strip_fence(text: str) -> str:
    """Models often wrap JSON in a Markdown code fence; the JSON inside is what is graded."""
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and body.count("\n") >= 1:
        body = body.split("\n", 1)[1].rsplit("```", 1)[0]
    return body.strip()
