"""The one place a storage URI becomes a storage implementation.

``file:///srv/data`` or ``/srv/data`` → a folder (``LocalStorage``); ``s3://bucket/prefix`` →
an S3-compatible bucket (``S3Storage``, needs the ``[s3]`` extra). Connection settings for S3
come in as ``S3Options`` from the caller: nothing here reads settings or the environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, unquote, urlparse, urlsplit

from shipyard.domain.errors import InvalidInputError
from shipyard.storage.base import Storage
from shipyard.storage.local import LocalStorage
from shipyard.storage.paths import clean_relative
from shipyard.storage.s3_options import S3Options

__all__ = ["S3Options", "join_uri", "local_path", "open_storage", "require_local_path"]

#: S3's bucket naming rules (3-63 lowercase letters, digits, dots and hyphens).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


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


def open_storage(uri: str, *, s3: S3Options | None = None, field: str = "storage.uri") -> Storage:
    """The storage rooted at ``uri``; ``s3`` holds the connection settings for ``s3://``."""
    path = local_path(uri)
    if path is not None:
        return LocalStorage(path)
    scheme = urlsplit(uri).scheme
    if scheme != "s3":
        raise InvalidInputError(
            f"storage URI {uri!r} has scheme {scheme or '(none)'}; this server supports "
            "absolute folder paths, file:// and s3:// URIs",
            code="unsupported_storage",
            field=field,
        )
    bucket, prefix = parse_s3_uri(uri, field=field)
    try:
        # Imported here so the base install (no [s3] extra) still serves local storage.
        from shipyard.storage.s3 import S3Storage
    except ImportError as exc:
        raise InvalidInputError(
            f"storage URI {uri!r} needs S3 support, which this server lacks; install shipyard[s3]",
            code="unsupported_storage",
            field=field,
        ) from exc
    return S3Storage(bucket, prefix, s3 or S3Options(), field=field)


def parse_s3_uri(uri: str, *, field: str = "storage.uri") -> tuple[str, str]:
    """``s3://bucket/a/b`` → ``("bucket", "a/b")``, refusing anything that is not plainly that.

    The prefix comes back as written (still percent-encoded): ``S3Storage`` cleans it, once.
    """
    parts = urlsplit(uri)
    if parts.scheme != "s3":
        raise _bad_uri(uri, "does not start with s3://", field)
    if "@" in parts.netloc:
        # Credentials in a URI end up in the database and in logs; they go in S3Options.
        raise _bad_uri("s3://***@...", "holds credentials; configure them separately", field)
    if "?" in uri or "#" in uri:
        raise _bad_uri(uri, "has a query or a fragment", field)
    if not _BUCKET.match(parts.netloc) or ".." in parts.netloc:
        raise _bad_uri(uri, f"names no valid bucket ({parts.netloc!r})", field)
    return parts.netloc, parts.path.lstrip("/")


def join_uri(base: str, prefix: str) -> str:
    """The URI of folder ``prefix`` inside the storage at ``base``, in ``base``'s own form:
    ``open_storage(join_uri(base, p))`` is rooted where ``open_storage(base)``'s ``p`` is."""
    clean = clean_relative(prefix, field="storage.prefix")
    if not clean:
        return base
    path = local_path(base)
    if path is not None:
        joined = path / clean
        return joined.as_uri() if urlsplit(base).scheme == "file" else str(joined)
    # Keys may hold '#', '?' or spaces; quoted, they survive the round trip through the parser.
    return base.rstrip("/") + "/" + quote(clean, safe="/")


def _bad_uri(uri: str, why: str, field: str) -> InvalidInputError:
    return InvalidInputError(f"storage URI {uri!r} {why}", code="invalid_storage_uri", field=field)
