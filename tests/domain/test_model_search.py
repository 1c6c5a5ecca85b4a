"""The model-search parser: MLflow's registry grammar, checked against each vocabulary."""

from __future__ import annotations

import pytest

from shipyard.domain.errors import InvalidInputError
from shipyard.domain.model_search import (
    Condition,
    OrderKey,
    Vocabulary,
    parse_filter,
    parse_order_by,
)

WORDS = Vocabulary(
    strings=frozenset({"name", "run_id"}),
    numbers=frozenset({"version_number"}),
    prefixes=frozenset({"tag", "param"}),
    orderable=frozenset({"name", "creation_timestamp"}),
    aliases={"version": "version_number", "timestamp": "creation_timestamp"},
)


def test_conditions_joined_by_and() -> None:
    text = (
        "name LIKE 'churn%' AND tags.`team.name` = \"vision\" AND attributes.version >= 2 "
        "and run_id IN ('a', 'b') AND params.lr != '0.1' AND tag.x.y = 'z'"
    )
    assert parse_filter(text, WORDS) == [
        Condition("attribute", "name", "LIKE", "churn%"),
        Condition("tag", "team.name", "=", "vision"),
        Condition("attribute", "version_number", ">=", 2.0),
        Condition("attribute", "run_id", "IN", ("a", "b")),
        Condition("param", "lr", "!=", "0.1"),
        Condition("tag", "x.y", "=", "z"),
    ]
    assert parse_filter("  ", WORDS) == []
    assert parse_filter(None, WORDS) == []


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("name = ", 7),
        ("nam = 'x'", 0),
        ("name = 'x' OR name = 'y'", 11),
        ("name > 'x'", 5),
        ("version_number = 'x'", 17),
        ("tags.t < 'x'", 7),
        ("tags.t NOT IN ('x')", 7),
        ("metrics.m > 1", 0),  # not in this vocabulary
        ("name = 'unterminated", 7),
        ("name = 'x' extra", 11),
        ("name IN 'x'", 8),
        ("tags.`a\"b` = 'x'", 0),
        ("tags.`a\\b` = 'x'", 0),
    ],
)
def test_errors_point_at_the_position(text: str, position: int) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_filter(text, WORDS)
    assert caught.value.code == "invalid_filter"
    assert caught.value.field == "filter"
    assert caught.value.detail.startswith(f"at position {position}:"), caught.value.detail


def test_order_by() -> None:
    assert parse_order_by(["name", "timestamp DESC", "attributes.name asc"], WORDS) == [
        OrderKey("attribute", "name"),
        OrderKey("attribute", "creation_timestamp", descending=True),
        OrderKey("attribute", "name"),
    ]
    for bad in ("run_id", "name sideways", "tags.x", ""):
        with pytest.raises(InvalidInputError) as caught:
            parse_order_by([bad], WORDS)
        assert caught.value.code == "invalid_order_by"
        assert caught.value.field == "order_by.0"
