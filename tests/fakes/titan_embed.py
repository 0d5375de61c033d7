"""InvokeModel for Titan Text Embeddings v2 (``amazon.titan-embed-text-v2:0``) in the Bedrock
wire fake: the request body the model takes (``inputText``, ``dimensions``, ``normalize``) is
checked, and the answer has the model's shape (``embedding``, ``embeddingsByType``,
``inputTextTokenCount``).

The vectors are the fake's own, independent of the gateway's local embedder: a bag of
lower-cased words hashed into ``dimensions`` buckets. Texts with the same words get the same
vector; texts with different words get different ones, which is all a test of the wiring needs.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

TITAN_V2 = "amazon.titan-embed-text-v2:0"
DIMENSIONS = (256, 512, 1024)
_WORD = re.compile(r"[a-z0-9]+")


def validate(model_id: str, body: Any) -> str | None:
    if model_id != TITAN_V2:
        return f"The fake serves InvokeModel for {TITAN_V2} only, not {model_id}"
    if not isinstance(body, dict):
        return "Malformed input request, please reformat your input and try again."
    unknown = set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"}
    if unknown:
        return f"Malformed input request: extraneous key [{sorted(unknown)[0]}] is not permitted"
    text = body.get("inputText")
    if not isinstance(text, str) or not text:
        return "Malformed input request: required key [inputText] not found"
    if body.get("dimensions", 1024) not in DIMENSIONS:
        return "Malformed input request: dimensions must be one of 256, 512, 1024"
    if not isinstance(body.get("normalize", True), bool):
        return "Malformed input request: normalize must be a boolean"
    return None


def embed(body: dict[str, Any]) -> dict[str, Any]:
    size = int(body.get("dimensions", 1024))
    words = _WORD.findall(body["inputText"].lower())
    vector = [0.0] * size
    for word in words:
        bucket = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little") % size
        vector[bucket] += 1.0
    if body.get("normalize", True):
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        vector = [v / norm for v in vector]
    return {
        "embedding": vector,
        "embeddingsByType": {"float": vector},
        "inputTextTokenCount": len(words),
    }
