"""Acceptance 7's measurement: the local embedder at the default threshold on the labelled set
``tests/cache/data/paraphrase_pairs.jsonl`` (40 paraphrase pairs, 25 near misses that share most
words but ask something else, 15 unrelated pairs). Each pair goes through the real index: the
first prompt is stored, the second looked up. ``pytest -s`` prints the figures.

The bounds are what the note reports, with a little room; they fail if the embedder gets
worse. Ten of the paraphrases share almost no words with their pair (synonyms, rephrasing): a
lexical embedder is not expected to find those, and the hit rate counts them anyway.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gateway.cache.embedders import LocalEmbedder
from gateway.cache.vectors import MemoryVectors
from gateway.pipeline.policy import SemanticCachePolicy

PAIRS = Path(__file__).parent / "data" / "paraphrase_pairs.jsonl"


async def _rates(threshold: float) -> dict[str, tuple[int, int]]:
    embedder, index = LocalEmbedder(), MemoryVectors()
    counts: dict[str, tuple[int, int]] = {}
    rows = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    for n, row in enumerate(rows):
        scope = f"pair{n}"
        await index.add(scope, "a", await embedder.embed(row["a"]), 10, 60)
        found = await index.search(scope, await embedder.embed(row["b"]))
        hit = found is not None and found[1] >= threshold
        hits, total = counts.get(row["label"], (0, 0))
        counts[row["label"]] = (hits + hit, total + 1)
    return counts


def test_hit_rate_on_paraphrases_and_false_hits_on_the_rest() -> None:
    threshold = SemanticCachePolicy.threshold
    counts = asyncio.run(_rates(threshold))
    para_hits, para = counts["paraphrase"]
    near_hits, near = counts["near-miss"]
    unrelated_hits, unrelated = counts["unrelated"]
    assert (para, near, unrelated) == (40, 25, 15)
    false_rate = (near_hits + unrelated_hits) / (near + unrelated)
    print(
        f"\nthreshold {threshold}: paraphrase hit rate {para_hits}/{para} "
        f"= {para_hits / para:.3f}; "
        f"false hits {near_hits + unrelated_hits}/{near + unrelated} = {false_rate:.3f} "
        f"(near misses {near_hits}/{near}, unrelated {unrelated_hits}/{unrelated})"
    )
    assert para_hits / para >= 0.65
    assert false_rate <= 0.025  # at most one of the 40
    assert unrelated_hits == 0
