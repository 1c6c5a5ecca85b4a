"""What a page of runs holds (params, tags, latest metrics, whether they have inputs), read
in one statement.

A search or a listing answers up to thousands of runs at once. Reading their details as one
query per kind, each with its own ``IN (...)`` of every run id, cost more than the search
itself: SQLAlchemy builds and expands an ``IN`` of that many bound values per query. Here
the ids travel as ONE bound value (a JSON array read by ``json_each`` on SQLite, an array
on PostgreSQL, the one place the spelling differs), and the kinds come back together as
``UNION ALL`` branches of a statement built once per dialect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Connection,
    Float,
    Integer,
    String,
    Text,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from shipyard.store.run_inputs import RunDatasetInputRow, RunModelInputRow
from shipyard.store.tracking import JobTagRow, LatestMetricRow, ParamRow

# A latest value as read: (key, step, timestamp, value or None, is_nan).
LatestRow = tuple[str, int, int, float | None, bool]


@dataclass
class RunDetails:
    """What runs logged, by run id."""

    params: dict[str, dict[str, str]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    metrics: dict[str, list[LatestRow]] = field(default_factory=dict)  # by key
    # Runs that consumed datasets or models (read in full only for them: few runs do).
    with_inputs: set[str] = field(default_factory=set)


_PARAM, _TAG, _METRIC, _INPUT = 0, 1, 2, 3


def _of_ids(column: Any, dialect: str) -> ColumnElement[bool]:
    """``column`` is one of the ids bound as ``ids``."""
    if dialect == "postgresql":
        return column == any_(bindparam("ids", type_=postgresql.ARRAY(String)))  # type: ignore[no-any-return]
    ids = func.json_each(bindparam("ids", type_=Text)).table_valued("value")
    return column.in_(select(ids.c.value))  # type: ignore[no-any-return]


def _statement(dialect: str) -> Any:
    def part(number: int) -> Any:
        return type_coerce(literal_column(str(number)), Integer).label("part")

    # Typed NULLs for the columns a branch has not: PostgreSQL types a bare NULL as text.
    no_text, no_number = cast(null(), Text), cast(null(), Float)
    no_int, no_flag = cast(null(), BigInteger), cast(null(), Boolean)
    param, tag, latest = ParamRow, JobTagRow, LatestMetricRow
    datasets, models = RunDatasetInputRow, RunModelInputRow
    return union_all(
        select(
            part(_PARAM),
            param.job_id,
            param.key,
            type_coerce(param.value, Text).label("text"),
            no_number.label("number"),
            no_int.label("step"),
            no_int.label("timestamp"),
            no_flag.label("is_nan"),
        ).where(_of_ids(param.job_id, dialect)),
        select(
            part(_TAG), tag.job_id, tag.key, tag.value, no_number, no_int, no_int, no_flag
        ).where(_of_ids(tag.job_id, dialect)),
        select(
            part(_METRIC),
            latest.job_id,
            latest.key,
            no_text,
            latest.value,
            latest.step,
            latest.timestamp,
            latest.is_nan,
        ).where(_of_ids(latest.job_id, dialect)),
        select(part(_INPUT), datasets.job_id, no_text, no_text, no_number, no_int, no_int, no_flag)
        .where(_of_ids(datasets.job_id, dialect))
        .distinct(),
        select(part(_INPUT), models.job_id, no_text, no_text, no_number, no_int, no_int, no_flag)
        .where(_of_ids(models.job_id, dialect))
        .distinct(),
    )


_STATEMENTS = {name: _statement(name) for name in ("sqlite", "postgresql")}


def run_details(conn: Connection | Session, job_ids: list[str]) -> RunDetails:
    details = RunDetails()
    if not job_ids:
        return details
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    ids: Any = job_ids if dialect == "postgresql" else json.dumps(job_ids)
    params, tags, metrics = details.params, details.tags, details.metrics
    rows = conn.execute(_STATEMENTS[dialect], {"ids": ids}).all()  # fetched at once, not by row
    for part, job_id, key, text, number, step, timestamp, is_nan in rows:
        if part == _PARAM:
            params.setdefault(job_id, {})[key] = text
        elif part == _TAG:
            tags.setdefault(job_id, {})[key] = text
        elif part == _METRIC:
            metrics.setdefault(job_id, []).append((key, step, timestamp, number, is_nan))
        else:
            details.with_inputs.add(job_id)
    for found in metrics.values():
        found.sort()
    return details
