"""Insert-or-update, the one statement whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str],
    where: Any = None,
) -> None:
    """Insert ``rows``; where ``keys`` collide, overwrite the ``update`` columns (only when
    ``where(existing, incoming)`` holds, if given). ``rows`` must not repeat a key."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(table).values(list(rows))
    excluded = statement.excluded
    condition: ColumnElement[bool] | None = where(table.c, excluded) if where else None
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={column: excluded[column] for column in update},
        where=condition,
    )
    session.execute(statement)
