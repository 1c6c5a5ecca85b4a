"""A job's code folder: which files go, and where they came from in git.

``.shipyardignore`` (or Azure ML's ``.amlignore``, or ``.gitignore``) in the folder names
what stays behind, with git's pattern rules (the ``pathspec`` library implements them
exactly, so we do not). The first of those files that exists wins, as in Azure ML. ``.git``
itself never goes. The snapshot is uploaded by content (``sdk.uploads``): submitting unchanged
code again sends nothing.

A component's ``additional_includes`` (files or folders, relative to its YAML file) join the
snapshot at its top level under their own names, as Azure ML copies them into the code
folder; the snapshot is the manifest of both, so nothing is copied on disk, and its digest is
the one a folder holding the same files would have.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pathspec

from shipyard.domain.content import ManifestEntry, manifest_digest
from shipyard.domain.errors import InvalidInputError
from shipyard.sdk.environments import read_local_parts
from shipyard.sdk.uploads import ContentUploads, LocalContent, UploadProgress, hash_local

IGNORE_FILES = (".shipyardignore", ".amlignore", ".gitignore")
#: A code snapshot is source code: above this, something (data, a venv) was not ignored.
MAX_CODE_BYTES = 100 * 1024 * 1024


def ignore_rule(folder: Path) -> Callable[[str], bool]:
    """A test for relative paths: True when the file is left out of the snapshot."""
    spec: pathspec.GitIgnoreSpec | None = None
    for name in IGNORE_FILES:
        candidate = folder / name
        if candidate.is_file():
            lines = candidate.read_text(encoding="utf-8", errors="replace").splitlines()
            spec = pathspec.GitIgnoreSpec.from_lines(lines)
            break

    def ignored(relative: str) -> bool:
        if relative == ".git" or relative.startswith(".git/"):
            return True
        return spec is not None and spec.match_file(relative)

    return ignored


def check_size(total: int) -> None:
    if total > MAX_CODE_BYTES:
        raise InvalidInputError(
            f"the code folder holds {total // (1024 * 1024)} MB after ignores, over the "
            f"{MAX_CODE_BYTES // (1024 * 1024)} MB limit: list data, environments and outputs in "
            ".shipyardignore (git's pattern rules)",
            code="code_too_large",
            field="code",
        )


@dataclass(frozen=True)
class CodeSnapshot:
    ref: str  # "sha256:<digest>": what a job or component names
    folder: Path | None  # the local code folder (None: additional_includes only)


def local_snapshot(
    code: str | None,
    *,
    base_dir: Path | None = None,
    additional_includes: Sequence[str] = (),
) -> LocalContent:
    """The files of a code snapshot: the ``code`` folder (ignore files applied) plus each of
    ``additional_includes`` at the top level; relative paths are relative to ``base_dir``."""
    files: list[tuple[Path, ManifestEntry]] = []
    folder: Path | None = None
    if code is not None:
        folder = _local(code, base_dir, "code")
        if not folder.is_dir():
            raise InvalidInputError(
                f"code {code!r} is not a folder", code="path_not_found", field="code"
            )
        files.extend(_hashed(folder, "code").files)
    taken = {entry.path for _, entry in files}
    for index, item in enumerate(additional_includes):
        field = f"additional_includes.{index}"
        local = _local(item, base_dir, field)
        content = _hashed(local, field)
        for path, entry in content.files:
            name = entry.path if content.is_file else f"{local.name}/{entry.path}"
            if name in taken:
                raise InvalidInputError(
                    f"{item!r} would put {name!r} in the code snapshot, which has it already",
                    code="include_conflict",
                    field=field,
                )
            taken.add(name)
            files.append((path, ManifestEntry(name, entry.sha256, entry.size)))
    if not files:
        raise InvalidInputError(
            "the code snapshot holds no files", code="empty_folder", field="code"
        )
    snapshot = LocalContent(
        folder or base_dir or Path.cwd(),
        False,
        files,
        manifest_digest(entry for _, entry in files),
    )
    check_size(snapshot.size)
    return snapshot


def upload_code(
    uploads: ContentUploads,
    code: str | None,
    *,
    base_dir: Path | None = None,
    additional_includes: Sequence[str] = (),
    progress: UploadProgress | None = None,
) -> CodeSnapshot:
    """Upload a local code folder (and its additional includes) as a code snapshot; only
    the files the workspace lacks are sent."""
    snapshot = local_snapshot(code, base_dir=base_dir, additional_includes=additional_includes)
    uploads.upload(snapshot, progress=progress)
    folder = snapshot.source if code is not None else None
    return CodeSnapshot(f"sha256:{snapshot.digest}", folder)


def localize_component(
    uploads: ContentUploads,
    body: dict[str, Any],
    *,
    base_dir: Path | None = None,
    progress: UploadProgress | None = None,
) -> dict[str, Any]:
    """A component mapping with its local parts dealt with, in place: a local ``code``
    folder and ``additional_includes`` uploaded as one snapshot (``code: sha256:...``), an
    inline environment's local conda or requirements file read. Returns ``body``."""
    code = body.get("code")
    includes = body.pop("additional_includes", None) or []
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise InvalidInputError(
            "additional_includes must be a list of paths",
            code="invalid_field",
            field="additional_includes",
        )
    local_code = isinstance(code, str) and not code.startswith("sha256:")
    if local_code or includes:
        snapshot = upload_code(
            uploads,
            code if local_code else None,
            base_dir=base_dir,
            additional_includes=includes,
            progress=progress,
        )
        body["code"] = snapshot.ref
    environment = body.get("environment")
    if isinstance(environment, dict):
        environment = dict(environment)
        read_local_parts(environment, base_dir, field="environment.")
        body["environment"] = environment
    return body


def local_path(path: str, base_dir: Path | None, field: str) -> Path:
    """``path`` on this machine (relative to ``base_dir``); it must exist."""
    return _local(path, base_dir, field)


def _hashed(local: Path, field: str) -> LocalContent:
    try:
        return hash_local(
            local, field=field, exclude=ignore_rule(local) if local.is_dir() else None
        )
    except InvalidInputError as exc:
        exc.field = field  # a link out of the folder: the YAML's line for it
        raise


def _local(path: str, base_dir: Path | None, field: str) -> Path:
    local = Path(path.removeprefix("file:")).expanduser()
    if not local.is_absolute() and base_dir is not None:
        local = base_dir / local
    if not local.exists():
        raise InvalidInputError(f"{path!r} does not exist", code="path_not_found", field=field)
    return local


def git_properties(folder: Path) -> dict[str, str]:
    """Repository, commit and dirty flag, under Azure ML's property names; empty outside a
    repository or without git."""
    git = shutil.which("git")
    if git is None:
        return {}

    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
                [git, "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if commit is None:
        return {}
    properties = {"azureml.git.commit": commit}
    remote = run("config", "--get", "remote.origin.url")
    if remote:
        properties["azureml.git.repository_uri"] = _without_credentials(remote)
    branch = run("rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        properties["azureml.git.branch"] = branch
    status = run("status", "--porcelain", "--untracked-files=no")
    if status is not None:
        properties["azureml.git.dirty"] = str(bool(status))
    return properties


def _without_credentials(url: str) -> str:
    """``https://user:token@host/repo`` must not be stored with the job."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url
