"""ASGI middleware: request ids, the body size limit, the access log and the audit log."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.api.logging import request_id_var
from shipyard.services.audit import AuditEntry, AuditService

log = logging.getLogger("shipyard.access")

REQUEST_ID_HEADER = "x-request-id"
# A client may bring its own request id (to follow a call across services) if it is tame.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# File uploads (a PUT of raw bytes to an artifact path) stream to storage under their own,
# larger limit; the route enforces it again byte by byte while it writes.
_UPLOAD_PATH = re.compile(r"/(mlflow-)?artifacts/")


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int | None = None,
        audit: AuditService | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes or max_body_bytes
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        recorded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, recorded
            if message["type"] == "http.response.start":
                status = message["status"]
                # Recorded before the client hears back, so a client that reads the audit
                # log right after its request finds the request there.
                recorded = True
                await self._record(scope, status)
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, self._limited(scope, receive), send_with_id)
        finally:
            if not recorded:  # no response was started: an unexpected error
                await self._record(scope, status)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)

    async def _record(self, scope: Scope, status: int) -> None:
        """One audit event for the request, once its status is known (the authz dependency
        started it in the request's state; routes that need no token have none)."""
        entry = (scope.get("state") or {}).get("audit")
        if self.audit is None or not isinstance(entry, AuditEntry):
            return
        entry.status = status
        if not entry.worth_recording:
            return
        try:
            await run_in_threadpool(self.audit.record, entry)
        except Exception:  # the response is already sent; losing the server would be worse
            log.exception("writing the audit event failed")

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        if scope["method"] == "PUT" and _UPLOAD_PATH.search(scope["path"]):
            limit = self.max_upload_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise_too_large = True
                break
        else:
            raise_too_large = False
        seen = 0

        async def receive_limited() -> Message:
            nonlocal seen
            if raise_too_large:
                raise _too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # a chunked body with no Content-Length
                    raise _too_large(limit)
            return message

        return receive_limited


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the request body exceeds the limit of {limit} bytes")


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER.encode():
            candidate = str(value.decode("latin-1"))
            if _CLIENT_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex
