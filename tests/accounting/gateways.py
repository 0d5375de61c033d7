"""Gateway replicas as real processes (``strata serve``) over the Bedrock-wire fake, sharing
PostgreSQL and Redis as production replicas would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from tests.accounting.conftest import free_port

MODEL = "test-model"
ADMIN_KEY = "sk-strata-admin-test-0123456789abcdef"


def write_config(path: Path, endpoint_url: str, prices: str = "") -> Path:
    path.write_text(
        f"""
aliases:
  default: bedrock:{MODEL}
  chat: bedrock:{MODEL}
  other: bedrock:{MODEL}
bedrock:
  region: us-east-1
  endpoint_url: {endpoint_url}
prices:
  "bedrock:{MODEL}": {{input_per_mtok: 0, output_per_mtok: 10}}
{prices}
""",
        encoding="utf-8",
    )
    return path


class GatewayProcess:
    def __init__(self, home: Path, config: Path, env: dict[str, str]) -> None:
        self.home, self.config, self.env = home, config, env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90) -> None:
        self.launch()
        self.wait_ready(timeout_s)

    def launch(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRATA_"))}
        env.update(
            STRATA_HOME=str(self.home),
            STRATA_CONFIG=str(self.config),
            STRATA_DEV_KEY=ADMIN_KEY,
            STRATA_LOG_LEVEL="WARNING",
            # The fake runs in the test process, sharing its CPU with the load client: on a
            # loaded machine connecting to it can take seconds (a 503 "cannot reach").
            STRATA_BEDROCK_CONNECT_TIMEOUT_S="60",
            AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
            AWS_SECRET_ACCESS_KEY="secret-example",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
        )
        env.update(self.env)  # may override the defaults above (STRATA_LOG_LEVEL)
        log = open(self.home.parent / f"gateway-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from gateway.cli import main; main()",
                "serve",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).parents[2],
        )
        log.close()
        self._log = log.name

    def wait_ready(self, timeout_s: float = 90) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited early; see {self._log}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError("gateway did not become ready")

    def stop(self) -> None:
        """Graceful: SIGTERM, so the lifespan drains the ledger."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None


@contextmanager
def replicas(
    tmp: Path, config: Path, env: dict[str, str], count: int = 2
) -> Iterator[list[GatewayProcess]]:
    with ExitStack() as stack:
        gateways = []
        for i in range(count):
            home = tmp / f"replica-{i}" / "home"
            home.mkdir(parents=True)
            gateway = GatewayProcess(home, config, env)
            stack.callback(gateway.stop)
            gateways.append(gateway)
        for gateway in gateways:
            gateway.launch()
        for gateway in gateways:
            gateway.wait_ready()
        yield gateways


def chat(max_tokens: int | None = 100, text: str = "hello there", model: str = "chat") -> dict:
    body: dict = {"model": model, "messages": [{"role": "user", "content": text}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body
