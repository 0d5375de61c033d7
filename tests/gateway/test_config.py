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
    assert {k: v.targets for k, v in config.aliases.items()} == {
        "default": [Target("local", "builtin")]
    }
    assert config.local.bases["builtin"].path == "builtin"


def test_local_model_setting_becomes_default(tmp_path: Path) -> None:
    config = load_config(settings(tmp_path, None, local_model="/models/llama"))
    assert config.aliases["default"].targets == [Target("local", "local")]
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
    targets = {k: v.targets for k, v in config.aliases.items()}
    assert targets["haiku"] == [Target("bedrock", "anthropic.claude-3-haiku-20240307-v1:0")]
    assert targets["arn"][0].model.startswith("arn:aws:bedrock:")
    assert targets["arn"][0].region == "us-east-1"  # an ARN names its own region
    assert targets["chain"] == [Target("variant", "v2"), Target("local", "builtin", "upper")]
    assert targets["default"] == [Target("local", "builtin")]


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


ROUTES = """
aliases:
  haiku:
    targets: [bedrock:anthropic.claude-3-haiku-20240307-v1:0,
              "bedrock@us-west-2:anthropic.claude-3-haiku-20240307-v1:0"]
    timeout_ms: 20000
    retry: {max_attempts: 2, base_ms: 10, cap_ms: 500, budget_ratio: 0.3}
    breaker: {failures: 4, window_s: 20, cooldown_s: 15}
    fallback_on: [throttled, unavailable]
  support:
    experiment:
      sticky_by: user
      salt: "2026-12"
      variants:
        control: {target: "bedrock:base", weight: 90}
        tuned: {targets: [variant:support-v2, "bedrock:base"], weight: 10}
"""


def test_alias_mappings_carry_policy_and_experiments(tmp_path: Path) -> None:
    routes = load_config(settings(tmp_path, ROUTES)).routes()
    haiku = routes["haiku"]
    assert [t.region for t in haiku.targets] == [None, "us-west-2"]
    assert str(haiku.targets[1]) == "bedrock@us-west-2:anthropic.claude-3-haiku-20240307-v1:0"
    assert haiku.policy.timeout_ms == 20000
    assert (haiku.policy.retry.max_attempts, haiku.policy.retry.budget_ratio) == (2, 0.3)
    assert (haiku.policy.breaker.failures, haiku.policy.breaker.cooldown_s) == (4, 15)
    assert haiku.policy.fallback_on == {"throttled", "unavailable"}
    experiment = routes["support"].experiment
    assert experiment is not None
    assert (experiment.sticky_by, experiment.salt) == ("user", "2026-12")
    assert experiment.weights == {"control": 90.0, "tuned": 10.0}
    assert [str(t) for t in experiment.arms["tuned"].targets] == [
        "variant:support-v2",
        "bedrock:base",
    ]
    # Plain strings and lists get the default policy.
    default = routes["default"].policy
    assert default.retry.max_attempts == 3 and default.timeout_ms is None


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("aliases:\n  x: {targets: [bedrock:m], retyr: {}}\n", "aliases.x.retyr", "Extra inputs"),
        (
            "aliases:\n  x: {targets: [bedrock:m], retry: {max_attempts: 0}}\n",
            "aliases.x.retry.max_attempts",
            "greater than or equal to 1",
        ),
        (
            "aliases:\n  x: {targets: [bedrock:m], fallback_on: [oops]}\n",
            "aliases.x.fallback_on",
            "unknown error class 'oops'",
        ),
        ("aliases:\n  x: {timeout_ms: 10}\n", "aliases.x", "give either targets or an experiment"),
        (
            "aliases:\n  x: {experiment: {variants: {a: {target: 'bedrock:m', weight: 0}}}}\n",
            "aliases.x.experiment.variants",
            "at least one variant needs a weight above 0",
        ),
        (
            "aliases:\n  x: {experiment: {variants: {a: {weight: 1}}}}\n",
            "aliases.x.experiment.variants.a",
            "give exactly one of target",
        ),
        (
            "aliases:\n  x:\n    experiment:\n      sticky_by: ip\n"
            "      variants: {a: {target: 'bedrock:m', weight: 1}}\n",
            "aliases.x.experiment.sticky_by",
            "'key', 'user' or 'request'",
        ),
        ("aliases:\n  x: bedrock@mars:m\n", "aliases.x", "only bedrock targets take a region"),
        ("aliases:\n  x: local@us-west-2:builtin\n", "aliases.x", "only bedrock targets"),
    ],
)
def test_route_errors_name_the_key(tmp_path: Path, text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(settings(tmp_path, text))
    message = info.value.message
    assert f"strata.yaml: {key}: " in message
    assert reason in message


def test_bedrock_transport_old_name_is_an_alias(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The transport was called "aioboto3" until aioboto3 was replaced by aiobotocore itself.
    assert Settings(home=tmp_path, bedrock_transport="aioboto3").bedrock_transport == "aiobotocore"
    monkeypatch.setenv("STRATA_BEDROCK_TRANSPORT", "aioboto3")
    assert Settings(home=tmp_path).bedrock_transport == "aiobotocore"
    with pytest.raises(ValidationError, match="bedrock_transport"):
        Settings(home=tmp_path, bedrock_transport="boto3")
