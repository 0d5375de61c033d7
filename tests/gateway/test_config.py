"""strata.yaml: aliases → targets, defaults, and errors that name file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.settings import Settings
from gateway.targets import Target


def settings(tmp_path: Path, text: str | None, **kw: object) -> Settings:
    config = None
    if text is not None:
        config = tmp_path / "strata.yaml"
        config.write_text(text)
    return Settings(home=tmp_path, config=config, **kw)  # type: ignore[arg-type]


def test_no_config_serves_builtin_as_default(tmp_path: Path) -> None:
    config = load_config(settings(tmp_path, None))
    assert config.aliases == {"default": [Target("local", "builtin")]}
    assert config.local.bases["builtin"].path == "builtin"


def test_local_model_setting_becomes_default(tmp_path: Path) -> None:
    config = load_config(settings(tmp_path, None, local_model="/models/llama"))
    assert config.aliases["default"] == [Target("local", "local")]
    assert config.local.bases["local"].path == "/models/llama"


def test_aliases_and_fallback_chains(tmp_path: Path) -> None:
    config = load_config(
        settings(
            tmp_path,
            """
aliases:
  haiku: bedrock:anthropic.claude-3-haiku-20240307-v1:0
  arn: bedrock:arn:aws:bedrock:us-east-1:123456789012:custom-model/abc
  chain: [variant:v2, local:builtin@upper]
local:
  bases:
    builtin: {path: builtin, adapters: {upper: /tmp/upper}}
""",
        )
    )
    assert config.aliases["haiku"] == [Target("bedrock", "anthropic.claude-3-haiku-20240307-v1:0")]
    assert config.aliases["arn"][0].model.startswith("arn:aws:bedrock:")
    assert config.aliases["chain"] == [Target("variant", "v2"), Target("local", "builtin", "upper")]
    assert config.aliases["default"] == [Target("local", "builtin")]


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("aliases:\n  bad: openai:gpt-4\n", "aliases", "invalid target 'openai:gpt-4'"),
        ("aliases:\n  bad: [1, 2]\n", "aliases", "each target must be a string"),
        ("bedrock:\n  regoin: us-east-1\n", "bedrock.regoin", "Extra inputs are not permitted"),
        ("local:\n  bases:\n    b: {path: 3}\n", "local.bases.b.path", "string"),
        ("aliases:\n  x: local:nosuch\n", "aliases.x", "local base 'nosuch' is not defined"),
        ("aliases:\n  x: local:builtin@ghost\n", "aliases.x", "adapter 'ghost' is not defined"),
        ("- a list\n", "", "top level must be a mapping"),
        ("aliases: [unclosed\n", "", "not valid YAML"),
    ],
)
def test_errors_name_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(settings(tmp_path, text))
    message = info.value.message
    assert message.startswith(str(tmp_path / "strata.yaml"))
    assert key in message
    assert reason in message


def test_missing_file_is_reported(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, config=tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match=r"absent\.yaml: cannot read config file"):
        load_config(s)


def test_bedrock_transport_old_name_is_an_alias(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The transport was called "aioboto3" until aioboto3 was replaced by aiobotocore itself.
    assert Settings(home=tmp_path, bedrock_transport="aioboto3").bedrock_transport == "aiobotocore"
    monkeypatch.setenv("STRATA_BEDROCK_TRANSPORT", "aioboto3")
    assert Settings(home=tmp_path).bedrock_transport == "aiobotocore"
    with pytest.raises(ValidationError, match="bedrock_transport"):
        Settings(home=tmp_path, bedrock_transport="boto3")
