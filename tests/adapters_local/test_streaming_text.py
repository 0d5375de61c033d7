"""Incremental decoding and stop strings, with real tokenizers built in memory."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from adapters_local.models.char_tokenizer import save_tokenizer_files
from adapters_local.serving.streaming_text import IncrementalDecoder, StopMatcher


def _byte_level_tokenizer() -> Any:
    """A byte-level BPE (GPT-2 style) trained on a few lines: multi-byte characters span tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=1
    )
    tok.train_from_iterator(
        ["hello world, héllo wörld", "naïve café", "the quick brown fox"], trainer
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok)  # type: ignore[no-untyped-call]


def _stream(tokenizer: Any, text: str) -> list[str]:
    decoder = IncrementalDecoder(tokenizer)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = [decoder.push(i) for i in ids]
    pieces.append(decoder.flush())
    return pieces


@pytest.mark.parametrize("text", ["héllo wörld 🙂 naïve", "plain ascii", "日本語とemoji 🚀🚀"])
def test_byte_level_stream_reassembles_text_and_never_emits_broken_characters(text: str) -> None:
    tokenizer = _byte_level_tokenizer()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split())  # several tokens, some inside one character
    pieces = _stream(tokenizer, text)
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


def test_char_tokenizer_stream_skips_special_tokens() -> None:
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as folder:
        save_tokenizer_files(Path(folder))
        tokenizer = AutoTokenizer.from_pretrained(folder)
    pieces = _stream(tokenizer, "ab c<|end|>")
    assert pieces[:4] == ["a", "b", " ", "c"]
    assert "".join(pieces) == "ab c"


def test_stop_matcher_withholds_partial_match_and_cuts_at_stop() -> None:
    matcher = StopMatcher(["STOP"])
    out = [matcher.feed(t) for t in ["ab", "cS", "TO", "Pxyz"]]
    assert out == ["ab", "c", "", ""]
    assert matcher.stopped
    assert matcher.feed("more") == ""


def test_stop_matcher_releases_false_alarm() -> None:
    matcher = StopMatcher(["</s>", "##"])
    assert matcher.feed("a<") == "a"
    assert matcher.feed("/x") == "</x"
    assert matcher.feed("#") == ""
    assert matcher.flush() == "#"
    assert not matcher.stopped


def test_stop_matcher_picks_earliest_of_several_stops() -> None:
    matcher = StopMatcher(["cd", "b"])
    assert matcher.feed("abcd") == "a"
