"""Run artifacts: entries of a listing and the record of an upload."""

from __future__ import annotations

from datetime import datetime

from shipyard.schemas.common import ResponseBody


class ArtifactRead(ResponseBody):
    """One file or folder; ``path`` is relative to the run's artifact root."""

    path: str
    is_dir: bool
    size: int = 0
    modified: datetime | None = None


class ArtifactList(ResponseBody):
    items: list[ArtifactRead]


class ArtifactWritten(ResponseBody):
    path: str
    size: int
    sha256: str
