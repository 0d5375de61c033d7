"""Issue 14 item 10: parallel composition (logits of several adapters averaged or gated in one
forward pass) and per-request routing (keywords, n-gram and hidden-state classifiers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters_local.compose.routers import build_router, choose
from adapters_local.compose.spec import CompositionError, Parallel, Routed, parse_composition
from adapters_local.data.chat_format import prompt_ids
from adapters_local.data.tasks import BUILTIN_TASKS, NEW_TASKS, make_items
from adapters_local.serving.batch_runner import RunningBatch
from adapters_local.serving.engine import load_engine
from adapters_local.serving.rows import Job
from adapters_local.serving.served_model import ServedModel
from tests.adapters_local.compose_reference import SoloModel, greedy, mixed_logits
from tests.adapters_local.serving_helpers import (
    Collector,
    random_bottleneck,
    random_lora,
    request,
    run_all,
)

WEIGHTS = {"a": 0.5, "b": 0.3, "c": 0.2}
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compose")
    return {
        "a": random_lora(root / "a", seed=1),
        "b": random_lora(root / "b", seed=2),
        "c": random_bottleneck(root / "c", seed=3),
    }


@pytest.fixture(scope="module")
def solo(folders: dict[str, Path]) -> dict[str, SoloModel]:
    return {"base": SoloModel(None), **{n: SoloModel(f) for n, f in folders.items()}}


def _job(model: ServedModel, prompt: str, adapter: str | None) -> Job:
    generation = request(prompt, max_new_tokens=6, adapter=adapter)
    job = Job(generation, Collector(), seed=0)
    job.prompt = prompt_ids(model.tokenizer, generation.messages)
    return job


def test_parallel_logits_are_the_weighted_mean_of_each_adapter_alone(
    folders: dict[str, Path], solo: dict[str, SoloModel]
) -> None:
    import torch

    model = ServedModel("builtin", "cpu")
    for name, folder in folders.items():  # LoRAs first, as load_engine orders them
        model.load_adapter(name, folder)
    model.add_composition("mix", parse_composition("parallel:a=5,b=3,c=2"))  # type: ignore[arg-type]
    batch = RunningBatch(model)
    # The composition shares its admission and every decode step with a plain LoRA row and a
    # base row: one forward pass for all five lanes.
    jobs = [
        _job(model, "Copy: planet", "mix"),
        _job(model, "Reverse: kettle", "a"),
        _job(model, "Copy: wizard", None),
    ]
    with torch.inference_mode():
        assert batch.admit(jobs) == 3
        ids = [list(j.prompt) for j in jobs]
        references = [
            lambda x: mixed_logits([solo[n] for n in WEIGHTS], list(WEIGHTS.values()), x),
            solo["a"].logits,
            solo["base"].logits,
        ]
        compared = 0
        for _ in range(4):  # the prefill, then decode steps (the KV cache of each lane)
            alive = [i for i, j in enumerate(jobs) if not j.ended]
            assert len(batch) == len(alive)
            for row, i in enumerate(alive):
                got, want = batch.logits[row].float(), references[i](ids[i])
                assert torch.allclose(got, want, atol=TOLERANCE), (i, (got - want).abs().max())
                ids[i].append(int(got.argmax()))
                compared += i == 0
            batch.step()
        assert compared >= 2
    # Not merely one adapter's logits: the mix differs from each member's.
    prompt = jobs[0].prompt
    mean = mixed_logits([solo[n] for n in WEIGHTS], list(WEIGHTS.values()), prompt)
    for name in WEIGHTS:
        assert (mean - solo[name].logits(prompt)).abs().max() > 1e-2


@pytest.fixture(scope="module")
def engine(folders: dict[str, Path]) -> Iterator[Any]:
    adapters: dict[str, str | Path] = {
        **folders,
        "ab": "parallel:a+b",
        "gated": 'parallel:{"adapters":["a","b"],"router":{"classifier":"ngrams",'
        '"examples":[{"text":"Copy: abc","adapter":"a"},{"text":"Copy: xyz","adapter":"a"},'
        '{"text":"Reverse: abc","adapter":"b"},{"text":"Reverse: xyz","adapter":"b"}]}}',
    }
    engine = load_engine("builtin", adapters, device="cpu", threads=1)
    yield engine
    engine.close()


def test_engine_answers_parallel_compositions_as_the_averaged_solo_models(
    engine: Any, solo: dict[str, SoloModel]
) -> None:
    tokenizer: Any = engine.tokenizer
    prompts = ["Copy: planet", "Reverse: bronze"]
    generations = [request(p, max_new_tokens=8, adapter=a) for p in prompts for a in ("ab", "a+b")]
    generations.append(request("Copy: planet", max_new_tokens=8, adapter="a"))
    answers = [c.text for c in run_all(engine, generations)]  # all in the running batch at once
    for i, prompt in enumerate(prompts):
        ids = prompt_ids(tokenizer, request(prompt).messages)
        want = greedy([solo["a"], solo["b"]], [0.5, 0.5], ids, 8, tokenizer.eos_token_id)
        assert answers[2 * i] == answers[2 * i + 1] == tokenizer.decode(want)
    assert answers[-1] != answers[0]  # a alone is not the mix


def test_a_gate_weights_members_by_the_routers_probabilities(
    engine: Any, solo: dict[str, SoloModel]
) -> None:
    tokenizer: Any = engine.tokenizer
    spec = parse_composition(
        'parallel:{"adapters":["a","b"],"router":{"classifier":"ngrams","examples":['
        '{"text":"Copy: abc","adapter":"a"},{"text":"Copy: xyz","adapter":"a"},'
        '{"text":"Reverse: abc","adapter":"b"},{"text":"Reverse: xyz","adapter":"b"}]}}'
    )
    assert isinstance(spec, Parallel) and spec.router is not None
    router = build_router(spec.router, spec.adapters)
    prompt = "Reverse: bronze"
    weights = router.probabilities(prompt)
    assert weights[1] > 0.5 and abs(sum(weights) - 1) < 1e-9
    (answer,) = run_all(engine, [request(prompt, max_new_tokens=8, adapter="gated")])
    ids = prompt_ids(tokenizer, request(prompt).messages)
    want = greedy([solo["a"], solo["b"]], weights, ids, 8, tokenizer.eos_token_id)
    assert answer.text == tokenizer.decode(want)


def _labelled(count: int, seed: int) -> list[tuple[str, str]]:
    """Requests labelled with the adapter that serves them: new tasks by theirs, old by base."""
    items = make_items([NEW_TASKS["rot13"], *BUILTIN_TASKS], count, seed=seed)
    return [(i.prompt, "rot13" if i.task == "rot13" else "base") for i in items]


@pytest.mark.parametrize("classifier", ["ngrams", "hidden"])
def test_a_classifier_router_trained_on_a_few_examples_routes_held_out_requests(
    classifier: str,
) -> None:
    train, held_out = _labelled(20, seed=1), _labelled(60, seed=2)
    spec = {
        "classifier": classifier,
        "examples": [{"text": t, "adapter": a} for t, a in train],
    }
    members = ("base", "rot13")
    hidden = None
    if classifier == "hidden":
        model = ServedModel("builtin", "cpu")
        hidden = lambda: model.mean_hidden  # noqa: E731
    router = build_router(spec, members, hidden)
    picked = [members[choose(router, text)] for text, _ in held_out]
    assert picked == [label for _, label in held_out]


def test_a_keyword_router_takes_the_first_matching_rule_else_the_default() -> None:
    spec = {"keywords": {"rot13": ["^encode:", r"\brot13\b"], "b": "upper"}, "default": "base"}
    router = build_router(spec, ("base", "rot13", "b"))
    members = ("base", "rot13", "b")
    cases = {"Encode: abc": "rot13", "do rot13 this": "rot13", "UPPERCASE: x": "b", "hi": "base"}
    for text, want in cases.items():
        assert members[choose(router, text)] == want
    with pytest.raises(CompositionError, match="not a member"):
        build_router({"keywords": {"nope": "x"}}, members)


def test_routed_requests_are_served_by_the_chosen_member(folders: dict[str, Path]) -> None:
    adapters: dict[str, str | Path] = {
        "a": folders["a"],
        "pick": 'route:{"adapters":["a","base"],"router":{"keywords":{"a":"^copy"},'
        '"default":"base"}}',
    }
    engine = load_engine("builtin", adapters, device="cpu", threads=1)
    try:
        prompts = ["Copy: planet", "Reverse: planet"]
        routed = run_all(engine, [request(p, max_new_tokens=8, adapter="pick") for p in prompts])
        direct = run_all(
            engine,
            [
                request(prompts[0], max_new_tokens=8, adapter="a"),
                request(prompts[1], max_new_tokens=8),
            ],
        )
        assert [c.text for c in routed] == [c.text for c in direct]
        assert "pick" in engine.adapter_names
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("parallel:a", "at least two"),
        ("parallel:a=1,a=2", "twice"),
        ("parallel:a=0,b=0", "not all zero"),
        ('route:{"adapters":["a"]}', "needs a router"),
        ('parallel:{"adapters":["a","b"],"weights":[1,1],"router":{}}', "not both"),
        ("route:a+b", "route:"),
        ('parallel:{"adapters":["a","b"],"extra":1}', "unknown composition keys"),
    ],
)
def test_bad_compositions_are_refused_with_the_reason(value: str, message: str) -> None:
    with pytest.raises(CompositionError, match=message):
        parse_composition(value)


def test_parsed_forms() -> None:
    assert parse_composition("parallel:a+b") == Parallel(("a", "b"), (0.5, 0.5))
    assert parse_composition("parallel:a=3,b=1") == Parallel(("a", "b"), (0.75, 0.25))
    routed = parse_composition('route:{"adapters":["a","base"],"router":{"keywords":{"a":"x"}}}')
    assert isinstance(routed, Routed) and routed.members == ("a",)
