"""Issue 13: dataset rules checked against AWS's pages (items 1, 2, 5, 6, 15, 16).

Each test names the item it covers; each fails on the code before issue 13 (see notes/issue-13.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from customize.catalog import family_for_model, family_named
from customize.cli import app
from customize.datasets.formats import dataset_spec
from customize.datasets.validate import DatasetScan

LLAMA_31 = "meta.llama3-1-8b-instruct-v1:0:128k"
LLAMA_32 = "meta.llama3-2-1b-instruct-v1:0:128k"
NOVA_MICRO = "amazon.nova-micro-v1:0:128k"
NOVA_LITE = "amazon.nova-lite-v1:0:300k"
TITAN = "amazon.titan-text-lite-v1:0:4k"


def _text_turn(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": [{"text": text}]}


def _conversation(*turns: dict[str, Any]) -> dict[str, Any]:
    return {"schemaVersion": "bedrock-conversation-2024", "messages": list(turns)}


CHAT = _conversation(_text_turn("user", "Capital of France?"), _text_turn("assistant", "Paris."))
PC = {"prompt": "Capital of France?", "completion": "Paris."}


def _image(uri: str = "s3://media-bkt/cat.png") -> dict[str, Any]:
    return {"image": {"format": "png", "source": {"s3Location": {"uri": uri}}}}


def _video(uri: str = "s3://media-bkt/clip.mp4") -> dict[str, Any]:
    return {"video": {"format": "mp4", "source": {"s3Location": {"uri": uri}}}}


def _media_record(*blocks: dict[str, Any]) -> dict[str, Any]:
    user = {"role": "user", "content": [{"text": "Describe it."}, *blocks]}
    return _conversation(user, _text_turn("assistant", "A cat."))


def _write(path: Path, records: list[Any], tail: str = "") -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    return path


def _problems(path: Path, spec: Any) -> list[tuple[int | None, str, bool]]:
    return [(p.line, p.reason, p.warning) for p in DatasetScan(path, spec)]


# Item 1 -------------------------------------------------------------------------------------


def test_item1_llama32_is_conversational_and_llama31_prompt_completion(
    tmp_path: Path, runner: CliRunner
) -> None:
    assert family_for_model(LLAMA_32).format == "bedrock-conversation-2024"
    assert family_for_model(LLAMA_31).format == "prompt-completion"
    chats = _write(tmp_path / "chat.jsonl", [CHAT] * 5)
    pairs = _write(tmp_path / "pairs.jsonl", [PC] * 5)
    assert runner.invoke(app, ["validate", str(chats), "--base", LLAMA_32]).exit_code == 0
    refused = runner.invoke(app, ["validate", str(pairs), "--base", LLAMA_32])
    assert refused.exit_code == 1 and "missing key 'messages'" in refused.stdout
    assert runner.invoke(app, ["validate", str(pairs), "--base", LLAMA_31]).exit_code == 0

    converted = tmp_path / "out.jsonl"
    done = runner.invoke(
        app,
        [
            "convert",
            str(pairs),
            str(converted),
            "--from",
            "prompt-completion",
            "--to-base",
            LLAMA_32,
        ],
    )
    assert done.exit_code == 0, done.output
    first = json.loads(converted.read_text().splitlines()[0])
    assert first["schemaVersion"] == "bedrock-conversation-2024"
    assert first["messages"][1] == _text_turn("assistant", "Paris.")


# Item 4 -------------------------------------------------------------------------------------


def test_item4_model_list_follows_aws_fine_tuning_table(tmp_path: Path, runner: CliRunner) -> None:
    chats = _write(tmp_path / "chat.jsonl", [CHAT] * 8)
    nova2 = runner.invoke(app, ["validate", str(chats), "--base", "amazon.nova-2-lite-v1:0:256k"])
    assert nova2.exit_code == 0, nova2.output
    assert family_for_model("amazon.nova-2-lite-v1:0:256k").name == "nova-2"
    llama33 = runner.invoke(
        app, ["validate", str(chats), "--base", "meta.llama3-3-70b-instruct-v1:0"]
    )
    assert llama33.exit_code == 1
    assert (
        "cannot be customized here: Llama 3.3 is not in AWS's fine-tuning table" in llama33.stderr
    )
    assert family_for_model("amazon.titan-text-premier-v1:0:32k").customization_types == (
        "FINE_TUNING",
    )
    # Distillation teachers and students per AWS's table: Claude 3 Haiku is a student.
    assert (
        "DISTILLATION"
        in family_for_model("anthropic.claude-3-haiku-20240307-v1:0:200k").customization_types
    )


# Item 2 -------------------------------------------------------------------------------------


def test_item2_validation_file_has_no_minimum_of_its_own(tmp_path: Path, runner: CliRunner) -> None:
    small = _write(tmp_path / "val.jsonl", [PC] * 5)
    as_training = runner.invoke(app, ["validate", str(small), "--base", TITAN])
    assert as_training.exit_code == 1 and "fewer than the minimum of 32" in as_training.stdout
    as_validation = runner.invoke(
        app, ["validate", str(small), "--base", TITAN, "--role", "validation", "--json"]
    )
    assert as_validation.exit_code == 0, as_validation.output
    assert json.loads(as_validation.stdout)["problems"] == []


# Item 5 (dataset side) ----------------------------------------------------------------------


def test_item5_distillation_needs_100_to_15000_prompts(tmp_path: Path) -> None:
    prompt = _conversation(_text_turn("user", "Summarize the report."))
    spec = dataset_spec(family_named("nova-micro"), "DISTILLATION")
    few = _problems(_write(tmp_path / "few.jsonl", [prompt] * 99), spec)
    assert [(line, reason[:41]) for line, reason, _ in few] == [
        (None, "99 records, fewer than the minimum of 100")
    ]
    assert _problems(_write(tmp_path / "ok.jsonl", [prompt] * 100), spec) == []
    assert spec.max_records == 15000


@pytest.mark.parametrize(
    ("student", "single"),
    [(LLAMA_31, True), ("anthropic.claude-3-haiku-20240307-v1:0:200k", True), (NOVA_MICRO, False)],
)
def test_item5_anthropic_and_llama_students_take_single_turn_prompts(
    tmp_path: Path, student: str, single: bool
) -> None:
    multi = _conversation(
        _text_turn("user", "Hi"), _text_turn("assistant", "Hello"), _text_turn("user", "Summarize.")
    )
    path = _write(tmp_path / "p.jsonl", [multi] * 100)
    problems = _problems(path, dataset_spec(family_for_model(student), "DISTILLATION"))
    flagged = [r for line, r, _ in problems if line is not None and "single-turn" in r]
    assert bool(flagged) is single
    if single:
        assert len(flagged) == 100 and "2 user message(s) in 3" in flagged[0]


# Item 6 -------------------------------------------------------------------------------------


def _media_problems(
    tmp_path: Path, base: str, records: list[Any], bucket: str | None
) -> list[tuple[int | None, str]]:
    spec = dataset_spec(family_for_model(base)).in_bucket(bucket)
    return [(line, r) for line, r, _ in _problems(_write(tmp_path / "m.jsonl", records), spec)]


def test_item6_images_refused_for_text_only_nova_micro(tmp_path: Path) -> None:
    problems = _media_problems(tmp_path, NOVA_MICRO, [_media_record(_image())] * 8, "media-bkt")
    assert (
        1,
        "messages[0].content[1].image: Amazon Nova Micro takes text only, not images",
    ) in problems
    assert _media_problems(tmp_path, NOVA_LITE, [_media_record(_image())] * 8, "media-bkt") == []


def test_item6_two_videos_in_one_record_across_messages(tmp_path: Path) -> None:
    two = _conversation(
        {"role": "user", "content": [{"text": "a"}, _video()]},
        _text_turn("assistant", "b"),
        {"role": "user", "content": [{"text": "c"}, _video("s3://media-bkt/two.mp4")]},
        _text_turn("assistant", "d"),
    )
    problems = _media_problems(
        tmp_path, NOVA_LITE, [_media_record(_video())] * 7 + [two], "media-bkt"
    )
    assert problems == [(8, "the record has 2 videos; a record may hold at most one")]


def test_item6_image_and_video_records_not_mixed_in_one_dataset(tmp_path: Path) -> None:
    records = [_media_record(_image())] * 4 + [_media_record(_video())] + [CHAT] * 3
    problems = _media_problems(tmp_path, NOVA_LITE, records, "media-bkt")
    assert problems == [
        (5, "the record has videos but line 1 has images; a dataset holds image records or "
         "video records, not both")
    ]  # fmt: skip


def test_item6_media_outside_the_datasets_bucket(tmp_path: Path, runner: CliRunner) -> None:
    records = [_media_record(_image("s3://other-bkt/cat.png"))] + [CHAT] * 7
    problems = _media_problems(tmp_path, NOVA_LITE, records, "media-bkt")
    assert problems == [
        (1, "messages[0].content[1].image.source.s3Location.uri is in bucket 'other-bkt', not the "
         "dataset's bucket 'media-bkt'; Bedrock reads media only from there")
    ]  # fmt: skip
    path = _write(tmp_path / "cli.jsonl", records)
    result = runner.invoke(
        app, ["validate", str(path), "--base", NOVA_LITE, "--bucket", "media-bkt"]
    )
    assert result.exit_code == 1 and "cli.jsonl: line 1: messages[0]" in result.stdout


# Item 15 ------------------------------------------------------------------------------------


def test_item15_trailing_blank_line_is_a_warning_in_validate_and_convert(
    tmp_path: Path, runner: CliRunner
) -> None:
    path = _write(tmp_path / "t.jsonl", [PC] * 32, tail="\n")
    result = runner.invoke(app, ["validate", str(path), "--base", TITAN, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ok"] is True and payload["stats"]["warnings"] == 1
    assert payload["problems"] == [
        {
            "line": 33,
            "reason": "empty line: skipped (convert drops it too); remove it",
            "warning": True,
        }
    ]
    converted = runner.invoke(
        app, ["convert", str(path), str(tmp_path / "o.jsonl"), "--from", "prompt-completion",
              "--to", "openai", "--json"],
    )  # fmt: skip
    assert converted.exit_code == 0
    assert json.loads(converted.stdout)["warnings"] == [
        {"line": 33, "reason": "empty line: skipped"}
    ]


def test_item15_invalid_utf8_names_the_encoding_and_byte_offset(tmp_path: Path) -> None:
    good = (json.dumps(PC) + "\n").encode()
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(good + b'{"prompt": "caf\xe9", "completion": "x"}\n')
    [(line, reason, _)] = _problems(
        path, dataset_spec(family_named("titan-text")).for_role("validation")
    )
    offset = len(good) + len(b'{"prompt": "caf')
    assert line == 2
    assert reason.startswith(f"not valid UTF-8: byte 0xe9 at byte offset {offset:,} of the file")


def test_item15_utf16_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "utf16.jsonl"
    path.write_bytes((json.dumps(PC) + "\n").encode("utf-16"))
    [(line, reason, _)] = _problems(path, dataset_spec(family_named("titan-text")))
    assert line == 1 and reason.startswith("the file is UTF-16 encoded") and "iconv" in reason


def test_item15_bom_is_refused_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + ((json.dumps(PC) + "\n") * 3).encode())
    problems = _problems(path, dataset_spec(family_named("titan-text")).for_role("validation"))
    assert len(problems) == 1
    line, reason, warning = problems[0]
    assert line == 1 and not warning and "byte-order mark" in reason and "sed -i" in reason


def test_item15_duplicate_keys_are_flagged(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    path.write_text('{"prompt": "a", "prompt": "b", "completion": "c"}\n')
    problems = _problems(path, dataset_spec(family_named("titan-text")).for_role("validation"))
    assert problems == [
        (1, "key 'prompt' appears twice in one object (only the last value would be used)", False)
    ]


# Item 16 ------------------------------------------------------------------------------------


def test_item16_unconfirmed_limits_say_so_and_file_size_caps_apply(
    tmp_path: Path, runner: CliRunner
) -> None:
    path = _write(tmp_path / "few.jsonl", [PC] * 3)
    result = runner.invoke(app, ["validate", str(path), "--base", TITAN])
    assert "fewer than the minimum of 32 (this limit is not confirmed against" in result.stdout
    assert "(not confirmed against" in " ".join(result.stdout.split()[-40:])  # the limits line
    titan = family_named("titan-text")
    spec = dataset_spec(titan)
    assert spec.max_bytes == 1_000_000_000
    assert dataset_spec(titan, "CONTINUED_PRE_TRAINING").max_bytes == 10_000_000_000
    assert spec.for_role("validation").max_bytes == 100_000_000
    # Titan's per-record token limit halves at larger batch sizes (model-training-validation-
    # requirements): 4,096 tokens at batch size 1, 2,048 from the larger sizes.
    assert dataset_spec(titan, batch_size=1).max_tokens_per_record == 4096
    assert dataset_spec(titan, batch_size=8).max_tokens_per_record == 2048
    tiny_cap = spec.for_role("validation")
    from dataclasses import replace

    capped = replace(tiny_cap, max_bytes=10)
    assert any(
        "over the 10-byte limit for validation data" in r for _, r, _ in _problems(path, capped)
    )
