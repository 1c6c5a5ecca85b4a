"""Prebuilt statements run on the database driver's own cursor, for the hottest paths.

SQLAlchemy's execution of even a compiled, cached statement (execution context, events,
result wrapping) cost about ten times the database's own work for a one-row lookup, and
its row-by-row result wrapping dominated reading long metric histories. A ``DriverStatement``
is compiled by SQLAlchemy once per dialect (so its SQL is the dialect's own) and then run
on the driver's cursor of the caller's connection, inside the caller's transaction.

Only for statements whose parameters and results need no type conversion (strings,
numbers, booleans): nothing here applies SQLAlchemy's type processors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection


class DriverStatement:
    """A prebuilt statement, compiled once per dialect and run on the driver's own cursor
    (see the module's note)."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: dict[str, _DriverSql] = {}

    def execute(self, conn: Connection, params: dict[str, Any]) -> Any:
        """The driver's cursor, executed (read its rows with ``fetchone``/``fetchall``)."""
        found = self._compiled.get(conn.dialect.name)
        if found is None:
            found = self._compiled[conn.dialect.name] = _DriverSql.of(self.statement, conn)
        values = {**found.defaults, **params}
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        if found.order is None:  # named parameters (psycopg)
            cursor.execute(found.sql, values)
        else:  # positional ones (sqlite3)
            cursor.execute(found.sql, tuple(values[name] for name in found.order))
        return cursor


@dataclass(frozen=True)
class _DriverSql:
    sql: str
    order: tuple[str, ...] | None  # parameter names in order, for a positional driver
    defaults: dict[str, Any]  # values the statement carries itself (SQLite's "OFFSET 0")

    @classmethod
    def of(cls, statement: Any, conn: Connection) -> _DriverSql:
        compiled = statement.compile(dialect=conn.dialect)
        names = set(compiled.bind_names.values())
        defaults = {
            name: bind.value
            for name, bind in compiled.binds.items()
            if name in names and bind.value is not None
        }
        order = tuple(compiled.positiontup or ()) if conn.dialect.positional else None
        return cls(str(compiled), order, defaults)
