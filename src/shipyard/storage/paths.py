"""Relative storage paths from clients are never trusted: normalise, then refuse escapes."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote

from shipyard.domain.errors import InvalidInputError


def clean_relative(path: str, *, field: str = "path") -> str:
    """A normalised relative POSIX path that cannot leave its root, or an InvalidInputError."""
    decoded = path
    # Decode repeatedly so double-encoded traversal (%252e%252e) is seen for what it is.
    for _ in range(3):
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    if "\x00" in decoded or "\\" in decoded:
        raise InvalidInputError(
            f"{path!r} is not an allowed path", code="invalid_path", field=field
        )
    normal = posixpath.normpath("/" + decoded.lstrip("/"))
    if normal == "/":
        return ""
    if any(part == ".." for part in decoded.split("/")):
        raise InvalidInputError(f"{path!r} leaves its root", code="invalid_path", field=field)
    return normal.lstrip("/")
