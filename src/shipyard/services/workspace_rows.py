"""How a service finds the workspace a call names: its row, or a 404 naming the workspace."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shipyard.domain.errors import NotFoundError
from shipyard.store.workspaces import WorkspaceRow, get_workspace


def live_workspace(session: Session, name: str) -> WorkspaceRow:
    """The workspace, unless it does not exist or is deleted (restorable or not)."""
    row = get_workspace(session, name)
    if row is None or row.deleted_at is not None:
        raise _missing(name)
    return row


def workspace_row(session: Session, name: str) -> WorkspaceRow:
    """The workspace, deleted or not: how the job, pipeline and lineage services have always
    looked it up (their callers authorized the call against the workspace already)."""
    row = get_workspace(session, name)
    if row is None:
        raise _missing(name)
    return row


def _missing(name: str) -> NotFoundError:
    return NotFoundError(
        f"workspace {name!r} does not exist", code="workspace_not_found", field="workspace"
    )
