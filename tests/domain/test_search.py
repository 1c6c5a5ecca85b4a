"""The run-search filter and order-by parser: grammar, types, positions of errors, limits."""

from __future__ import annotations

import dataclasses
import time

import pytest

from shipyard.domain.errors import InvalidInputError
from shipyard.domain.search import (
    ATTRIBUTES,
    MAX_COMPARISONS,
    MAX_DEPTH,
    MAX_FILTER_LENGTH,
    MAX_ORDER_BY_ITEMS,
    MAX_ORDER_BY_LENGTH,
    NULLABLE_ATTRIBUTES,
    NUMERIC_ATTRIBUTES,
    And,
    Comparison,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)


def metric(key: str, op: str, value: float) -> Comparison:
    return Comparison("metric", key, op, value)


def param(key: str, op: str, value: str | tuple[str | float, ...] | None) -> Comparison:
    return Comparison("param", key, op, value)


def tag(key: str, op: str, value: str | tuple[str | float, ...] | None) -> Comparison:
    return Comparison("tag", key, op, value)


def attr(key: str, op: str, value: str | float | tuple[str | float, ...] | None) -> Comparison:
    return Comparison("attribute", key, op, value)


def filter_error(text: str) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        parse_filter(text)
    assert info.value.code == "invalid_filter"
    assert info.value.field == "filter"
    return info.value


def order_error(items: list[str]) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        parse_order_by(items)
    assert info.value.code == "invalid_order_by"
    return info.value


# ---------------------------------------------------------------------------------------------
# Empty input


@pytest.mark.parametrize("text", ["", " ", "\n\t  \r\n"])
def test_an_empty_filter_is_none(text: str) -> None:
    assert parse_filter(text) is None


# ---------------------------------------------------------------------------------------------
# Operators and entities


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_every_numeric_operator_on_metrics(op: str) -> None:
    assert parse_filter(f"metrics.acc {op} 0.5") == metric("acc", op, 0.5)
    assert parse_filter(f"metrics.acc{op}0.5") == metric("acc", op, 0.5)  # no spaces needed


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("=", "="),
        ("!=", "!="),
        ("LIKE", "LIKE"),
        ("like", "LIKE"),
        ("ILIKE", "ILIKE"),
        ("iLike", "ILIKE"),
    ],
)
@pytest.mark.parametrize("entity", ["params", "tags"])
def test_string_operators_on_params_and_tags(entity: str, written: str, canonical: str) -> None:
    kind = "param" if entity == "params" else "tag"
    assert parse_filter(f"{entity}.model {written} 'lr%'") == Comparison(
        kind, "model", canonical, "lr%"
    )


def test_in_and_not_in_lists() -> None:
    assert parse_filter("params.opt IN ('adam', \"sgd\")") == param("opt", "IN", ("adam", "sgd"))
    assert parse_filter("tags.env not in ('dev')") == tag("env", "NOT IN", ("dev",))
    assert parse_filter("tags.env NOT\n   IN('a','b' , 'c')") == tag(
        "env", "NOT IN", ("a", "b", "c")
    )
    assert parse_filter("run_id in ('r1', 'r2')") == attr("run_id", "IN", ("r1", "r2"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params.lr IS NULL", param("lr", "IS NULL", None)),
        ("params.lr is not null", param("lr", "IS NOT NULL", None)),
        ("tags.team Is  Not\tNull", tag("team", "IS NOT NULL", None)),
        ("end_time IS NULL", attr("end_time", "IS NULL", None)),
        ("attributes.parent_run_id IS NOT NULL", attr("parent_run_id", "IS NOT NULL", None)),
        ("duration IS NOT NULL", attr("duration", "IS NOT NULL", None)),
        ("parent_run_id IS NULL", attr("parent_run_id", "IS NULL", None)),
    ],
)
def test_is_null_and_is_not_null(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("prefix", "entity"),
    [
        ("metrics", "metric"),
        ("metric", "metric"),
        ("METRICS", "metric"),
        ("params", "param"),
        ("param", "param"),
        ("parameters", "param"),
        ("tags", "tag"),
        ("tag", "tag"),
        ("attributes", "attribute"),
        ("attribute", "attribute"),
        ("attr", "attribute"),
        ("run", "attribute"),
    ],
)
def test_entity_prefixes_and_their_aliases(prefix: str, entity: str) -> None:
    if entity == "metric":
        assert parse_filter(f"{prefix}.loss < 1") == metric("loss", "<", 1.0)
    elif entity == "attribute":
        assert parse_filter(f"{prefix}.status = 'RUNNING'") == attr("status", "=", "RUNNING")
    else:
        assert parse_filter(f"{prefix}.k = 'v'") == Comparison(entity, "k", "=", "v")


@pytest.mark.parametrize("name", sorted(ATTRIBUTES))
def test_every_known_attribute_bare_and_prefixed(name: str) -> None:
    if name in NUMERIC_ATTRIBUTES:
        expected = attr(name, ">=", 10.0)
        assert parse_filter(f"{name} >= 10") == expected
        assert parse_filter(f"attributes.{name} >= 10") == expected
    else:
        expected = attr(name, "=", "x")
        assert parse_filter(f"{name} = 'x'") == expected
        assert parse_filter(f"attributes.{name} = 'x'") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("created > 1670628787527", attr("start_time", ">", 1670628787527.0)),
        ("attributes.Created > 1", attr("start_time", ">", 1.0)),
        ("Status = 'FINISHED'", attr("status", "=", "FINISHED")),
        ("attributes.`Run Name` ILIKE '%alpha%'", attr("run_name", "ILIKE", "%alpha%")),
        ('attributes."run name" = "a"', attr("run_name", "=", "a")),
        ("run.`run_id` = 'abc'", attr("run_id", "=", "abc")),
    ],
)
def test_attribute_names_are_normalised(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


# ---------------------------------------------------------------------------------------------
# Keys and literals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.`val loss` < 0.3", metric("val loss", "<", 0.3)),
        ("metrics.`f1.score` > 0.5", metric("f1.score", ">", 0.5)),
        ('metrics."2019-04-02 error rate" < 1', metric("2019-04-02 error rate", "<", 1.0)),
        ("tags.`mlflow.user` = ''", tag("mlflow.user", "=", "")),
        ("tags.mlflow.runName = 'x'", tag("mlflow.runName", "=", "x")),
        ("params.`it's \"odd\"` = 'y'", param('it\'s "odd"', "=", "y")),
        ("metrics.and > 1", metric("and", ">", 1.0)),  # keywords are fine as keys
        ("params.Model = 'x'", param("Model", "=", "x")),  # keys keep their case
        ("metrics.`ünï cödé` = 1", metric("ünï cödé", "=", 1.0)),
    ],
)
def test_keys_plain_dotted_and_quoted(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("0", 0.0),
        ("42", 42.0),
        ("3.25", 3.25),
        ("-7", -7.0),
        ("+7", 7.0),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("-.5", -0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("2.5E-3", 0.0025),
        ("-1e+2", -100.0),
        ("1670628787527", 1670628787527.0),
    ],
)
def test_numeric_literals(literal: str, value: float) -> None:
    result = parse_filter(f"metrics.m = {literal}")
    assert result == metric("m", "=", value)
    assert isinstance(result, Comparison)
    assert isinstance(result.value, float)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'single'", "single"),
        ('"double"', "double"),
        ('"it\'s"', "it's"),
        ("'say \"hi\"'", 'say "hi"'),
        ("'  padded  '", "  padded  "),
        ("'ünïcode ✓'", "ünïcode ✓"),
        ("'50%_off'", "50%_off"),
        ("'line\nbreak'", "line\nbreak"),
    ],
)
def test_string_literals(literal: str, value: str) -> None:
    assert parse_filter(f"params.p = {literal}") == param("p", "=", value)


# ---------------------------------------------------------------------------------------------
# AND, OR, parentheses

A = metric("a", ">", 1.0)
B = param("b", "=", "x")
C = tag("c", "!=", "y")
D = attr("status", "=", "FAILED")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.a > 1 AND params.b = 'x'", And((A, B))),
        ("metrics.a > 1 and params.b = 'x' And tags.c != 'y'", And((A, B, C))),
        ("metrics.a > 1 OR params.b = 'x' or tags.c != 'y'", Or((A, B, C))),
        # AND binds tighter than OR, on either side
        ("metrics.a > 1 OR params.b = 'x' AND tags.c != 'y'", Or((A, And((B, C))))),
        ("metrics.a > 1 AND params.b = 'x' OR tags.c != 'y'", Or((And((A, B)), C))),
        # parentheses regroup
        ("(metrics.a > 1 OR params.b = 'x') AND tags.c != 'y'", And((Or((A, B)), C))),
        (
            "(metrics.a > 1 OR params.b = 'x') AND (tags.c != 'y' OR status = 'FAILED')",
            And((Or((A, B)), Or((C, D)))),
        ),
        # redundant parentheses vanish and nested same-kind groups are flattened
        ("((metrics.a > 1))", A),
        ("metrics.a > 1 AND (params.b = 'x' AND tags.c != 'y')", And((A, B, C))),
        ("(metrics.a > 1 OR params.b = 'x') OR tags.c != 'y'", Or((A, B, C))),
        ("( metrics.a>1 )AND(params.b='x')", And((A, B))),
    ],
)
def test_precedence_and_parentheses(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


def test_nodes_are_frozen_and_hashable() -> None:
    expr = parse_filter("metrics.a > 1 AND params.b = 'x'")
    assert isinstance(expr, And)
    with pytest.raises(dataclasses.FrozenInstanceError):
        expr.items = ()  # type: ignore[misc]
    assert len({expr, parse_filter("metrics.a > 1 AND params.b = 'x'")}) == 1
    key = OrderKey("metric", "a")
    assert key.descending is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.descending = True  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Errors, with exact positions


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        # missing or wrong values
        ("metrics.accur > ", 16, "expected a value after '>', found end of input"),
        ("metrics.accuracy > AND", 19, "expected a value after '>', found 'AND'"),
        ("tags.x = NULL", 9, "use IS NULL"),
        ("metrics.x > 'high'", 12, "expected a number after '>' (metric 'x' holds numbers)"),
        ("params.lr = 0.01", 12, "expected a quoted string after '=' (param 'lr' holds strings)"),
        ("tags.t = 1", 9, "expected a quoted string"),
        ("start_time > '2024-01-01'", 13, "expected a number"),
        ("status = FINISHED", 9, "expected a value after '=', found 'FINISHED'"),
        ("params.p = `x`", 11, "expected a value after '='"),
        # operators the entity does not support
        ("metrics.x IN (1, 2)", 10, "metric 'x' does not support IN; use =, !=, <, <=, >, >="),
        ("metrics.x LIKE '1%'", 10, "does not support LIKE"),
        ("metrics.x IS NULL", 10, "does not support IS NULL"),
        ("params.lr > '0.1'", 10, "param 'lr' does not support >"),
        ("tags.t <= 'a'", 7, "tag 't' does not support <="),
        ("start_time LIKE '1%'", 11, "attribute 'start_time' does not support LIKE"),
        ("end_time IN (1)", 9, "does not support IN"),
        ("status IS NULL", 7, "attribute 'status' does not support IS NULL"),
        ("  run_id IS NOT NULL", 9, "does not support IS NOT NULL"),
        ("job_type IS NULL", 9, "attribute 'job_type' does not support IS NULL"),
        # malformed operators
        ("metrics.x == 1", 11, "expected a value after '='"),
        ("metrics.x <> 1", 11, "expected a value after '<', found '>'"),
        ("metrics.x ! 1", 10, "unexpected character '!'"),
        ("params.a NOT LIKE 'x'", 13, "expected IN after NOT, found 'LIKE'"),
        ("params.a IS 'x'", 12, "expected NULL or NOT NULL after IS"),
        ("params.a IS NOT 'x'", 16, "expected NULL after IS NOT"),
        ("params.a CONTAINS 'x'", 9, "expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE"),
        ("params.a", 8, "expected an operator"),
        ("metrics.x-1 > 0", 9, "expected an operator (=, !="),
        # IN lists
        ("params.a IN 'x'", 12, "expected '(' and a list of values after IN"),
        ("params.a IN ()", 13, "expected a value after '(' in the IN list, found ')'"),
        ("params.a NOT IN ('x',)", 21, "expected a value after ',' in the NOT IN list"),
        ("params.a IN ('x' 'y')", 17, "expected ',' or ')' in the IN list"),
        ("params.a IN ('x', 2)", 18, "expected a quoted string"),
        ("params.a IN ('x'", 16, "expected ',' or ')' in the IN list, found end of input"),
        # identifiers
        ("foo = 'x'", 0, "unknown attribute 'foo'"),
        ("attributes.colour = 'x'", 11, "unknown attribute 'colour'"),
        ("metrics.x > 1 AND bogus_attr = 1", 18, "unknown attribute 'bogus_attr'"),
        ("datasets.name = 'x'", 0, "filtering on datasets is not supported"),
        ("things.x = 'x'", 0, "unknown entity type 'things'"),
        ("metrics > 1", 7, "expected '.' and a key after 'metrics'"),
        ("metrics. > 1", 9, "expected a key after 'metrics.', found '>'"),
        ("metrics.5x > 1", 8, "malformed number '5x'"),
        ("metrics.5 > 1", 8, "expected a key after 'metrics.', found the number 5"),
        ("params.'x' = 'y'", 7, "expected a key after 'params.', found the string 'x'"),
        ("tags.a. = 'x'", 8, "expected the rest of the key after '.'"),
        ("metrics.`` > 1", 8, "expected a key, found an empty quoted key"),
        ("'x' = params.a", 0, "expected a condition"),
        ("= 1", 0, "expected a condition"),
        # structure
        ("metrics.a > 1 metrics.b > 2", 14, "expected AND, OR or end of input, found 'metrics'"),
        ("metrics.a > 1 AND", 17, "expected a condition"),
        ("metrics.a > 1 OR OR metrics.b > 1", 17, "expected a condition"),
        ("AND metrics.a > 1", 0, "expected a condition: an identifier such as metrics.accuracy"),
        ("metrics.a > 1 AND like = 'x'", 18, "expected a condition"),
        ("(metrics.a > 1", 14, "expected AND, OR or ')' to close the '(' at position 0"),
        ("((metrics.a > 1)", 16, "to close the '(' at position 0"),
        ("metrics.a > 1)", 13, "expected AND, OR or end of input, found ')'"),
        ("()", 1, "expected a condition"),
        ("NOT metrics.a > 1", 0, "found 'NOT' (negation is written != or NOT IN)"),
        # lexical errors, reported at their start
        ("params.x = 'abc", 11, "unterminated string"),
        ('params.x = "abc', 11, "unterminated string"),
        ("metrics.`val loss > 1", 8, "unterminated quoted key"),
        ("metrics.x > 1.2.3", 12, "malformed number '1.2.3'"),
        ("metrics.x > 0x1F", 12, "malformed number '0x1F'"),
        ("metrics.x > 1e999", 12, "out of range"),
        ("metrics.x > 1 && metrics.y > 1", 14, "unexpected character '&'"),
        ("metrics.x > 1 -- comment", 14, "unexpected character '-'"),
        ("metrics.x\u00a0> 1", 9, "unexpected character"),
        ("params.x = 'a\x00b'", 13, "NUL characters are not allowed"),
        ("metrics.x > 1 AND params.y = 'z' AND tags.w = 'unterminated", 46, "unterminated"),
    ],
)
def test_errors_name_the_position_and_what_was_expected(
    text: str, position: int, fragment: str
) -> None:
    error = filter_error(text)
    assert error.detail.startswith(f"at position {position}: "), error.detail
    assert fragment in error.detail, error.detail


def test_the_leftmost_error_is_reported() -> None:
    # An unterminated string later on does not hide an earlier mistake, and vice versa.
    assert filter_error("metrics.x > 'a' AND params.y = 'b").detail.startswith("at position 12:")
    assert filter_error("metrics.x > 1 AND params.y = 'b").detail.startswith("at position 29:")


def test_error_text_carries_code_and_field() -> None:
    error = filter_error("metrics.x >")
    assert str(error) == (
        "invalid_filter: at position 11: expected a value after '>', found end of input "
        "(field: filter)"
    )


# ---------------------------------------------------------------------------------------------
# Limits


def test_length_limit() -> None:
    head = "params.p = '"
    exact = head + "x" * (MAX_FILTER_LENGTH - len(head) - 1) + "'"
    assert len(exact) == MAX_FILTER_LENGTH
    result = parse_filter(exact)
    assert isinstance(result, Comparison)
    assert len(str(result.value)) == MAX_FILTER_LENGTH - len(head) - 1
    error = filter_error(exact + " ")
    assert error.detail.startswith(f"at position {MAX_FILTER_LENGTH}: ")
    assert f"expected at most {MAX_FILTER_LENGTH}" in error.detail


def test_comparison_limit() -> None:
    clause = "metrics.x > 1"
    most = " AND ".join([clause] * MAX_COMPARISONS)
    result = parse_filter(most)
    assert isinstance(result, And)
    assert len(result.items) == MAX_COMPARISONS
    error = filter_error(most + " OR " + clause)
    assert error.detail.startswith(f"at position {len(most) + 4}: too many comparisons")
    # IS NULL, IN and parenthesised comparisons count the same
    mixed = " OR ".join(["(params.a IS NULL)"] * MAX_COMPARISONS) + " OR params.a IN ('x')"
    assert "too many comparisons" in filter_error(mixed).detail


def test_depth_limit() -> None:
    inner = "metrics.x > 1"
    deepest = "(" * MAX_DEPTH + inner + ")" * MAX_DEPTH
    assert parse_filter(deepest) == metric("x", ">", 1.0)
    error = filter_error("(" * (MAX_DEPTH + 1) + inner + ")" * (MAX_DEPTH + 1))
    assert error.detail == (
        f"at position {MAX_DEPTH}: parentheses are nested more than {MAX_DEPTH} levels deep"
    )


@pytest.mark.parametrize(
    "text",
    [
        "(" * MAX_FILTER_LENGTH,
        ")" * MAX_FILTER_LENGTH,
        "a" * MAX_FILTER_LENGTH,
        "'" * MAX_FILTER_LENGTH,
        "'" * (MAX_FILTER_LENGTH - 1),
        "9" * MAX_FILTER_LENGTH,
        "metrics." + "a." * ((MAX_FILTER_LENGTH - 8) // 2),
        "params.a IN (" + "'x'," * ((MAX_FILTER_LENGTH - 20) // 4) + "'x')",
        "metrics.x > 1 AND " * (MAX_FILTER_LENGTH // 18),
        "(metrics.x > 1) OR " * (MAX_FILTER_LENGTH // 19),
    ],
)
def test_hostile_sizes_fail_or_pass_quickly(text: str) -> None:
    assert len(text) <= MAX_FILTER_LENGTH
    started = time.perf_counter()
    outcome: object
    try:
        outcome = parse_filter(text)
    except InvalidInputError as error:
        outcome = error.detail
    assert time.perf_counter() - started < 1.0
    if isinstance(outcome, str):
        assert outcome.startswith("at position ")


def test_over_long_input_is_refused_before_any_parsing() -> None:
    error = filter_error("(" * 1_000_000)
    assert error.detail.startswith(f"at position {MAX_FILTER_LENGTH}: ")


# ---------------------------------------------------------------------------------------------
# Hostile input: harmless literals or refusals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params.p = \"' OR '1'='1\"", param("p", "=", "' OR '1'='1")),
        ("tags.t = '1; DROP TABLE runs'", tag("t", "=", "1; DROP TABLE runs")),
        ('params.p = "x\'); DELETE FROM runs; --"', param("p", "=", "x'); DELETE FROM runs; --")),
        ("tags.`x' OR 1=1 --` = 'y'", tag("x' OR 1=1 --", "=", "y")),
        ("tags.\"; DROP TABLE runs\" = 'y'", tag("; DROP TABLE runs", "=", "y")),
        ("params.p LIKE '%'' OR ''1''=''1'", None),  # doubled quotes: not supported, refused
        ("run_name IN ('(SELECT 1)', 'a\\'')", None),  # backslash does not escape: refused
    ],
)
def test_injection_looking_values_stay_literal(text: str, expected: Comparison | None) -> None:
    if expected is None:
        filter_error(text)
    else:
        assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("params.p = '' OR '1'='1'", 17),
        ("metrics.x = 1; DROP TABLE runs", 13),
        ("metrics.x > (SELECT 1)", 12),
        ("metrics.x > 1 UNION SELECT * FROM users", 14),
        ("params.a IN (SELECT name FROM users)", 13),
        ("status = 'x' /* comment */", 13),
        ("status = 'x' OR 1=1", 16),
        ("metrics.x > 1 OR run_id = run_id", 26),
        ("params.p = 'a' || 'b'", 15),
        ("metrics.x > abs(1)", 12),
        ("metrics.x > 1e5 AND metrics.y > 1 AND exec('rm') = 1", 38),
    ],
)
def test_injection_looking_syntax_is_refused(text: str, position: int) -> None:
    assert filter_error(text).detail.startswith(f"at position {position}: ")


# ---------------------------------------------------------------------------------------------
# Order by


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("metrics.accuracy DESC", OrderKey("metric", "accuracy", True)),
        ("metrics.accuracy", OrderKey("metric", "accuracy", False)),
        ("attributes.start_time", OrderKey("attribute", "start_time", False)),
        ("params.lr ASC", OrderKey("param", "lr", False)),
        ("tags.`team name` desc", OrderKey("tag", "team name", True)),
        ('tags."mlflow.user" Desc', OrderKey("tag", "mlflow.user", True)),
        ("tags.mlflow.user asc", OrderKey("tag", "mlflow.user", False)),
        ("  start_time   DESC  ", OrderKey("attribute", "start_time", True)),
        ("created DESC", OrderKey("attribute", "start_time", True)),
        ("run_name", OrderKey("attribute", "run_name", False)),
        ("metric.`val loss`", OrderKey("metric", "val loss", False)),
    ],
)
def test_order_by_items(item: str, expected: OrderKey) -> None:
    assert parse_order_by([item]) == [expected]


def test_order_by_keeps_the_order_of_its_items() -> None:
    assert parse_order_by([]) == []
    assert parse_order_by(["metrics.a DESC", "params.b", "end_time desc"]) == [
        OrderKey("metric", "a", True),
        OrderKey("param", "b", False),
        OrderKey("attribute", "end_time", True),
    ]


@pytest.mark.parametrize(
    ("items", "field", "position", "fragment"),
    [
        ([""], "order_by.0", 0, "expected an identifier such as metrics.accuracy"),
        (["   "], "order_by.0", 3, "found end of input"),
        (["metrics.a", "metrics.b DESC; DROP TABLE runs"], "order_by.1", 14, "unexpected char"),
        (["metrics.a DESC ASC"], "order_by.0", 15, "expected end of input, found 'ASC'"),
        (["metrics.a DOWN"], "order_by.0", 10, "expected ASC, DESC or end of input"),
        (["metrics.a, metrics.b"], "order_by.0", 9, "expected ASC, DESC or end of input"),
        (["metrics.a DESC NULLS LAST"], "order_by.0", 15, "expected end of input"),
        (["(SELECT 1)"], "order_by.0", 0, "expected an identifier"),
        (["metrics.a > 1"], "order_by.0", 10, "expected ASC, DESC or end of input"),
        (["RANDOM()"], "order_by.0", 0, "unknown attribute 'RANDOM'"),
        (["1"], "order_by.0", 0, "expected an identifier"),
        (["colour"], "order_by.0", 0, "unknown attribute 'colour'"),
        (["datasets.name"], "order_by.0", 0, "datasets is not supported"),
        (["tags.`open"], "order_by.0", 5, "unterminated quoted key"),
        (["metrics"], "order_by.0", 7, "expected '.' and a key after 'metrics'"),
        (["params.a", "params.b", "params.a DESC"], "order_by.2", 0, "already ordered by"),
        (["created", "start_time"], "order_by.1", 0, "order_by.0"),
    ],
)
def test_order_by_errors(items: list[str], field: str, position: int, fragment: str) -> None:
    error = order_error(items)
    assert error.field == field
    assert error.detail.startswith(f"at position {position}: "), error.detail
    assert fragment in error.detail, error.detail


def test_order_by_limits() -> None:
    assert len(parse_order_by([f"metrics.m{i}" for i in range(MAX_ORDER_BY_ITEMS)])) == 20
    error = order_error([f"metrics.m{i}" for i in range(MAX_ORDER_BY_ITEMS + 1)])
    assert error.field == "order_by"
    long_item = "metrics." + "m" * MAX_ORDER_BY_LENGTH
    error = order_error(["metrics.a", long_item])
    assert error.field == "order_by.1"
    assert error.detail.startswith(f"at position {MAX_ORDER_BY_LENGTH}: ")


def test_nullable_attributes_are_known_attributes() -> None:
    assert NULLABLE_ATTRIBUTES <= ATTRIBUTES
    assert NUMERIC_ATTRIBUTES <= ATTRIBUTES
