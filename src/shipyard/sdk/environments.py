"""``ws.environments``: a workspace's environments (Azure ML's ``ml_client.environments``).

A version is a Python version plus pip requirement lines, or an Azure-style conda file
whose dependencies are ``python=X.Y``, ``pip`` and a pip list; the server builds it into a
virtual environment with uv when a job needs it (or on ``build``), once per distinct spec.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shipyard.domain.environments import (
    ENVIRONMENT_NAME,
    ENVIRONMENT_VERSION,
    LATEST,
    parse_conda,
    requirement_lines,
)
from shipyard.domain.errors import InvalidInputError, ShipyardError
from shipyard.schemas.environments import (
    EnvironmentBuildRead,
    EnvironmentRead,
    EnvironmentVersionRead,
)
from shipyard.sdk.http import HttpSession
from shipyard.sdk.yaml import MAX_FILE_BYTES, YamlDocument, YamlFileError, parse_yaml

Environment = EnvironmentVersionRead
_UNSET: Any = object()
_NAME = re.compile(ENVIRONMENT_NAME)
_VERSION = re.compile(ENVIRONMENT_VERSION)
# Fields of an Azure ML environment YAML that are not part of the request body.
_FILE_ONLY = ("$schema", "name")
BUILD_TIMEOUT = 3600.0


def read_local_file(path: Path, field: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read {path}: {exc.strerror}", code="file_not_found", field=field
        ) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidInputError(
            f"{path} is larger than {MAX_FILE_BYTES} bytes", code="file_too_large", field=field
        )
    return raw.decode("utf-8", errors="replace")


def _in_file(document: YamlDocument, field: str, exc: ShipyardError) -> YamlFileError:
    """An error about a field inside a conda file, at that file's line."""
    inner = exc.field[len(field) + 1 :] if exc.field and exc.field != field else None
    found = YamlFileError(
        document.path, document.line_of(inner), exc.detail, field=inner, code=exc.code
    )
    # The message names the conda file and its line; no field is left for a caller to
    # re-place in the environment's own YAML file.
    found.field = None
    return found


def read_local_parts(
    body: dict[str, Any], base_dir: Path | None, *, field: str = ""
) -> YamlDocument | None:
    """Replace a ``pip_requirements`` or ``conda_file`` given as a local path (relative to
    ``base_dir``) by its content, in place; returns the conda file read, for error lines.
    ``field`` prefixes the names in errors (``environment.`` inside a job)."""
    if isinstance(body.get("pip_requirements"), str):
        path = _local(body["pip_requirements"], base_dir)
        text = read_local_file(path, f"{field}pip_requirements")
        body["pip_requirements"] = requirement_lines(text)
    conda: YamlDocument | None = None
    if isinstance(body.get("conda_file"), str):
        path = _local(body["conda_file"], base_dir)
        conda = parse_yaml(read_local_file(path, f"{field}conda_file"), str(path))
        body["conda_file"] = conda.data
        try:
            parse_conda(conda.data, field="conda_file")
        except InvalidInputError as exc:
            raise _in_file(conda, "conda_file", exc) from exc
    return conda


class EnvironmentOperations:
    """Register, read, archive and build environments.

    Example::

        ws = client.workspace("churn")
        env = ws.environments.create("train", python="3.11",
                                     pip_requirements=["scikit-learn==1.5.2", "pandas"])
        build = ws.environments.build("train", env.version)
        print(build.status, build.cached)
        job_env = ws.environments.get("train", label="latest").id  # azureml:train:1
    """

    def __init__(self, http: HttpSession, workspace: str) -> None:
        self._http = http
        self._root = f"/api/v1/workspaces/{quote(workspace, safe='')}/environments"

    def _environment(self, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise InvalidInputError(
                f"environment name {name[:100]!r} is invalid: letters, digits, '-', '_' and "
                "'.', starting with a letter or digit",
                code="invalid_name",
                field="name",
            )
        return f"{self._root}/{quote(name, safe='')}"

    def _version(self, name: str, version: str | None, label: str | None) -> str:
        if version is not None and label is not None:
            raise InvalidInputError(
                "give a version or a label, not both", code="invalid_field", field="label"
            )
        if label is not None and label != LATEST:
            raise InvalidInputError(
                f"the only label of environments is {LATEST!r}",
                code="invalid_label",
                field="label",
            )
        chosen = str(version) if version is not None else LATEST
        if not _VERSION.fullmatch(chosen):
            raise InvalidInputError(
                f"version {chosen[:70]!r} is invalid", code="invalid_version", field="version"
            )
        return f"{self._environment(name)}/versions/{quote(chosen, safe='')}"

    # -- create -----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        version: str | None = None,
        python: str | None = None,
        pip_requirements: builtins.list[str] | str | Path | None = None,
        conda_file: dict[str, Any] | str | Path | None = None,
        image: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Environment:
        """Register a version. ``conda_file`` is a mapping or a conda YAML file's path;
        ``pip_requirements`` a list of lines or a requirements.txt file's path."""
        spec: dict[str, Any] = {
            "name": name,
            "version": version,
            "python": python,
            "pip_requirements": str(pip_requirements)
            if isinstance(pip_requirements, Path)
            else pip_requirements,
            "conda_file": str(conda_file) if isinstance(conda_file, Path) else conda_file,
            "image": image,
            "description": description,
            "tags": tags,
        }
        return self.create_from_spec({k: v for k, v in spec.items() if v is not None})

    def create_from_spec(
        self, spec: dict[str, Any], *, base_dir: Path | None = None
    ) -> Environment:
        """Register a version from a mapping shaped like Azure ML's environment YAML (what
        the CLI sends): a ``conda_file`` or ``pip_requirements`` given as a path is read,
        relative to ``base_dir`` (the YAML file's folder)."""
        body = {k: v for k, v in spec.items() if k not in _FILE_ONLY}
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInputError("a name is required", code="missing_field", field="name")
        if body.get("version") in (None, ""):
            body.pop("version", None)  # an empty version asks for the next number
        else:
            body["version"] = str(body["version"])
        if isinstance(body.get("python"), float):
            raise InvalidInputError(
                f"python {body['python']!r} is a number; quote the version ('3.10'): YAML "
                "reads 3.10 as 3.1",
                code="invalid_python",
                field="python",
            )
        conda = read_local_parts(body, base_dir)
        try:
            return self._http.send_model(
                "POST", self._environment(name) + "/versions", Environment, body
            )
        except ShipyardError as exc:
            if conda is not None and exc.field and exc.field.startswith("conda_file."):
                raise _in_file(conda, "conda_file", exc) from exc
            raise

    # -- read -------------------------------------------------------------------------------

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Environment:
        """A version; with neither a version nor a label, the latest one."""
        return self._http.get_model(self._version(name, version, label), Environment)

    def list(
        self, name: str | None = None, *, include_archived: bool = False
    ) -> Iterator[Environment] | Iterator[EnvironmentRead]:
        """The workspace's environments (curated ones too), or with ``name`` that
        environment's versions (newest first)."""
        params = {"include_archived": str(include_archived).lower()}
        if name is None:
            return self._http.iterate(self._root, EnvironmentRead, params)
        return self._http.iterate(self._environment(name) + "/versions", Environment, params)

    # -- builds -----------------------------------------------------------------------------

    def build(
        self,
        name: str,
        version: str | None = None,
        label: str | None = None,
        *,
        timeout: float = BUILD_TIMEOUT,
    ) -> EnvironmentBuildRead:
        """Build a version on the server now (waits for it): ``status`` is ``ready`` or
        ``failed`` (with ``error`` and the end of the ``log``); ``cached`` says whether it
        was built already."""
        url = self._version(name, version, label) + "/build"
        response = self._http.request("POST", url, timeout=timeout)
        return EnvironmentBuildRead.model_validate(response.json())

    def build_status(
        self, name: str, version: str | None = None, label: str | None = None
    ) -> EnvironmentBuildRead:
        """A version's build: status and whole log (``not_built`` before any)."""
        return self._http.get_model(
            self._version(name, version, label) + "/build", EnvironmentBuildRead
        )

    # -- change -----------------------------------------------------------------------------

    def update(
        self,
        name: str,
        version: str,
        *,
        description: str | None = _UNSET,
        tags: dict[str, str] | None = _UNSET,
    ) -> Environment:
        """Change a version's description or tags (its spec never changes)."""
        given = {"description": description, "tags": tags}
        changes = {k: v for k, v in given.items() if v is not _UNSET}
        return self._http.send_model(
            "PATCH", self._version(name, version, None), Environment, changes
        )

    def archive(self, name: str, version: str | None = None) -> None:
        """Hide a version (or with no version, the environment) from lists and from
        ``latest``; it can still be read, and used, by its version."""
        target = self._version(name, version, None) if version else self._environment(name)
        self._http.request("POST", target + "/archive")

    def restore(self, name: str, version: str | None = None) -> None:
        target = self._version(name, version, None) if version else self._environment(name)
        self._http.request("POST", target + "/restore")

    def __repr__(self) -> str:
        return f"EnvironmentOperations({self._root!r})"


def _local(path: str, base_dir: Path | None) -> Path:
    local = Path(path).expanduser()
    return local if local.is_absolute() or base_dir is None else base_dir / local


__all__ = ["Environment", "EnvironmentOperations"]
