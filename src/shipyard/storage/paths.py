"""Relative storage paths from clients are never trusted: normalise, then refuse escapes."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote

from shipyard.domain.errors import InvalidInputError

#: Longest relative path accepted, in UTF-8 bytes. S3 keys stop at 1,024 bytes and most file
#: systems at 4,096, so a path that fits here fits everywhere once a short prefix is added.
MAX_PATH_BYTES = 1024
#: Longest single name, in UTF-8 bytes: NAME_MAX on Linux and macOS file systems.
MAX_SEGMENT_BYTES = 255
#: How many rounds of percent-decoding are undone before a path counts as suspicious.
_DECODE_ROUNDS = 3

# C0 controls and DEL: NUL truncates paths in C code, newlines forge log lines, none of them
# belongs in a file name a person chose.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_relative(path: str, *, field: str = "path") -> str:
    """A normalised relative POSIX path that cannot leave its root, or an InvalidInputError.

    ``""``, ``"."`` and ``"a/"`` name the root and ``"a"``; ``"a//b/./c"`` becomes ``"a/b/c"``.
    Refused (code ``invalid_path``): any ``..`` segment (also percent-encoded, once or
    twice), an absolute path, backslashes, control characters, names over 255 bytes and paths
    over 1,024 bytes.
    """
    decoded = _decode(path, field)
    if _CONTROL.search(decoded) or "\\" in decoded:
        raise _invalid(path, "holds a control character or a backslash", field)
    if decoded.startswith("/"):
        raise _invalid(path, "is absolute; give a path relative to the storage", field)
    if any(part == ".." for part in decoded.split("/")):
        raise _invalid(path, "leaves its root", field)
    if len(decoded.encode()) > MAX_PATH_BYTES:
        raise _invalid(path[:64] + "...", f"is longer than {MAX_PATH_BYTES} bytes", field)
    normal = posixpath.normpath("/" + decoded)
    if normal == "/":
        return ""
    clean = normal.lstrip("/")
    if any(len(part.encode()) > MAX_SEGMENT_BYTES for part in clean.split("/")):
        raise _invalid(
            path[:64] + "...", f"has a name longer than {MAX_SEGMENT_BYTES} bytes", field
        )
    return clean


def _decode(path: str, field: str) -> str:
    # Decode repeatedly so double-encoded traversal (%252e%252e) is seen for what it is; a
    # path still changing after that many rounds is built to slip past some decoder.
    decoded = path
    for _ in range(_DECODE_ROUNDS):
        once = unquote(decoded)
        if once == decoded:
            return decoded
        decoded = once
    if unquote(decoded) != decoded:
        raise _invalid(path, "is percent-encoded too many times", field)
    return decoded


def _invalid(path: str, why: str, field: str) -> InvalidInputError:
    return InvalidInputError(f"{path!r} {why}", code="invalid_path", field=field)
