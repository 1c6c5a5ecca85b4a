"""A job's inputs and outputs, resolved at submit into what the launcher needs.

Every data input is pinned to a place the server can name without asking again: an asset
reference (``azureml:sales:3``, ``sales@latest``) becomes its version's datastore URI, with
the pinned ``name:version`` kept for lineage; a job output URI becomes the datastore URI that
output was written to; ``runs:/<run>/<path>`` becomes the run's artifact folder. Outputs get
their destination (Azure's default ``azureml/<job name>/<output name>/`` in the workspace's
default datastore, or a datastore URI the user gave, with ``${{name}}`` and
``${{output_name}}`` filled in).

The result is plain JSON, stored in the job's spec: a restarted server launches from it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from shipyard.domain.asset_uris import (
    DatastorePath,
    JobOutputPath,
    LocalPath,
    RunPath,
    WebUrl,
    datastore_uri,
    parse_asset_path,
    parse_asset_ref,
)
from shipyard.domain.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.schemas.jobs import DataInput, JobOutput
from shipyard.services.data import DataService
from shipyard.services.datastore_uris import DatastoreResolver, Location
from shipyard.services.model_assets import ModelAssetService
from shipyard.services.workspace_rows import workspace_row
from shipyard.services.workspaces import DEFAULT_DATASTORE
from shipyard.store import jobs as job_store
from shipyard.store import tracking as tracking_store
from shipyard.store.database import Database
from shipyard.store.workspaces import WorkspaceRow

MODEL_TYPES = frozenset({"custom_model", "mlflow_model"})
ASSET_SCHEMES = ("azureml:", "shipyard:")


@dataclass
class IoResolver:
    db: Database
    resolver: DatastoreResolver
    data: DataService
    models: ModelAssetService

    # -- inputs -----------------------------------------------------------------------------

    def inputs(self, workspace: str, given: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        resolved: dict[str, dict[str, Any]] = {}
        for name, value in given.items():
            field = f"inputs.{name}"
            if value is None:
                resolved[name] = {"kind": "literal", "type": "string", "value": None}
            elif isinstance(value, DataInput):
                resolved[name] = self._data_input(workspace, value, field)
            else:
                resolved[name] = _literal(value)
        return resolved

    def _data_input(self, workspace: str, given: DataInput, field: str) -> dict[str, Any]:
        if given.mode in ("eval_mount", "eval_download") and given.type != "mltable":
            raise InvalidInputError(
                f"mode {given.mode} is for mltable inputs only", code="invalid_mode", field=field
            )
        base = {"kind": "data", "type": given.type, "mode": given.mode, "asset": None}
        path = given.path
        if _is_asset_ref(path):
            ref = parse_asset_ref(path, field=f"{field}.path")
            version = ref.version or ref.label or "latest"
            if ref.label not in (None, "latest"):
                raise InvalidInputError(
                    f"the only label is 'latest', not {ref.label!r}",
                    code="invalid_reference",
                    field=f"{field}.path",
                )
            try:
                if given.type in MODEL_TYPES:
                    model = self.models.get(workspace, ref.name, version)
                    location = self.models.location(workspace, ref.name, str(model.version))
                    pinned = f"{ref.name}:{model.version}"
                else:
                    read, location = self.data.location(workspace, ref.name, version)
                    pinned = f"{ref.name}:{read.version}"
            except ShipyardError as exc:
                exc.field = f"{field}.path"  # the asset services name their own fields
                raise
            return {**base, "uri": location.uri, "asset": pinned}
        parsed = parse_asset_path(path, field=f"{field}.path")
        if isinstance(parsed, WebUrl):
            if given.mode != "direct":
                raise InvalidInputError(
                    "an http(s) input can only be passed as it is (mode: direct): the server "
                    "does not fetch web data",
                    code="invalid_mode",
                    field=f"{field}.mode",
                )
            return {**base, "uri": parsed.url}
        if isinstance(parsed, LocalPath):
            raise InvalidInputError(
                f"{path!r} is a local path: the CLI and SDK upload local inputs before they "
                "submit; over REST, upload it first and pass its datastore URI",
                code="local_path",
                field=f"{field}.path",
            )
        with self.db.read() as session:
            ws = workspace_row(session, workspace)
            if isinstance(parsed, DatastorePath):
                _same_workspace(parsed, ws, field)
                location = self.resolver.resolve(
                    session, ws, parsed.datastore, parsed.path, field=f"{field}.path"
                )
                return {**base, "uri": location.uri}
            if isinstance(parsed, JobOutputPath):
                return {**base, "uri": _job_output_uri(session, ws, parsed, field)}
            assert isinstance(parsed, RunPath)
            if tracking_store.get_job(session, ws.id, parsed.run_id) is None:
                raise NotFoundError(
                    f"run {parsed.run_id!r} does not exist", code="run_not_found", field=field
                )
            folder = posixpath.join("runs", parsed.run_id, "artifacts", parsed.path)
            return {**base, "uri": self.resolver.default(ws, folder.rstrip("/")).uri}

    def location(self, session: Session, ws: WorkspaceRow, uri: str, *, field: str) -> Location:
        """The place a datastore URI stored with a job names."""
        parsed = parse_asset_path(uri, field=field)
        if not isinstance(parsed, DatastorePath):
            raise InvalidInputError(f"{uri!r} is not in a datastore", field=field)
        return self.resolver.resolve(session, ws, parsed.datastore, parsed.path, field=field)

    # -- outputs ----------------------------------------------------------------------------

    def outputs(
        self, workspace: str, job_name: str, given: Mapping[str, JobOutput | None]
    ) -> dict[str, dict[str, Any]]:
        resolved: dict[str, dict[str, Any]] = {}
        with self.db.read() as session:
            ws = workspace_row(session, workspace)
            for name, output in given.items():
                output = output or JobOutput()
                field = f"outputs.{name}"
                if output.path is None:
                    path = posixpath.join("azureml", job_name, name)
                    location = self.resolver.default(ws, path)
                else:
                    text = (
                        output.path.replace("${{name}}", job_name)
                        .replace("${{output_name}}", name)
                        .replace("${{default_datastore}}", DEFAULT_DATASTORE)
                    )
                    parsed = parse_asset_path(text, field=f"{field}.path")
                    if not isinstance(parsed, DatastorePath):
                        raise InvalidInputError(
                            "an output goes to a datastore: "
                            "azureml://datastores/<name>/paths/<path>",
                            code="invalid_output_path",
                            field=f"{field}.path",
                        )
                    _same_workspace(parsed, ws, field)
                    location = self.resolver.resolve(
                        session, ws, parsed.datastore, parsed.path, field=f"{field}.path"
                    )
                if location.read_only:
                    raise InvalidInputError(
                        f"datastore {location.datastore!r} is read-only: outputs cannot go there",
                        code="read_only_datastore",
                        field=f"{field}.path",
                    )
                resolved[name] = {
                    "type": output.type,
                    "mode": "upload" if output.mode == "upload" else "rw_mount",
                    "uri": location.uri,
                    "name": output.name,
                    "version": output.version,
                    "description": output.description,
                    "registered": None,
                    "custom_path": output.path is not None,
                }
        return resolved


def _literal(value: object) -> dict[str, Any]:
    if isinstance(value, bool):
        kind, text = "boolean", str(value)
    elif isinstance(value, int):
        kind, text = "integer", str(value)
    elif isinstance(value, float):
        kind, text = "number", repr(value)
    else:
        kind, text = "string", str(value)
    return {"kind": "literal", "type": kind, "value": text}


def _is_asset_ref(path: str) -> bool:
    lowered = path.lower()
    return any(lowered.startswith(s) and not lowered.startswith(s + "//") for s in ASSET_SCHEMES)


def _same_workspace(parsed: DatastorePath, ws: WorkspaceRow, field: str) -> None:
    if parsed.workspace is not None and parsed.workspace != ws.name:
        raise NotFoundError(
            f"datastore {parsed.datastore!r} does not exist in this workspace",
            code="datastore_not_found",
            field=f"{field}.path",
        )


def _job_output_uri(session: Session, ws: WorkspaceRow, parsed: JobOutputPath, field: str) -> str:
    job = job_store.get_submission(session, ws.id, parsed.job)
    if job is None:
        raise NotFoundError(f"job {parsed.job!r} does not exist", code="job_not_found", field=field)
    if parsed.output == "artifacts":
        folder = posixpath.join("runs", job.job_id, "artifacts")
        base = datastore_uri(DEFAULT_DATASTORE, folder)
    else:
        output = job.spec.get("outputs", {}).get(parsed.output)
        if output is None:
            raise NotFoundError(
                f"job {parsed.job!r} has no output {parsed.output!r}",
                code="output_not_found",
                field=field,
            )
        base = str(output["uri"])
    return f"{base.rstrip('/')}/{parsed.path}" if parsed.path else base
