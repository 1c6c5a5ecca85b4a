"""Content addresses: the digest that names an uploaded file or folder.

A folder is described by its *manifest*: every file's relative POSIX path, sha256 (hex) and
size in bytes. Its digest is the sha256 of the manifest in one canonical spelling (entries
sorted by path, one ``path\\nsha256\\nsize\\n`` record each), so the SDK and the server compute
the same name for the same content without talking, and a manifest cannot be changed without
changing its name. A path can hold no newline (storage paths refuse control characters), so
the spelling is unambiguous. A single file is a manifest of one entry named after the file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
#: The folder, in a workspace's default datastore, that holds uploads of local files and
#: folders (Azure ML's name for it, so its datastore URIs look familiar).
UPLOADS_FOLDER = "LocalUpload"


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    sha256: str
    size: int


def manifest_digest(entries: Iterable[ManifestEntry]) -> str:
    """The sha256 (hex) naming this set of files; the order given does not matter."""
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.path):
        digest.update(f"{entry.path}\n{entry.sha256}\n{entry.size}\n".encode())
    return digest.hexdigest()


def is_digest(text: str) -> bool:
    return SHA256_HEX.fullmatch(text) is not None
