"""The audit log: record every change and every denial; read it back with filters."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.audit import AuditEventRead
from shipyard.schemas.common import Page
from shipyard.store import audit as store
from shipyard.store import workspaces as workspace_store
from shipyard.store.audit import AuditEventRow
from shipyard.store.base import utcnow
from shipyard.store.database import Database

log = logging.getLogger(__name__)

# On the table, run on the session's connection: an ORM insert goes through the ORM's bulk
# machinery, which cost more than the statement.
_INSERT_EVENT = insert(cast(Table, AuditEventRow.__table__))

# Reads that reveal secrets are recorded like changes.
SENSITIVE_SUFFIXES = ("secrets/read", "/action")


@dataclass
class AuditEntry:
    """What the API knows of a request once it is answered."""

    action: str
    method: str
    resource: str
    status: int
    denied: bool
    principal_id: str | None = None
    principal_name: str | None = None
    workspace: str | None = None
    client_address: str | None = None
    request_id: str | None = None
    # Telemetry a run logs (metric points, params, tags) is not an audited change: it arrives
    # thousands of times a minute and the run itself records it. Its denials still are.
    telemetry: bool = False
    # Already written, in the transaction of the change itself (see ``insert_event``).
    recorded: bool = False

    @property
    def refused(self) -> bool:
        """Denied by authorization, or by a service's own check (401/403 either way)."""
        return self.denied or self.status in (401, 403)

    @property
    def worth_recording(self) -> bool:
        # A POST that only reads (a search) is not a change.
        changes = (
            self.method not in ("GET", "HEAD", "OPTIONS")
            and not self.action.endswith("/read")
            and not self.telemetry
        )
        wanted = self.refused or changes or self.action.endswith(SENSITIVE_SUFFIXES)
        return wanted and not self.recorded

    @property
    def outcome(self) -> str:
        if self.refused:
            return "denied"
        return "succeeded" if self.status < 400 else "failed"


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None = None
    until: datetime | None = None
    principal: str | None = None
    action: str | None = None
    outcome: str | None = None


def insert_event(session: Session, entry: AuditEntry, workspace_id: str | None) -> None:
    """Write ``entry`` in ``session``'s transaction. One Core insert (no ORM unit of work):
    this runs for every change a client makes.

    A service whose change is the request's whole effect (creating a run) writes the
    request's event in its own transaction, once it knows the answer's ``entry.status``:
    then the event is stored exactly when the change is, with one commit instead of two.
    The service marks the entry ``recorded`` after its commit, so the request context
    middleware does not write it again; if the transaction fails, the middleware records
    the failure as for any request."""
    session.connection().execute(
        _INSERT_EVENT,
        {
            "at": utcnow(),
            "principal_id": entry.principal_id,
            "principal_name": entry.principal_name,
            "action": entry.action,
            "method": entry.method,
            "resource": entry.resource[:2000],
            "workspace_id": workspace_id,
            "workspace": entry.workspace if workspace_id else None,
            "outcome": entry.outcome,
            "status": entry.status,
            "client_address": entry.client_address,
            "request_id": entry.request_id,
        },
    )


def event_read(row: AuditEventRow) -> AuditEventRead:
    return AuditEventRead(
        id=row.id,
        at=row.at,
        principal=row.principal_name,
        action=row.action,
        method=row.method,
        resource=row.resource,
        workspace=row.workspace,
        outcome=row.outcome,
        status=row.status,
        client_address=row.client_address,
        request_id=row.request_id,
    )


class AuditService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, entry: AuditEntry) -> None:
        with self.db.write() as session:
            workspace_id = (
                workspace_store.get_workspace_id(session, entry.workspace)
                if entry.workspace
                else None
            )
            insert_event(session, entry, workspace_id)

    def list(
        self,
        *,
        workspace: str | None,
        filters: AuditFilter,
        page_token: str | None,
        max_results: int,
    ) -> Page[AuditEventRead]:
        before = _decode(page_token)
        with self.db.read() as session:
            workspace_id = None
            if workspace is not None:
                row = workspace_store.get_workspace(session, workspace)
                workspace_id = row.id if row else "-"
            rows = store.list_events(
                session,
                workspace_id=workspace_id,
                before_id=before,
                limit=max_results + 1,
                since=filters.since,
                until=filters.until,
                principal=filters.principal,
                action=filters.action,
                outcome=filters.outcome,
            )
            page = rows[:max_results]
            token = str(page[-1].id) if len(rows) > max_results and page else None
            return Page[AuditEventRead](items=[event_read(r) for r in page], next_page_token=token)


def _decode(token: str | None) -> int | None:
    if not token:
        return None
    if not token.isdigit():
        raise InvalidInputError(
            "page_token is not a token this server issued",
            code="invalid_page_token",
            field="page_token",
        )
    return int(token)
