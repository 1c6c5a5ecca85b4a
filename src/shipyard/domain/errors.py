"""The error vocabulary shared by the server and the SDK.

Each error carries a stable machine ``code`` (clients branch on it), a human ``detail`` and,
when one field of the request is at fault, that ``field`` as a dotted path. The API maps each
class to an HTTP status; the SDK maps a problem response back to the same class by its code,
so ``except NotFoundError`` works the same on both sides of the wire.
"""

from __future__ import annotations


class ShipyardError(Exception):
    """Base class: something the caller can act on."""

    default_code = "error"
    status = 500

    def __init__(self, detail: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.field = field
        self.request_id: str | None = None  # set by the SDK from the server's response

    def __str__(self) -> str:
        where = f" (field: {self.field})" if self.field else ""
        return f"{self.code}: {self.detail}{where}"


class InvalidInputError(ShipyardError):
    """The request is malformed or a field holds a value that is not allowed."""

    default_code = "invalid_input"
    status = 400


class UnauthenticatedError(ShipyardError):
    """No valid credential: missing, unknown, expired or revoked token, or disabled user."""

    default_code = "unauthenticated"
    status = 401


class ForbiddenError(ShipyardError):
    """The caller is known but may not perform this action at this scope."""

    default_code = "forbidden"
    status = 403


class NotFoundError(ShipyardError):
    default_code = "not_found"
    status = 404


class ConflictError(ShipyardError):
    """The request collides with existing state (a duplicate name, a deleted resource)."""

    default_code = "conflict"
    status = 409


class GoneError(ShipyardError):
    """The resource existed but can no longer be reached (e.g. past its retention period)."""

    default_code = "gone"
    status = 410


class PayloadTooLargeError(ShipyardError):
    default_code = "payload_too_large"
    status = 413


class UnavailableError(ShipyardError):
    """A dependency (the store, the storage) does not answer."""

    default_code = "unavailable"
    status = 503


class StorageAccessError(ShipyardError):
    """A storage (an S3 bucket, a datastore) refused the credentials Shipyard holds for it.

    403, because retrying cannot help and the fix is on the caller's side (the credentials
    configured for that storage), but not a ``ForbiddenError``: that one means Shipyard's own
    authorization refused the caller, and the audit log and clients must not confuse the two.
    The SDK raises it as a ``ForbiddenError`` with code ``storage_access_denied``.
    """

    default_code = "storage_access_denied"
    status = 403


class InsufficientStorageError(ShipyardError):
    """The storage has no room left (disk full, quota reached); nothing partial was kept."""

    default_code = "storage_full"
    status = 507


class EnvironmentBuildError(ShipyardError):
    """An environment did not build (a requirement that does not resolve, a Python version
    this machine lacks): the user's spec is at fault, so 422, with the end of the build log."""

    default_code = "environment_build_failed"
    status = 422

    def __init__(
        self,
        detail: str,
        *,
        log_tail: str = "",
        code: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(detail, code=code, field=field)
        self.log_tail = log_tail


_BY_STATUS: dict[int, type[ShipyardError]] = {
    cls.status: cls
    for cls in (
        InvalidInputError,
        UnauthenticatedError,
        ForbiddenError,
        NotFoundError,
        ConflictError,
        GoneError,
        PayloadTooLargeError,
        UnavailableError,
        InsufficientStorageError,
    )
}


def error_for_status(status: int) -> type[ShipyardError]:
    """The error class the SDK raises for an HTTP status (codes refine it, classes don't)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 400 <= status < 500:
        return InvalidInputError
    return ShipyardError
