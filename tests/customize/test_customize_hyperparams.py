"""Hyper-parameters: parsing name=value and checking names and ranges per family."""

from __future__ import annotations

import pytest

from customize.catalog import hyperparameter_tables
from customize.errors import UsageError
from customize.jobs.hyperparams import parse_assignments, validate_hyperparameters

ACCEPTED = [
    (
        "nova",
        {"epochCount": "2", "learningRate": "0.00001", "learningRateWarmupSteps": "10"},
        {"epochCount": "2", "learningRate": "0.00001", "learningRateWarmupSteps": "10"},
    ),
    ("nova", {"epochCount": "5.0"}, {"epochCount": "5"}),
    (
        "titan-text",
        {"batchSize": "64", "learningRate": "1e-5"},
        {"batchSize": "64", "learningRate": "1e-5"},
    ),
    ("llama3", {"epochCount": "10", "batchSize": "1"}, {"epochCount": "10", "batchSize": "1"}),
    (
        "claude3-haiku",
        {"earlyStoppingEnabled": "False", "batchSize": "4"},
        {"earlyStoppingEnabled": "false", "batchSize": "4"},
    ),
]
REFUSED = [
    ("nova", {"epochCount": "6"}, "epochCount=6 is outside the allowed range 1..5"),
    ("nova", {"epochCount": "0"}, "epochCount=0 is outside the allowed range 1..5"),
    ("nova", {"epochCount": "2.5"}, "epochCount must be a whole number, got '2.5'"),
    ("nova", {"learningRate": "fast"}, "learningRate must be a number, got 'fast'"),
    ("nova", {"learningRate": "nan"}, "learningRate must be a finite number"),
    ("nova", {"batchSize": "8"}, "unknown hyper-parameter 'batchSize' for nova"),
    ("llama3", {"batchSize": "2"}, "batchSize=2 is outside the allowed range 1..1"),
    ("claude3-haiku", {"batchSize": "2"}, "batchSize=2 is outside the allowed range 4..256"),
    (
        "claude3-haiku",
        {"earlyStoppingEnabled": "yes"},
        "earlyStoppingEnabled must be true or false, got 'yes'",
    ),
    (
        "titan-text-premier",
        {"learningRate": "0.001"},
        "learningRate=0.001 is outside the allowed range 1e-07..1e-05",
    ),
]


@pytest.mark.parametrize(("family", "given", "expected"), ACCEPTED)
def test_accepted_values_are_normalized(
    family: str, given: dict[str, str], expected: dict[str, str]
) -> None:
    assert validate_hyperparameters(family, given) == expected


@pytest.mark.parametrize(("family", "given", "message"), REFUSED)
def test_refused_values_name_the_problem(family: str, given: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        validate_hyperparameters(family, given)
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(UsageError) as caught:
        validate_hyperparameters("nova", {"epochCount": "9", "learningRate": "1", "bogus": "1"})
    text = str(caught.value)
    assert "epochCount=9" in text and "learningRate=1" in text and "'bogus'" in text


def test_defaults_in_the_table_are_within_their_ranges() -> None:
    for family, table in hyperparameter_tables().items():
        for name, spec in table.parameters.items():
            if spec.type == "bool":
                continue
            assert spec.min is not None and spec.max is not None, (family, name)
            assert spec.min <= float(spec.default) <= spec.max, (family, name)
            assert validate_hyperparameters(family, {name: str(spec.default)}), (family, name)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["epochCount"], "must look like name=value"),
        (["=3"], "must look like name=value"),
        (["a=1", "a=2"], "given twice"),
    ],
)
def test_assignment_syntax(items: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_assignments(items)
    assert parse_assignments(["epochCount = 3", "learningRate=1e-5"]) == {
        "epochCount": "3",
        "learningRate": "1e-5",
    }
