"""The storage interface every backend implements."""

from __future__ import annotations

from typing import Protocol


class Storage(Protocol):
    """A tree of files under one root URI; every path is relative to that root."""

    uri: str

    def ensure_folder(self, path: str) -> None:
        """Create the folder (and parents) if it does not exist."""

    def delete_tree(self, path: str) -> None:
        """Remove the folder and everything in it; a missing folder is not an error."""

    def exists(self, path: str) -> bool: ...
