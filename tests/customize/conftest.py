"""Fixtures for the customize tests: an isolated AWS environment, moto, the Bedrock fake, models.

AWS traffic goes only to 127.0.0.1: S3 and IAM to a moto server, Bedrock to ``FakeBedrock``, which
answers what moto lacks and forwards the rest to the same moto server. The CLI reaches them through
the standard ``AWS_ENDPOINT_URL_<SERVICE>`` variables, exactly as it would reach AWS.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.customize.customize_fake_bedrock import FakeBedrock
from tests.customize.customize_test_env import BEDROCK_TRUST, REGION, Aws


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("STRATA_HOME", str(tmp_path / "strata-home"))
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def fake_bedrock(moto_url: str) -> Iterator[FakeBedrock]:
    fake = FakeBedrock(upstream=moto_url, s3_endpoint=moto_url).start()
    yield fake
    fake.stop()


@pytest.fixture
def aws(moto_url: str, fake_bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> Aws:
    urllib.request.urlopen(
        urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    ).close()
    fake_bedrock.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", fake_bedrock.url)
    handles = Aws(moto_url, fake_bedrock, "strata-test-bucket", "")
    handles.client("s3").create_bucket(Bucket=handles.bucket)
    role = handles.client("iam").create_role(
        RoleName="bedrock-customization", AssumeRolePolicyDocument=json.dumps(BEDROCK_TRUST)
    )
    handles.role_arn = role["Role"]["Arn"]
    return handles


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Llama-architecture model small enough to build in seconds, saved as Bedrock expects."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.set_num_threads(1)
    torch.manual_seed(0)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({char: index + 3 for index, char in enumerate("abcdefghijklmnopqrstuvwxyz .,?!")})
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder, safe_serialization=True)
    fast.save_pretrained(folder)
    return folder
