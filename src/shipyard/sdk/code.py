"""A job's code folder: which files go, and where they came from in git.

``.shipyardignore`` (or Azure ML's ``.amlignore``, or ``.gitignore``) in the folder names
what stays behind, with git's pattern rules (the ``pathspec`` library implements them
exactly, so we do not). The first of those files that exists wins, as in Azure ML. ``.git``
itself never goes. The snapshot is uploaded by content (``sdk.uploads``): submitting unchanged
code again sends nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pathspec

from shipyard.domain.errors import InvalidInputError

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
