"""Storage in a folder of the server's own file system."""

from __future__ import annotations

import shutil
from pathlib import Path

from shipyard.storage.paths import clean_relative


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.uri = self.root.as_uri()

    def _resolve(self, path: str) -> Path:
        target = (self.root / clean_relative(path)).resolve()
        # resolve() follows symlinks: a link inside the root that points outside is refused too.
        if target != self.root and self.root not in target.parents:
            raise ValueError(f"{path!r} resolves outside {self.root}")
        return target

    def ensure_folder(self, path: str) -> None:
        self._resolve(path).mkdir(parents=True, exist_ok=True)

    def delete_tree(self, path: str) -> None:
        target = self._resolve(path)
        if target == self.root:
            raise ValueError("refusing to delete the storage root itself")
        if target.exists():
            shutil.rmtree(target)

    def exists(self, path: str) -> bool:
        return self._resolve(path).exists()
