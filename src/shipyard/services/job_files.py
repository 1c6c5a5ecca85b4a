"""Moving a job's files between storage and the job's folder on the host that runs it.

Inputs come in by mode: ``download`` copies; ``ro_mount`` hands the job the place itself
when the storage is a folder on this host (a link to it; nothing is copied) and downloads
otherwise (no FUSE mounts here); ``direct`` passes the URI. Outputs and the job's own
``outputs``/``logs`` folders go up when the job ends.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from pathlib import Path

from shipyard.domain.errors import NotFoundError
from shipyard.services.datastore_uris import Location
from shipyard.storage.base import FileInfo, Storage, write_all
from shipyard.storage.local import LocalStorage
from shipyard.storage.paths import clean_relative


def os_path(location: Location) -> Path | None:
    """The place on this host, when the storage is a local folder."""
    if isinstance(location.storage, LocalStorage):
        return location.storage.os_path(location.key)
    return None


def fetch(location: Location, dest: Path) -> Path:
    """Copy a file or a folder to ``dest`` (a file lands at ``dest/<its name>``); returns
    the path the job is given."""
    local = os_path(location)
    if local is not None:
        if not local.exists():
            raise NotFoundError(f"{location.uri} does not exist", code="input_not_found")
        if local.is_file():
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / local.name
            shutil.copyfile(local, target)
            return target
        shutil.copytree(local, dest, dirs_exist_ok=True)
        return dest
    storage, key = location.storage, location.key
    files = storage.list(key, recursive=True)
    if not files:  # a file, an empty folder (object stores keep none), or nothing
        try:
            info = storage.stat(key)
        except NotFoundError:
            dest.mkdir(parents=True, exist_ok=True)
            return dest
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / posixpath.basename(info.path)
        _copy_out(storage, key, target)
        return target
    for info in files:
        relative = clean_relative(posixpath.relpath(info.path, key))
        _copy_out(storage, info.path, dest / relative)
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def link(location: Location, dest: Path) -> Path:
    """Give the job the place itself (``ro_mount`` on local storage) as a symlink; callers
    fall back to ``fetch`` when this returns the same ``dest`` unlinked (not local)."""
    local = os_path(location)
    if local is None or not local.exists():
        return fetch(location, dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if local.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / local.name
        os.symlink(local, target)
        return target
    os.symlink(local, dest, target_is_directory=True)
    return dest


def hard_link(location: Location, dest: Path) -> Path:
    """``ro_mount`` for a job that runs as its own user: the files as hard links (copies
    across filesystems) in folders of the server's, so the job reads them where they are
    and can change nothing; storage that is not a local folder is downloaded."""
    local = os_path(location)
    if local is None or not local.exists():
        return fetch(location, dest)
    if local.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        _link_or_copy(local, dest / local.name)
        return dest / local.name
    for top, dirs, files in os.walk(local):
        here = dest / Path(top).relative_to(local)
        here.mkdir(parents=True, exist_ok=True)
        dirs[:] = [d for d in dirs if not (Path(top) / d).is_symlink()]
        for name in files:
            source = Path(top) / name
            if not source.is_symlink() and source.is_file():
                _link_or_copy(source, here / name)
    return dest


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed there
        shutil.copyfile(source, target)
    target.chmod(0o644)  # readable by the job's user; the folder is not theirs to change


def _copy_out(storage: Storage, key: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        for chunk in storage.read(key):
            out.write(chunk)


def upload_folder(source: Path, storage: Storage, key: str) -> list[FileInfo]:
    """Every regular file under ``source`` to ``key/<relative path>``. Symlinks are not
    followed: a job cannot publish a file from outside its folder by linking to it."""
    written: list[FileInfo] = []
    if not source.is_dir():
        return written
    for top, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if not (Path(top) / d).is_symlink()]
        for name in sorted(files):
            path = Path(top) / name
            if path.is_symlink() or not path.is_file():
                continue
            relative = path.relative_to(source).as_posix()
            target = posixpath.join(key, relative) if key else relative
            with open(path, "rb") as handle:
                result = write_all(storage, target, iter(lambda: handle.read(1 << 20), b""))
            written.append(FileInfo(path=target, is_dir=False, size=result.size))
    return written
