"""Per-request adapter selection: which member of a composition serves a request.

A router maps a request to one probability per member adapter. ``route`` compositions take the
most probable member (ties: the first listed); gated ``parallel`` compositions weight every
member's logits by these probabilities.

    {"keywords": {"rot13": ["^encode:"], "base": ["upper"]}, "default": "base"}
        regular expressions (case-insensitive, searched in the last user message), checked in
        the order written; the first match wins, else ``default``. A rule gives all its
        probability to one member, so keywords cannot gate a parallel composition.
    {"classifier": "ngrams", "examples": [{"text": "Encode: abc", "adapter": "rot13"}, ...]}
        multinomial logistic regression over character 1-3-grams of the last user message,
        trained at load from these labelled examples (``examples_file``: a JSONL file of them).
    {"classifier": "hidden", "examples": [...]}
        the same regression over the base model's mean last hidden state of the prompt. Costs
        one base-model forward over the prompt per request, apart from the batch (see
        ``serving.lanes``); the n-gram classifier costs no model pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from adapters_local.compose.spec import CompositionError

Features = Callable[[str], Any]  # text -> 1-D numpy vector (the hidden-state classifier's)


class Router(Protocol):
    needs_model: bool  # True: probabilities need the base model's hidden state

    def probabilities(self, text: str) -> list[float]:
        """One probability per member, in the composition's order."""
        ...


@dataclass(frozen=True)
class Example:
    text: str
    adapter: str


def choose(router: Router, text: str) -> int:
    """Index of the member that serves ``text``."""
    probabilities = router.probabilities(text)
    return max(range(len(probabilities)), key=lambda i: (probabilities[i], -i))


class KeywordRouter:
    needs_model = False

    def __init__(self, members: Sequence[str], rules: dict[str, Any], default: str | None) -> None:
        self._members = list(members)
        self._rules: list[tuple[re.Pattern[str], int]] = []
        for adapter, patterns in rules.items():
            index = _member(self._members, adapter)
            for pattern in [patterns] if isinstance(patterns, str) else list(patterns):
                try:
                    self._rules.append((re.compile(str(pattern), re.IGNORECASE), index))
                except re.error as exc:
                    raise CompositionError(f"keyword rule {pattern!r}: {exc}") from None
        self._default = _member(self._members, default) if default is not None else None

    def probabilities(self, text: str) -> list[float]:
        index = next((i for p, i in self._rules if p.search(text)), self._default)
        if index is None:
            raise CompositionError("no keyword rule matches the request and there is no default")
        return [1.0 if i == index else 0.0 for i in range(len(self._members))]


def ngrams(text: str, sizes: tuple[int, ...] = (1, 2, 3)) -> dict[str, int]:
    padded = f" {text.lower()} "
    counts: dict[str, int] = {}
    for n in sizes:
        for i in range(len(padded) - n + 1):
            gram = padded[i : i + n]
            counts[gram] = counts.get(gram, 0) + 1
    return counts


class NgramFeatures:
    """Character n-gram counts, L2-normalised, over the vocabulary of the training examples."""

    def __init__(self, texts: Sequence[str]) -> None:
        vocabulary = sorted({g for t in texts for g in ngrams(t)})
        self._index = {g: i for i, g in enumerate(vocabulary)}

    def __call__(self, text: str) -> Any:
        vector = np.zeros(len(self._index) + 1)
        for gram, count in ngrams(text).items():
            i = self._index.get(gram)
            if i is not None:
                vector[i] = count
        norm = np.linalg.norm(vector)
        vector = vector / norm if norm else vector
        vector[-1] = 1.0  # the bias term
        return vector


class ClassifierRouter:
    """Softmax regression, trained once by full-batch gradient descent (a few ms)."""

    def __init__(
        self,
        members: Sequence[str],
        examples: Sequence[Example],
        features: Features,
        *,
        needs_model: bool,
        l2: float = 1e-3,
        steps: int = 500,
        rate: float = 1.0,
    ) -> None:
        self.needs_model = needs_model
        self._features = features
        labels = [_member(list(members), e.adapter) for e in examples]
        x = np.stack([features(e.text) for e in examples])
        # Standardise (the hidden state's scale is arbitrary); the last column stays the bias.
        self._mean = x.mean(axis=0)
        self._scale = x.std(axis=0) + 1e-6
        self._mean[-1], self._scale[-1] = 0.0, 1.0
        x = (x - self._mean) / self._scale
        y = np.zeros((len(examples), len(members)))
        y[np.arange(len(examples)), labels] = 1.0
        self._w = np.zeros((x.shape[1], len(members)))
        for _ in range(steps):
            p = _softmax(x @ self._w)
            self._w -= rate * (x.T @ (p - y) / len(examples) + l2 * self._w)

    def probabilities(self, text: str) -> list[float]:
        x = (self._features(text) - self._mean) / self._scale
        return [float(p) for p in _softmax(x[None, :] @ self._w)[0]]


def build_router(
    spec: dict[str, Any], members: Sequence[str], hidden: Callable[[], Features] | None = None
) -> Router:
    """``hidden`` makes the base model's mean-hidden-state feature function (when asked for)."""
    if "keywords" in spec:
        _only(spec, {"keywords", "default"})
        rules = spec["keywords"]
        if not isinstance(rules, dict) or not rules:
            raise CompositionError("keywords must map adapter names to patterns")
        return KeywordRouter(members, rules, spec.get("default"))
    kind = spec.get("classifier")
    if kind not in ("ngrams", "hidden"):
        raise CompositionError("a router needs keywords or classifier: ngrams | hidden")
    _only(spec, {"classifier", "examples", "examples_file"})
    examples = _examples(spec)
    missing = set(members) - {e.adapter for e in examples}
    if missing:
        raise CompositionError(f"no labelled example for {', '.join(sorted(missing))}")
    if kind == "ngrams":
        features: Features = NgramFeatures([e.text for e in examples])
    else:
        if hidden is None:
            raise CompositionError("the hidden-state classifier needs the base model")
        features = hidden()
    return ClassifierRouter(members, examples, features, needs_model=kind == "hidden")


def check_router(spec: dict[str, Any], members: Sequence[str]) -> None:
    """Config-time check without a model (the hidden-state classifier is checked at load)."""
    if spec.get("classifier") == "hidden":
        _only(spec, {"classifier", "examples", "examples_file"})
        _examples(spec)
        return
    build_router(spec, members)


def _examples(spec: dict[str, Any]) -> list[Example]:
    raw: list[Any] = list(spec.get("examples") or [])
    if "examples_file" in spec:
        path = Path(str(spec["examples_file"])).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CompositionError(f"examples_file {path}: {exc.strerror}") from None
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    raw.append(json.loads(line))
                except json.JSONDecodeError:
                    raise CompositionError(f"examples_file {path}:{number}: not JSON") from None
    examples = []
    for item in raw:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("text"), str)
            or not isinstance(item.get("adapter"), str)
        ):
            raise CompositionError('each example is {"text": ..., "adapter": ...}')
        examples.append(Example(item["text"], item["adapter"]))
    if len(examples) < 2:
        raise CompositionError("a classifier router needs labelled examples (at least two)")
    return examples


def _member(members: list[str], name: Any) -> int:
    try:
        return members.index(str(name))
    except ValueError:
        raise CompositionError(
            f"router names {name!r}, which is not a member ({', '.join(members)})"
        ) from None


def _only(spec: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(spec) - allowed
    if unknown:
        raise CompositionError(f"unknown router keys: {', '.join(sorted(unknown))}")


def _softmax(z: Any) -> Any:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


__all__ = ["ClassifierRouter", "Example", "KeywordRouter", "Router", "build_router", "choose"]
