"""Model searches (``domain.model_search``) as SQL: bound values only, names from a closed map.

Tags and params are JSON objects on their rows; a condition on one reads the key with the
dialect's JSON operator (``->>`` on PostgreSQL, ``json_extract`` on SQLite). A missing key
reads as NULL, so it matches no comparison, ``!=`` included, as in MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, true

from shipyard.domain.errors import InvalidInputError
from shipyard.domain.model_search import Condition, OrderKey
from shipyard.store.run_search import compare

# Attributes compared as times: the filter gives milliseconds since the epoch.
TIME_ATTRIBUTES = frozenset({"creation_timestamp", "last_updated_timestamp"})


def _from_ms(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_from_ms(v) for v in value)
    try:
        return datetime.fromtimestamp(float(value) / 1000, UTC)
    except (OverflowError, ValueError, OSError) as exc:
        raise InvalidInputError(
            f"{value!r} is not a time in milliseconds since the epoch",
            code="invalid_filter",
            field="filter",
        ) from exc


def where(
    conditions: Sequence[Condition],
    columns: Mapping[str, Any],
    json_columns: Mapping[str, Any],
    values: Mapping[str, Mapping[str, str]] | None = None,
    absent_differs: frozenset[str] = frozenset(),
) -> ColumnElement[bool]:
    """All ``conditions``: attributes through ``columns``, tags/params through the JSON
    ``json_columns`` by entity. ``values`` rewrites attribute values (status spellings).
    For the tag keys in ``absent_differs``, a missing tag counts as ``!=`` any value."""
    clauses: list[ColumnElement[bool]] = []
    for condition in conditions:
        value: Any = condition.value
        if condition.entity == "attribute":
            column = columns.get(condition.key)
            if column is None:
                raise InvalidInputError(
                    f"cannot search by {condition.key}", code="invalid_filter", field="filter"
                )
            if condition.key in TIME_ATTRIBUTES:
                value = _from_ms(value)
            elif condition.key in (values or {}):
                value = _rewrite(value, (values or {})[condition.key])
            clauses.append(compare(column, condition.op, value))
            continue
        json_column = json_columns.get(condition.entity)
        if json_column is None:
            raise InvalidInputError(
                f"cannot search by {condition.entity}s", code="invalid_filter", field="filter"
            )
        column = json_column[condition.key].as_string()
        clause = compare(column, condition.op, value)
        if condition.op == "!=" and condition.key in absent_differs:
            clause = or_(column.is_(None), clause)
        clauses.append(clause)
    return and_(true(), *clauses)


def _rewrite(value: Any, spellings: Mapping[str, str]) -> Any:
    if isinstance(value, tuple):
        return tuple(spellings.get(str(v).upper(), v) for v in value)
    return spellings.get(str(value).upper(), value)


def ordered(
    query: Select[Any], keys: Sequence[OrderKey], columns: Mapping[str, Any]
) -> Select[Any]:
    for key in keys:
        column = columns[key.key]
        query = query.order_by(column.desc() if key.descending else column.asc())
    return query
