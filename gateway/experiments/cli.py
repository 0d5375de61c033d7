"""``strata ab status ALIAS`` and ``strata ab promote ALIAS``: the experiment's report and
verdict from a running gateway's ``GET /admin/experiments/{alias}/stats`` (the weights live in
the gateway, the records in the ledger); promotion through ``PUT /admin/experiments/{alias}``.
``--url`` defaults to ``STRATA_GATEWAY_URL`` or ``http://STRATA_HOST:STRATA_PORT``;
``--key`` to ``STRATA_API_KEY`` or ``STRATA_DEV_KEY`` (an admin key is needed).

``--json`` prints the route's document unchanged; its fields:

- ``experiment``, ``control``, ``candidate``, ``weights`` (arm → weight now), ``alpha``,
  ``min_samples``, ``test`` (the sequential test used)
- ``verdict``: ``kind`` (``candidate better`` | ``candidate worse`` | ``no difference yet`` |
  ``guardrail failed`` | ``sample ratio mismatch``), ``text`` (the sentence printed),
  ``more_samples_per_arm`` (with ``no difference yet``, else null)
- ``arms[]``: ``name``, ``n`` (requests routed), ``errors``, ``error_rate`` (status >= 400),
  ``p50_latency_ms``, ``p95_latency_ms``, ``cost_per_request_usd`` (priced calls only),
  ``outcomes`` (rated requests), ``outcome_mean``, ``outcome_ci`` (fixed-n 1 - alpha interval,
  for display)
- ``difference``: candidate - control on the outcome: ``diff``, ``ci`` (always-valid
  confidence sequence), ``p_value`` (always-valid), or null before two ratings per arm
- ``sample_ratio``: ``chi2``, ``p_value``, ``mismatch`` (p < 0.001), ``expected`` counts
- ``guardrails[]``: ``guardrail`` (as given), ``failed``, ``control``, ``candidate``,
  ``limit`` (the metric's values), ``detail``
- ``alias``, ``status`` (``running`` | ``paused`` | ``stopped`` | ``promoted`` |
  ``rolled_back``), ``metric`` (``feedback`` | ``grader:NAME``), ``ramp`` (``steps`` (the
  candidate's percent per step), ``step`` (index now), ``every_s``; null unless ramping)
- ``lineage[]``, oldest first: the candidate variant's registry stages (``stage`` such as
  ``dataset``, ``training_job``, ``import_job``; ``ref``), ``variant`` (``ref``, ``target``),
  ``experiment`` (``ref``, ``when``, ``actor``), then each decision (``stage`` ``ramp`` |
  ``step`` | ``promote`` | ``rollback``, ``ref`` (its event), ``when``, ``actor`` (tenant/key
  id, or ``gateway:ramp``), ``reason``, ``weights`` after it)
- ``metric``: the outcome read, ``feedback`` (ratings) or ``grader:NAME`` (that grader's scores)
- ``forced``: calls whose arm an admin chose (``strata ab replay``); they count everywhere but
  in ``sample_ratio``
- ``timeline``: the outcome over time, for the chart: ``start``, ``end`` (epoch seconds of the
  first and last outcome, or null), ``buckets`` (equal slices between them), ``means`` (arm →
  one outcome mean per slice, null where the arm had no outcome in it)

``strata ab replay NAME --dataset eval.jsonl`` sends every row through every arm (admin
``x-strata-arm``), grades the answers (``--grader``, default ``exact`` against each row's
answer), stores the grades as outcomes and prints the status for ``grader:NAME``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

ab_app = typer.Typer(no_args_is_help=True, help="A/B experiments on live traffic.")


def _get(url: str, key: str, body: Any = None, method: str | None = None) -> Any:
    """GET (or PUT ``body`` as JSON, or ``method``) with the key; an error reply exits 2 with
    its message."""
    headers = {"Authorization": f"Bearer {key}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        url, data=data, headers=headers, method=method or ("PUT" if body is not None else "GET")
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        typer.echo(f"strata: {exc.code}: {message}", err=True)
        raise typer.Exit(2) from None
    except (urllib.error.URLError, OSError) as exc:
        typer.echo(f"strata: cannot reach the gateway at {url.split('/admin')[0]}: {exc}", err=True)
        raise typer.Exit(2) from None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """One character per slice: a block from ▁ (0) to █ (1), a dot where there is no outcome."""
    out = []
    for v in values:
        if v is None:
            out.append("·")
        else:
            out.append(BLOCKS[min(len(BLOCKS) - 1, max(0, round(v * (len(BLOCKS) - 1))))])
    return "".join(out)


def chart(doc: dict[str, Any]) -> list[str]:
    line = doc.get("timeline")
    if not line or line["start"] is None:
        return []
    span = max(0.0, line["end"] - line["start"])
    lines = [
        f"outcome over time ({doc['metric']}; {line['buckets']} slices over {span:.0f} s, "
        "▁ = 0 … █ = 1):"
    ]
    for arm, means in line["means"].items():
        lines.append(f"  {arm:<12}{sparkline(means)}")
    return lines


def render(doc: dict[str, Any]) -> str:
    """The report as a few lines of text, with a chart of the outcome over time."""
    weights = " ".join(f"{k}={v:g}" for k, v in doc["weights"].items())
    status = f"{doc['status']} on alias {doc['alias']}, " if "status" in doc else ""
    if doc.get("ramp"):
        ramp = doc["ramp"]
        status += (
            f"ramping ({doc['weights'].get(doc['candidate'], 0):g}% at step {ramp['step'] + 1} "
            f"of {len(ramp['steps'])}, every {ramp['every_s']:g} s), "
        )
    lines = [
        f"{doc['experiment']}: {doc['verdict']['text']}",
        f"{status}control {doc['control']}, candidate {doc['candidate']}; weights {weights}; "
        f"alpha {doc['alpha']}",
        "",
        f"{'arm':<14}{'n':>7}{'errors':>8}{'rated':>7}  {'outcome [CI]':<22}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'$/request':>12}",
    ]
    for arm in doc["arms"]:
        ci = arm["outcome_ci"]
        outcome = f"{arm['outcome_mean']:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci is not None else "-"
        lines.append(
            f"{arm['name']:<14}{arm['n']:>7}{arm['error_rate']:>8.1%}{arm['outcomes']:>7}  "
            f"{outcome:<22}{_fmt(arm['p50_latency_ms'], '.0f'):>8}"
            f"{_fmt(arm['p95_latency_ms'], '.0f'):>8}"
            f"{_fmt(arm['cost_per_request_usd'], '.6f'):>12}"
        )
    diff = doc["difference"]
    lines.append("")
    if diff is not None:
        lines.append(
            f"{doc['candidate']} - {doc['control']}: {diff['diff']:+.3f} "
            f"[{diff['ci'][0]:+.3f}, {diff['ci'][1]:+.3f}], always-valid p = {diff['p_value']:.3g}"
        )
    srm = doc["sample_ratio"]
    lines.append(
        f"sample ratio: chi-square {srm['chi2']:.2f}, p = {srm['p_value']:.3g} "
        f"({'MISMATCH' if srm['mismatch'] else 'ok'})"
    )
    for g in doc["guardrails"]:
        lines.append(
            f"guardrail {g['guardrail']}: {'FAILED' if g['failed'] else 'ok'} ({g['detail']})"
        )
    if doc.get("forced"):
        lines.append(f"forced arm (replay): {doc['forced']} calls, left out of the sample ratio")
    drawn = chart(doc)
    if drawn:
        lines += ["", *drawn]
    if doc.get("lineage"):
        lines.append("lineage: " + " -> ".join(_step(s) for s in doc["lineage"]))
    return "\n".join(lines)


def _step(step: dict[str, Any]) -> str:
    if step["stage"] in ("ramp", "step", "promote", "rollback"):
        return f"{step['stage']} ({step['when']}, {step['actor']}: {step['reason']})"
    return f"{step['stage']} {step['ref']}"


def _target(url: str | None, key: str | None) -> tuple[str, str]:
    from gateway.settings import Settings

    settings = Settings()
    base = url or os.environ.get("STRATA_GATEWAY_URL") or f"http://{settings.host}:{settings.port}"
    secret = key or os.environ.get("STRATA_API_KEY") or settings.dev_key
    if not secret:
        raise typer.BadParameter("no key: pass --key or set STRATA_API_KEY", param_hint="--key")
    return base.rstrip("/"), secret


UrlOpt = Annotated[str | None, typer.Option(help="gateway base URL")]
KeyOpt = Annotated[str | None, typer.Option(help="an admin key (else STRATA_API_KEY)")]
MetricOpt = Annotated[
    str | None,
    typer.Option(help="the outcome: feedback or grader:NAME (default: the experiment's)"),
]


@ab_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="the experiment (or its alias) to end")],
    to: Annotated[
        str | None, typer.Option(help="the arm to promote (default: the verdict's winner)")
    ] = None,
    ramp: Annotated[
        str | None, typer.Option(help="ramp the candidate instead, e.g. 10,25,50,100 (percent)")
    ] = None,
    step_every: Annotated[
        str | None, typer.Option(help="time per ramp step: 30s, 30m, 1h (default 30m)")
    ] = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
    min_samples: Annotated[
        int | None,
        typer.Option(help="outcomes per arm the verdict needs (default: the experiment's)"),
    ] = None,
) -> None:
    """Send all of the alias's traffic to one arm, atomically on every replica; or, with
    ``--ramp``, raise the candidate's share step by step, checking the guardrails at each step
    and rolling back by itself if one fails. Without ``--to`` or ``--ramp`` the verdict must
    name a winner. The decision is recorded with the statistics it was made on."""
    base, secret = _target(url, key)
    body: dict[str, Any] = {"to": to, "ramp": ramp, "step_every": step_every}
    if min_samples is not None:
        body["min_samples"] = min_samples
    path = urllib.parse.quote(name, safe="")
    doc = _get(f"{base}/admin/experiments/{path}/promote", secret, body, method="POST")
    weights = json.dumps(doc["effective_weights"])
    if doc["ramping"]:
        plan = ",".join(f"{s:g}" for s in doc["ramp"])
        typer.echo(
            f"{doc['name']}: ramping {doc['candidate']} through {plan}% every "
            f"{doc['step_every_s']:g} s; weights now {weights}"
        )
    else:
        typer.echo(f"{doc['name']}: promoted {doc['winner']}; weights now {weights}")


@ab_app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="the experiment (or its alias)")],
    reason: Annotated[str | None, typer.Option(help="why, for the record")] = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """All traffic back to the control, for good (a ramp in progress stops)."""
    base, secret = _target(url, key)
    path = urllib.parse.quote(name, safe="")
    doc = _get(
        f"{base}/admin/experiments/{path}/rollback", secret, {"reason": reason}, method="POST"
    )
    typer.echo(f"{doc['name']}: rolled back; weights now {json.dumps(doc['effective_weights'])}")


@ab_app.command("status")
def status(
    alias: Annotated[str, typer.Argument(help="the alias whose experiment to report")],
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON document")] = False,
    url: UrlOpt = None,
    key: KeyOpt = None,
    guardrail: Annotated[
        list[str] | None, typer.Option(help="e.g. 'p95_latency_ms<+20%' (repeatable)")
    ] = None,
    control: Annotated[str | None, typer.Option(help="the control arm")] = None,
    candidate: Annotated[str | None, typer.Option(help="the candidate arm")] = None,
    alpha: Annotated[
        float | None,
        typer.Option(help="error rate of the sequential test (default: the experiment's)"),
    ] = None,
    min_samples: Annotated[
        int | None,
        typer.Option(help="outcomes per arm before a verdict (default: the experiment's)"),
    ] = None,
    metric: MetricOpt = None,
) -> None:
    base, secret = _target(url, key)
    given = (("alpha", alpha), ("min_samples", min_samples), ("metric", metric))
    params: list[tuple[str, str]] = [(k, str(v)) for k, v in given if v is not None]
    params += [("guardrail", g) for g in guardrail or []]
    params += [(k, v) for k, v in (("control", control), ("candidate", candidate)) if v]
    query = urllib.parse.urlencode(params)
    path = urllib.parse.quote(alias)
    doc = _get(f"{base}/admin/experiments/{path}/stats?{query}", secret)
    typer.echo(json.dumps(doc, indent=2) if as_json else render(doc))


@ab_app.command("replay")
def replay_command(
    name: Annotated[str, typer.Argument(help="the experiment (or its alias)")],
    dataset: Annotated[
        Path, typer.Option(help="JSONL: prompt/completion, or messages ending in the answer")
    ],
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="calls in flight")] = 8,
    grader: Annotated[
        str | None,
        typer.Option(
            help="exact | contains | regex[:PATTERN] | json_schema:FILE | "
            "python:module:function | judge:ALIAS[:pairwise] (default: the experiment's "
            "metric grader:NAME when NAME is one of these, else exact)"
        ),
    ] = None,
    rubric: Annotated[str | None, typer.Option(help="the judge's rubric")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="per answer")] = None,
    min_samples: Annotated[
        int | None, typer.Option(help="as for status (default: the experiment's)")
    ] = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Send every row through every arm, grade the answers, store the grades as outcomes, and
    print the experiment's status for that grader."""
    import asyncio
    import math

    from gateway.experiments.dataset import DatasetProblem
    from gateway.experiments.replay import ReplayError, replay

    base, secret = _target(url, key)
    try:
        result = asyncio.run(
            replay(
                base,
                secret,
                name,
                dataset,
                grader_spec=grader,
                rubric=rubric,
                concurrency=concurrency,
                max_tokens=max_tokens,
            )
        )
    except (DatasetProblem, ReplayError) as exc:
        typer.echo(f"strata: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"strata: cannot reach the gateway at {base}: {exc}", err=True)
        raise typer.Exit(2) from None
    for arm, figures in result.per_arm().items():
        mean = figures["mean"]
        shown = "-" if math.isnan(mean) else f"{mean:.3f}"
        typer.echo(
            f"{arm}: {figures['calls']} calls, {figures['errors']} errors, "
            f"{figures['graded']} graded, mean {result.grader} {shown}"
        )
    if result.grade_errors:
        typer.echo(f"{result.grade_errors} answers could not be graded", err=True)
    params = {"metric": f"grader:{result.grader}"}
    if min_samples is not None:
        params["min_samples"] = str(min_samples)
    query = urllib.parse.urlencode(params)
    path = urllib.parse.quote(name, safe="")
    doc = _get(f"{base}/admin/experiments/{path}/stats?{query}", secret)
    typer.echo("")
    typer.echo(render(doc))
