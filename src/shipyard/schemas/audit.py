"""Audit event bodies."""

from __future__ import annotations

from datetime import datetime

from shipyard.schemas.common import ResponseBody


class AuditEventRead(ResponseBody):
    id: int
    at: datetime
    principal: str | None = None
    action: str
    method: str
    resource: str
    workspace: str | None = None
    outcome: str
    status: int
    client_address: str | None = None
    request_id: str | None = None
