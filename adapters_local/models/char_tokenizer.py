"""A character-level tokenizer built in memory with ``tokenizers`` (no download).

It is saved in the plain ``tokenizer.json`` + ``tokenizer_config.json`` layout that transformers
4.x and 5.x both read: the config names ``PreTrainedTokenizerFast`` (a class 4.x knows) and carries
the chat template inline as well as in ``chat_template.jinja``.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

PAD, UNK = "<pad>", "<unk>"
SYSTEM, USER, ASSISTANT, END = "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"
SPECIAL_TOKENS = (PAD, UNK, SYSTEM, USER, ASSISTANT, END)

# Roles map onto their marker tokens; each turn ends with <|end|>, which is also the EOS token,
# so the model learns to stop by emitting it.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)


def vocabulary() -> dict[str, int]:
    chars = [c for c in string.printable if c not in "\r\x0b\x0c"]
    tokens = [*SPECIAL_TOKENS, *chars]
    return {token: index for index, token in enumerate(tokens)}


def build_tokenizer() -> Any:
    """A ``tokenizers.Tokenizer``: BPE without merges is exactly one token per character."""
    from tokenizers import AddedToken, Tokenizer, decoders, models

    tokenizer = Tokenizer(models.BPE(vocab=vocabulary(), merges=[], unk_token=UNK))
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
    )
    tokenizer.decoder = decoders.Fuse()
    return tokenizer


def tokenizer_config() -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 512,
        "pad_token": PAD,
        "unk_token": UNK,
        "eos_token": END,
        "bos_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "padding_side": "left",
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
        "additional_special_tokens": [SYSTEM, USER, ASSISTANT],
    }


def save_tokenizer_files(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer().save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(), indent=2) + "\n")
    special_map = {"pad_token": PAD, "unk_token": UNK, "eos_token": END}
    (out / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
