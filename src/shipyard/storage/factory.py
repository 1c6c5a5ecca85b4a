"""The one place a storage URI becomes a storage implementation."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from shipyard.domain.errors import InvalidInputError
from shipyard.storage.base import Storage
from shipyard.storage.local import LocalStorage


def local_path(uri: str) -> Path | None:
    """The folder a ``file://`` URI or a plain absolute path names; None for other schemes."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            return None
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and uri.startswith("/"):
        return Path(uri)
    return None


def require_local_path(uri: str, *, field: str = "storage.uri") -> Path:
    path = local_path(uri)
    if path is not None:
        return path
    scheme = urlparse(uri).scheme or "(none)"
    raise InvalidInputError(
        f"storage URI {uri!r} has scheme {scheme}; this server supports absolute folder paths "
        "and file:// URIs",
        code="unsupported_storage",
        field=field,
    )


def open_storage(uri: str, *, field: str = "storage.uri") -> Storage:
    return LocalStorage(require_local_path(uri, field=field))
