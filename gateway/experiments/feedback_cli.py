"""``strata feedback export`` (preference pairs from rated traffic) and ``strata feedback
sample`` (several candidate answers per prompt through the gateway, for a grader or a person
to rate). Export reads the database directly (``STRATA_DATABASE_URL``, else SQLite in
``STRATA_HOME``); only routes with ``store_bodies: true`` have the text it needs.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

feedback_app = typer.Typer(no_args_is_help=True, help="Preference data from rated traffic.")


def _since(value: str | None) -> float:
    if value is None:
        return 0.0
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            "use an ISO date or time, e.g. 2026-12-01", param_hint="--since"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@feedback_app.command("export")
def export(
    alias: Annotated[str, typer.Option(help="The alias whose rated answers to read.")],
    pairs: Annotated[Path, typer.Option(help="Where to write prompt/chosen/rejected JSONL.")],
    sft: Annotated[
        Path | None, typer.Option(help="Also write the best answer per prompt (prompt/completion).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only calls from this ISO time on.")] = None,
    tenant: Annotated[
        list[str] | None, typer.Option(help="Only these tenants' calls (repeatable).")
    ] = None,
    margin: Annotated[float, typer.Option(help="Least score difference for a pair.")] = 0.25,
    cap_per_prompt: Annotated[int, typer.Option(help="Most pairs per prompt.")] = 4,
    sft_min_score: Annotated[float, typer.Option(help="Least score of an SFT answer.")] = 0.75,
) -> None:
    """Preference pairs from answers to the same prompt with different ratings."""
    from gateway.accounting.store import Database
    from gateway.experiments.preferences import Rules, build, rated_rows, write_jsonl
    from gateway.settings import Settings

    try:
        rules = Rules(margin, cap_per_prompt, frozenset(tenant or ()), sft_min_score)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = Settings()
    db = Database(settings.database_url, settings.home)
    try:
        db.migrate()
        result = build(rated_rows(db, alias, _since(since)), rules)
    finally:
        db.close()
    write_jsonl(pairs, result.pairs)
    if sft is not None:
        write_jsonl(sft, result.sft)
    stats = result.stats
    typer.echo(
        f"{stats.pairs} pairs from {stats.prompts} prompts ({stats.rated_answers} rated answers; "
        f"dropped {stats.ties_dropped} ties, {stats.below_margin_dropped} below margin "
        f"{margin}, {stats.capped} over the cap of {cap_per_prompt}; merged "
        f"{stats.duplicates_merged} duplicates) -> {pairs}"
        + (f"; {stats.sft} SFT answers -> {sft}" if sft is not None else "")
    )
    if stats.rated_answers == 0:
        typer.echo(
            f"note: no rated answer of {alias!r} has stored text; set store_bodies: true on "
            "the alias in strata.yaml",
            err=True,
        )


def _prompts(path: Path) -> list[list[dict[str, str]]]:
    if not path.is_file():
        raise typer.BadParameter(f"{path}: no such file", param_hint="--dataset")
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if isinstance(record.get("prompt"), str):
                out.append([{"role": "user", "content": record["prompt"]}])
            else:
                turns = record["messages"]
                if turns and turns[-1]["role"] == "assistant":
                    turns = turns[:-1]
                out.append([{"role": t["role"], "content": t["content"]} for t in turns])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise typer.BadParameter(
                f"{path}:{number}: expected prompt or messages", param_hint="--dataset"
            ) from None
    return out


def _chat(url: str, key: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(
        url + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return json.loads(reply.read()), dict(reply.headers)
    except urllib.error.HTTPError as exc:
        typer.echo(f"strata: {exc.code}: {exc.read().decode(errors='replace')[:300]}", err=True)
        raise typer.Exit(2) from None
    except (urllib.error.URLError, OSError) as exc:
        typer.echo(f"strata: cannot reach the gateway at {url}: {exc}", err=True)
        raise typer.Exit(2) from None


@feedback_app.command("sample")
def sample(
    alias: Annotated[str, typer.Option(help="The alias to sample (store_bodies: true).")],
    dataset: Annotated[Path, typer.Option(help="Prompts: prompt/completion or messages JSONL.")],
    out: Annotated[Path, typer.Option(help="Where to write one line per sampled answer.")],
    n: Annotated[int, typer.Option(help="Answers per prompt.", min=1, max=32)] = 4,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="Most tokens per answer.")] = 64,
    url: Annotated[str | None, typer.Option(help="Gateway base URL.")] = None,
    key: Annotated[str | None, typer.Option(help="API key (else STRATA_API_KEY).")] = None,
) -> None:
    """N answers per prompt through the gateway; rate each by its request_id (/v1/feedback)."""
    from gateway.settings import Settings

    settings = Settings()
    base = url or os.environ.get("STRATA_GATEWAY_URL") or f"http://{settings.host}:{settings.port}"
    secret = key or os.environ.get("STRATA_API_KEY") or settings.dev_key
    if not secret:
        raise typer.BadParameter("no key: pass --key or set STRATA_API_KEY", param_hint="--key")
    prompts = _prompts(dataset)
    rows = []
    for index, turns in enumerate(prompts):
        for _ in range(n):
            body = {"model": alias, "messages": turns, "temperature": temperature,
                    "max_tokens": max_tokens}  # fmt: skip
            reply, headers = _chat(base.rstrip("/"), secret, body)
            lower = {k.lower(): v for k, v in headers.items()}
            rows.append(
                {
                    "prompt_index": index,
                    "messages": turns,
                    "answer": reply["choices"][0]["message"]["content"],
                    "request_id": lower.get("x-strata-request-id"),
                    "variant": lower.get("x-strata-variant"),
                }
            )
        typer.echo(f"sampled {index + 1}/{len(prompts)} prompts", err=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    typer.echo(f"wrote {len(rows)} answers to {out}; rate them by request_id at /v1/feedback")
