"""The experiment-search filter and order: the small part of MLflow's grammar experiments use."""

from __future__ import annotations

import pytest

from shipyard.domain.errors import InvalidInputError
from shipyard.mlflow.filters import parse_filter, sort
from shipyard.mlflow.schemas import Experiment, ExperimentTag


def _exp(name: str, created: int = 0, **tags: str) -> Experiment:
    return Experiment(
        experiment_id=name,
        name=name,
        artifact_location="",
        lifecycle_stage="active",
        creation_time=created,
        last_update_time=created,
        tags=[ExperimentTag(key=k.replace("_", "."), value=v) for k, v in tags.items()],
    )


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("name = 'a b'", True),
        ("attribute.name != 'a b'", False),
        ("name LIKE 'a%'", True),
        ("name like 'A%'", False),
        ("name ILIKE 'A_B'", True),
        ("tags.team = 'x'", True),
        ("tags.`my.key` = 'it''s'", True),
        ('tags."my.key" LIKE \'it%\' AND name = "a b"', True),
        ("tags.missing = 'x'", False),
        ("name = 'a AND b'", False),
        ("", True),
    ],
)
def test_filter(text: str, matches: bool) -> None:
    experiment = _exp("a b", team="x", my_key="it's")
    assert parse_filter(text)(experiment) is matches


@pytest.mark.parametrize("text", ["name ~ 'x'", "name = x", "creation_time > 5", "name = 'x' OR"])
def test_bad_filters_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_filter(text)


def test_order() -> None:
    a, b, c = _exp("a", 3), _exp("b", 1), _exp("c", 2)
    assert sort([a, b, c], []) == [a, c, b]  # newest first
    assert sort([c, a, b], ["name"]) == [a, b, c]
    assert sort([c, a, b], ["attributes.creation_time ASC"]) == [b, c, a]
    with pytest.raises(InvalidInputError):
        sort([a], ["size DESC"])
