"""``ws.models``: the workspace's model registry (the same one MLflow's client uses).

A version's ``path`` may be a local file or folder (uploaded by content as an MLflow logged
model, so ``mlflow.pyfunc.load_model("models:/<name>/<version>")`` loads it), a datastore URI,
a job's output (``azureml://jobs/<job>/outputs/artifacts/paths/<p>``) or ``runs:/<run>/<p>``.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.data import LATEST, DataFileList, DataFileRead
from shipyard.schemas.models import ModelAssetRead, ModelRead
from shipyard.sdk.data import download_files, local_source
from shipyard.sdk.http import HttpSession
from shipyard.sdk.uploads import ContentUploads, UploadProgress, hash_local

Model = ModelAssetRead
_UNSET: Any = object()
_FILE_ONLY = ("$schema", "name", "utc_time_created", "latest_version", "creation_context")


class ModelOperations:
    """Register, read, update, alias, stage, download and delete models.

    Example::

        ws = client.workspace("churn")
        v = ws.models.create("churn-clf", "./model", type="mlflow_model")
        ws.models.set_alias("churn-clf", "champion", v.version)
        best = ws.models.get("churn-clf", label="champion")
        ws.models.download("churn-clf", version=best.version, download_path="./model-copy")
    """

    def __init__(self, http: HttpSession, workspace: str) -> None:
        self._http = http
        self._root = f"/api/v1/workspaces/{quote(workspace, safe='')}/models"
        self._uploads = ContentUploads(http, self._root + "/artifacts")

    def _model(self, name: str) -> str:
        # "." and ".." would be resolved away by the URL and land on another route.
        if not name or name in (".", "..") or "/" in name or ":" in name or "\x00" in name:
            raise InvalidInputError(
                f"model name {name[:100]!r} is invalid", code="invalid_name", field="name"
            )
        return f"{self._root}/{quote(name, safe='')}"

    def _version(self, name: str, version: int | str) -> str:
        text = str(version)
        if text != LATEST and not text.isdigit():
            raise InvalidInputError(
                f"model versions are numbers, not {text[:40]!r}",
                code="invalid_version",
                field="version",
            )
        return f"{self._model(name)}/versions/{text}"

    # -- create -----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        type: str = "custom_model",
        version: int | str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        stage: str | None = None,
        job_name: str | None = None,
        training_data: Sequence[str] = (),
        progress: UploadProgress | None = None,
    ) -> Model:
        """Register a new version (and the model with its first); a local ``path`` is
        uploaded first (only what the workspace lacks)."""
        spec: dict[str, Any] = {
            "name": name,
            "path": str(path),
            "type": type,
            "version": None if version is None else str(version),
            "description": description,
            "tags": tags or {},
            "properties": properties or {},
            "stage": stage,
            "job_name": job_name,
            "training_data": list(training_data),
        }
        return self.create_from_spec(
            {k: v for k, v in spec.items() if v is not None}, progress=progress
        )

    def create_from_spec(
        self,
        spec: dict[str, Any],
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> Model:
        """Register from a mapping shaped like Azure ML's model YAML (what the CLI sends)."""
        body = {k: v for k, v in spec.items() if k not in _FILE_ONLY}
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInputError("a name is required", code="missing_field", field="name")
        if body.get("version") in (None, ""):
            body.pop("version", None)  # an empty version asks for the next number
        else:
            body["version"] = str(body["version"])
        local = local_source(body, base_dir)
        if local is not None:
            content = hash_local(local)
            status = self._uploads.upload(content, name=name, progress=progress)
            body["path"] = (
                f"{status.uri}/{content.files[0][1].path}" if content.is_file else status.uri
            )
        return self._http.send_model("POST", self._model(name) + "/versions", Model, body)

    # -- read -------------------------------------------------------------------------------

    def get(self, name: str, version: int | str | None = None, label: str | None = None) -> Model:
        """A version by number; by label: ``latest`` or an alias (``champion``); with
        neither, the latest."""
        if version is not None and label is not None:
            raise InvalidInputError(
                "give a version or a label, not both", code="invalid_field", field="label"
            )
        if label is not None and label != LATEST:
            return self._http.get_model(
                f"{self._model(name)}/aliases/{quote(label, safe='')}", Model
            )
        return self._http.get_model(
            self._version(name, LATEST if version is None else version), Model
        )

    def get_model(self, name: str) -> ModelRead:
        """The model itself: description, tags, aliases, latest versions."""
        return self._http.get_model(self._model(name), ModelRead)

    def list(self, name: str | None = None) -> Iterator[ModelRead] | Iterator[Model]:
        """The workspace's models, or with ``name`` that model's versions (newest first)."""
        if name is None:
            return self._http.iterate(self._root, ModelRead)
        return self._http.iterate(self._model(name) + "/versions", Model)

    def files(
        self, name: str, version: int | str, *, path: str = "", recursive: bool = False
    ) -> builtins.list[DataFileRead]:
        params = {"path": path, "recursive": str(recursive).lower()}
        url = self._version(name, version) + "/files"
        return self._http.get_model(url, DataFileList, params=params).items

    def download(
        self,
        name: str,
        version: int | str | None = None,
        label: str | None = None,
        *,
        download_path: str | os.PathLike[str] = ".",
    ) -> Path:
        """Download a version's files into ``download_path`` (made if needed)."""
        pinned = self.get(name, version, label).version
        entries = self.files(name, pinned, recursive=True)
        destination = Path(download_path)
        destination.mkdir(parents=True, exist_ok=True)
        download_files(self._http, self._version(name, pinned) + "/files", entries, destination)
        return destination

    # -- change -----------------------------------------------------------------------------

    def update(
        self,
        name: str,
        version: int | str | None = None,
        *,
        description: str | None = _UNSET,
        tags: dict[str, str] | None = _UNSET,
    ) -> ModelRead | Model:
        """Change the description or tags of a version, or with no version of the model."""
        given = {"description": description, "tags": tags}
        changes = {k: v for k, v in given.items() if v is not _UNSET}
        if version is None:
            return self._http.send_model("PATCH", self._model(name), ModelRead, changes)
        return self._http.send_model("PATCH", self._version(name, version), Model, changes)

    def set_alias(self, name: str, alias: str, version: int | str) -> Model:
        """Point ``@alias`` at a version (moving it from another)."""
        url = f"{self._model(name)}/aliases/{quote(alias, safe='')}"
        return self._http.send_model("PUT", url, Model, {"version": int(version)})

    def delete_alias(self, name: str, alias: str) -> None:
        self._http.request("DELETE", f"{self._model(name)}/aliases/{quote(alias, safe='')}")

    def transition_stage(
        self, name: str, version: int | str, stage: str, *, archive_existing_versions: bool = False
    ) -> Model:
        """Move a version to an MLflow stage (None, Staging, Production, Archived)."""
        body = {"stage": stage, "archive_existing_versions": archive_existing_versions}
        return self._http.send_model("POST", self._version(name, version) + "/stage", Model, body)

    def delete(self, name: str, version: int | str | None = None) -> None:
        """Delete a version, or with no version the model and all its versions."""
        target = self._model(name) if version is None else self._version(name, version)
        self._http.request("DELETE", target)

    def __repr__(self) -> str:
        return f"ModelOperations({self._root!r})"
