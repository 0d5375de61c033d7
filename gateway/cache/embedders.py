"""Text → unit vector for the semantic cache, behind one small Protocol.

``LocalEmbedder`` ships in the package and needs nothing at run time (no weights, no network).
It is a *lexical* embedder, not a learned one: signed feature hashing of

- content words (lower-cased, NFKC, contractions expanded, a light suffix stemmer, function
  words and politeness fillers dropped; negations and question words kept, since "why" and
  "how", or "is" and "is not", ask different things),
- adjacent content-word pairs (word order: "dog bites man" is not "man bites dog"),
- character 3-grams of each content word (plurals, typos, inflections the stemmer misses),
- numbers and words with digits, weighted up (a different amount is a different question),

into 512 dimensions, L2-normalised. What it cannot do: see synonyms ("car" / "automobile"),
paraphrases that share no words, or meaning beyond the words themselves; and it sees near
misses that differ in one content word ("capital of France" / "of Spain") as fairly close.
``tests/cache/data/paraphrase_pairs.jsonl`` measures both at the route's threshold.

``BedrockEmbedder`` calls a Bedrock embedding model (Titan Text Embeddings v2 by default) with
InvokeModel through the gateway's own Bedrock provider (same credentials, regions, pool).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Protocol

import numpy as np
import orjson

from gateway.errors import UpstreamError

DIM = 512
TITAN_V2 = "amazon.titan-embed-text-v2:0"


class Embedder(Protocol):
    name: str  # part of the index scope: vectors of two embedders never meet

    async def embed(self, text: str) -> np.ndarray:
        """A float32 unit vector."""
        ...


_CONTRACTIONS = (
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'s\b"), " is"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"'m\b"), " am"),
)
_WORD = re.compile(r"[a-z0-9]+")
# Function words and fillers that rarely change what is asked. Negations and question words are
# deliberately absent.
_STOP_WORDS = """a an the of to in on at for from by with about as into onto over under and or
    but if then so than that this these those it its is are was were be been being am do does did
    doing have has had having i me my mine we us our you your yours he him his she her they
    them their there here can could would should will shall may might must please kindly
    just really actually tell know let want like need help hi hello hey thanks thank some any
    get give show also very quite bit little one s"""
_STOP = frozenset(_STOP_WORDS.split())
_SUFFIXES = ("ingly", "edly", "ing", "ied", "ies", "ed", "es", "ly", "s")


def _stem(word: str) -> str:
    if word.isdigit() or len(word) <= 3:
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            if suffix == "es" and not stem.endswith(("s", "x", "z", "ch", "sh")):
                stem = word[:-1]  # invoices → invoice, but boxes → box
            if suffix in ("ied", "ies"):
                stem += "y"
            if len(stem) > 3 and stem[-1] == stem[-2] and stem[-1] not in "ls":
                stem = stem[:-1]  # running → run, stopped → stop
            return stem
    return word


def content_words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return [_stem(w) for w in _WORD.findall(text) if w not in _STOP]


def _bucket(feature: str) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % DIM, (1.0 if (value >> 63) else -1.0)


def _features(words: list[str]) -> dict[str, float]:
    features: dict[str, float] = {}

    def add(name: str, weight: float) -> None:
        features[name] = features.get(name, 0.0) + weight

    for word in words:
        add("w:" + word, 2.0 if any(c.isdigit() for c in word) else 1.0)
        padded = f"<{word}>"
        grams = [padded[i : i + 3] for i in range(len(padded) - 2)]
        for gram in grams:
            add("c:" + gram, 0.6 / len(grams) ** 0.5)
    for first, second in itertools.pairwise(words):
        add(f"b:{first} {second}", 0.5)
    return features


def local_vector(text: str) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    for feature, weight in _features(content_words(text)).items():
        index, sign = _bucket(feature)
        vector[index] += sign * weight
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


class LocalEmbedder:
    name = "local-hash-v1"

    async def embed(self, text: str) -> np.ndarray:
        return local_vector(text)


# (model id, JSON body) → the response body; the Bedrock provider's ``invoke_model``.
Invoke = Callable[[str, bytes], Awaitable[bytes]]


class BedrockEmbedder:
    """Titan Text Embeddings v2's request and response shape (``inputText`` →
    ``embedding``), normalised by the model and again here."""

    def __init__(self, invoke: Invoke, model_id: str = TITAN_V2, dimensions: int = 512) -> None:
        self.name = f"bedrock:{model_id}:{dimensions}"
        self._invoke = invoke
        self._model = model_id
        self._dimensions = dimensions

    async def embed(self, text: str) -> np.ndarray:
        body = orjson.dumps({"inputText": text, "dimensions": self._dimensions, "normalize": True})
        raw = await self._invoke(self._model, body)
        try:
            values = orjson.loads(raw)["embedding"]
            vector = np.asarray(values, dtype=np.float32)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(f"{self._model} answered without an embedding") from exc
        if vector.ndim != 1 or vector.size == 0:
            raise UpstreamError(f"{self._model} answered without an embedding")
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector
