"""Run search: a parsed filter and order-by (``domain.search``) turned into one SQL query.

Every value reaches the database as a bound parameter; keys and operators come from the
parser's closed vocabulary. Metrics are matched on their latest value (``latest_metrics``),
params and tags by key, each through an EXISTS subquery so a run matches once however many
conditions name it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, not_, or_, select, true
from sqlalchemy.orm import aliased

from shipyard.domain.errors import InvalidInputError
from shipyard.domain.search import And, Comparison, Expr, Or, OrderKey
from shipyard.store.tracking import JobRow, JobTagRow, LatestMetricRow, ParamRow
from shipyard.store.users import UserRow

# MLflow's run statuses, accepted in filters beside Shipyard's own.
MLFLOW_STATUS = {
    "RUNNING": "Running",
    "SCHEDULED": "Queued",
    "FINISHED": "Completed",
    "FAILED": "Failed",
    "KILLED": "Canceled",
}

_COLUMNS: dict[str, Any] = {
    "run_id": JobRow.id,
    "run_name": JobRow.name,
    "status": JobRow.status,
    "lifecycle_stage": JobRow.lifecycle_stage,
    "experiment_id": JobRow.experiment_id,
    "parent_run_id": JobRow.parent_id,
    "job_type": JobRow.job_type,
    "start_time": JobRow.start_time,
    "end_time": JobRow.end_time,
}


def where_clause(expr: Expr | None) -> ColumnElement[bool]:
    if expr is None:
        return true()
    if isinstance(expr, And):
        return and_(*(where_clause(item) for item in expr.items))
    if isinstance(expr, Or):
        return or_(*(where_clause(item) for item in expr.items))
    return _comparison(expr)


def compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    """``column <op> value`` for a filter operator of MLflow's grammar (runs and models)."""
    match op:
        case "=":
            return column == value  # type: ignore[no-any-return]
        case "!=":
            return column != value  # type: ignore[no-any-return]
        case "<":
            return column < value  # type: ignore[no-any-return]
        case "<=":
            return column <= value  # type: ignore[no-any-return]
        case ">":
            return column > value  # type: ignore[no-any-return]
        case ">=":
            return column >= value  # type: ignore[no-any-return]
        case "LIKE":
            return column.like(value)  # type: ignore[no-any-return]
        case "ILIKE":
            return column.ilike(value)  # type: ignore[no-any-return]
        case "IN":
            return column.in_(list(value))  # type: ignore[no-any-return]
        case "NOT IN":
            return column.not_in(list(value))  # type: ignore[no-any-return]
        case "IS NULL":
            return column.is_(None)  # type: ignore[no-any-return]
        case "IS NOT NULL":
            return column.is_not(None)  # type: ignore[no-any-return]
    raise InvalidInputError(
        f"operator {op} is not supported", code="invalid_filter", field="filter"
    )


def _comparison(c: Comparison) -> ColumnElement[bool]:
    if c.entity == "metric":
        return exists().where(
            LatestMetricRow.job_id == JobRow.id,
            LatestMetricRow.key == c.key,
            LatestMetricRow.is_nan.is_(False),
            compare(LatestMetricRow.value, c.op, c.value),
        )
    if c.entity in ("param", "tag"):
        row: Any = ParamRow if c.entity == "param" else JobTagRow
        keyed = exists().where(row.job_id == JobRow.id, row.key == c.key)
        if c.op == "IS NULL":
            return not_(keyed)
        if c.op == "IS NOT NULL":
            return keyed
        return exists().where(
            row.job_id == JobRow.id, row.key == c.key, compare(row.value, c.op, c.value)
        )
    return _attribute(c)


def _attribute(c: Comparison) -> ColumnElement[bool]:
    if c.key in ("start_time", "end_time") and c.value is not None:
        return compare(_COLUMNS[c.key], c.op, _from_ms(c.value))
    if c.key == "status":
        return compare(JobRow.status, c.op, _status(c.value))
    if c.key == "user_id":
        users = select(UserRow.id).where(compare(UserRow.name, c.op, c.value))
        return JobRow.created_by.in_(users.scalar_subquery())
    if c.key in _COLUMNS:
        return compare(_COLUMNS[c.key], c.op, c.value)
    raise InvalidInputError(
        f"runs cannot be searched by {c.key} yet", code="invalid_filter", field="filter"
    )


def _from_ms(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value) / 1000, UTC)


def _status(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(MLFLOW_STATUS.get(str(v).upper(), v) for v in value)
    if isinstance(value, str):
        return MLFLOW_STATUS.get(value.upper(), value)
    return value


def ordered(query: Select[Any], keys: list[OrderKey]) -> Select[Any]:
    """Apply the order keys (missing metrics/params/tags sort last), then a stable tie-break:
    newest first, then by id."""
    for index, key in enumerate(keys):
        column: Any
        if key.entity == "attribute":
            if key.key not in _COLUMNS:
                raise InvalidInputError(
                    f"runs cannot be ordered by {key.key}",
                    code="invalid_order_by",
                    field=f"order_by.{index}",
                )
            column = _COLUMNS[key.key]
        else:
            table: Any = {"metric": LatestMetricRow, "param": ParamRow, "tag": JobTagRow}[
                key.entity
            ]
            joined = aliased(table, name=f"order_{index}")
            query = query.outerjoin(joined, and_(joined.job_id == JobRow.id, joined.key == key.key))
            column = joined.value
        direction = column.desc() if key.descending else column.asc()
        query = query.order_by(column.is_(None), direction)
    return query.order_by(JobRow.start_time.desc(), JobRow.id)
