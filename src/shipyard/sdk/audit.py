"""``client.audit``: the audit log of changes, denials and secret reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.audit import AuditEventRead
from shipyard.sdk.http import HttpSession

AuditEvent = AuditEventRead


def _when(value: datetime | str | None, field: str) -> str | None:
    """An ISO 8601 time for the query; a time without a zone is taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidInputError(
                f"{field} {value!r} is not an ISO 8601 time such as 2025-01-31T09:00:00Z",
                code="invalid_time",
                field=field,
            ) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


class AuditOperations:
    """Who did what, when, and with what outcome; newest first.

    Every change is recorded, and every denied request; ``list()`` reads them back (the
    whole server's log needs ``audit/read`` at global scope, a workspace's log
    ``workspaces/audit/read`` there). Times without a zone are UTC.

    Example::

        from datetime import UTC, datetime, timedelta
        since = datetime.now(UTC) - timedelta(days=1)
        for event in client.audit.list(workspace="churn", since=since, outcome="denied"):
            print(event.at, event.principal, event.action, event.resource)
    """

    def __init__(self, http: HttpSession) -> None:
        self._http = http

    def list(
        self,
        workspace: str | None = None,
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        principal: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[AuditEvent]:
        """Events at or after ``since`` and before ``until``, of one ``principal`` (a user or
        service principal name), one ``action`` (e.g. ``workspaces/write``) and one
        ``outcome`` (``succeeded``, ``failed`` or ``denied``), fetched page by page."""
        params = {
            "since": _when(since, "since"),
            "until": _when(until, "until"),
            "principal": principal,
            "action": action,
            "outcome": outcome,
            "max_results": page_size,
        }
        path = (
            "/api/v1/audit"
            if workspace is None
            else f"/api/v1/workspaces/{quote(workspace, safe='')}/audit"
        )
        return self._http.iterate(path, AuditEvent, params)
