"""Content-addressed uploads of local files and folders: request and response bodies.

The client sends the manifest of what it has (every file's relative path, sha256 and size);
the manifest's digest (``shipyard.domain.content.manifest_digest``) names the upload. The
server answers which files it still lacks; the client sends those, then commits.

Small files travel many to a request, in a *bundle*: the raw body of
``PUT .../artifacts/bundles/{digest}`` is the line ``shipyard-bundle 1``, then for each file
its manifest path on a line, its size in bytes (decimal) on a line, and exactly that many
bytes of content::

    shipyard-bundle 1\n
    a.csv\n
    12\n
    <the 12 bytes of a.csv>sub/empty.txt\n
    0\n
    ...

Paths hold no newline (storage paths refuse control characters), so the framing cannot be
confused by a name. It is not tar on purpose: a bundle can carry nothing but regular files of
the manifest (no links, devices or owners to refuse), and both ends fit in a few lines.
"""

from __future__ import annotations

from pydantic import Field

from shipyard.schemas.common import RequestBody, ResponseBody

#: Files in one upload, at most (a manifest this long is about 15 MB of JSON).
MAX_FILES = 100_000
#: The first line of every bundle body (its version: a future framing gets another line).
BUNDLE_MAGIC = b"shipyard-bundle 1\n"


def bundle_header(path: str, size: int) -> bytes:
    """What precedes a file's content in a bundle."""
    return f"{path}\n{size}\n".encode()


class UploadFile(RequestBody):
    path: str = Field(min_length=1, max_length=4096, description="Relative POSIX path.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="The file's sha256, hex.")
    size: int = Field(ge=0, description="Bytes.")


class UploadManifest(RequestBody):
    files: list[UploadFile] = Field(min_length=1, max_length=MAX_FILES)
    name: str | None = Field(
        default=None,
        max_length=256,
        pattern=r"^[^\x00]*$",
        description="What the upload is for (a model's name); kept for people only.",
    )


class UploadRead(ResponseBody):
    digest: str
    purpose: str
    path: str = Field(description="The folder, relative to the datastore.")
    uri: str = Field(description="The folder as a datastore URI.")
    committed: bool
    file_count: int
    size: int
    missing: list[str] = Field(
        default_factory=list, description="Files the server still lacks (until committed)."
    )
    logged_model_id: str | None = None
    max_body_bytes: int | None = Field(
        default=None,
        description="The largest body an upload request may have: one file, or a bundle.",
    )


class UploadFileWritten(ResponseBody):
    path: str
    size: int
    sha256: str


class UploadBundleWritten(ResponseBody):
    files: int = Field(description="Files of the bundle now stored (each checked).")
    size: int = Field(description="Their bytes.")
