"""Batch endpoints: create, show, list, update, delete; invoke (start a scoring job) and list
the jobs invoking started (docs/batch-endpoints.md).

Invoking a ``type: model`` deployment submits an ordinary command job through the job
service: the batch driver (in the deployment's code snapshot) under the deployment's
environment, on its compute, with the model and the data as inputs and a ``score`` output. So
a batch job's logs, metrics, cancel, Ray launch and ``job show`` are every job's. A
``type: pipeline`` deployment submits a pipeline job of its component (or of its template
job) with the inputs given.
"""

from __future__ import annotations

import builtins
import json
import secrets as random
import string
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.batch_endpoints import DATA_INPUT, DRIVER_FILE, SCORE_OUTPUT, input_type_of
from shipyard.domain.endpoints import check_deployment_name, check_endpoint_name
from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError, ShipyardError
from shipyard.domain.paging import decode_page_token
from shipyard.domain.principals import Principal
from shipyard.schemas.batch_endpoints import (
    BatchEndpointCreate,
    BatchEndpointRead,
    BatchEndpointUpdate,
    BatchInvoke,
)
from shipyard.schemas.common import Page
from shipyard.schemas.jobs import CommandJobCreate, JobRead
from shipyard.schemas.pipelines import PipelineJobCreate
from shipyard.services.batch_deployments import (
    require_batch_endpoint,
    require_deployment,
    workspace_row,
)
from shipyard.services.experiments import get_or_create
from shipyard.services.jobs import JobService, name_taken
from shipyard.services.paging import split_page
from shipyard.services.pipelines import PipelineService
from shipyard.serving.batch_driver import CONFIG_VARIABLE
from shipyard.store import batch_endpoints as store
from shipyard.store import jobs as job_store
from shipyard.store.base import utcnow
from shipyard.store.batch_endpoints import BatchEndpointJobRow, BatchEndpointRow
from shipyard.store.database import Database
from shipyard.store.tracking import names_of
from shipyard.store.users import UserRow

MAX_LISTED_JOBS = 1000
_ALPHABET = string.ascii_lowercase + string.digits
_DRIVER_COMMAND = (
    f"python {DRIVER_FILE} --data ${{{{inputs.{DATA_INPUT}}}}} --model ${{{{inputs.model}}}} "
    f"--output ${{{{outputs.{SCORE_OUTPUT}}}}}"
)
# Azure's JobInputType values, as Shipyard's input types.
_AZURE_TYPES = {"urifolder": "uri_folder", "urifile": "uri_file", "literal": "literal"}


def jobs_path(workspace: str, endpoint: str) -> str:
    """Where an invoke is POSTed (the endpoint's scoring URI, as Azure's ``.../jobs``)."""
    return (
        f"/api/v1/workspaces/{quote(workspace, safe='')}/batchEndpoints/"
        f"{quote(endpoint, safe='')}/jobs"
    )


class BatchEndpointService:
    def __init__(
        self,
        db: Database,
        jobs: JobService,
        pipelines: PipelineService,
        *,
        server_url: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.pipelines = pipelines
        self.server_url = server_url.rstrip("/")
        self.clock = clock

    # -- the endpoint ------------------------------------------------------------------------

    def create(
        self, principal: Principal, workspace: str, body: BatchEndpointCreate
    ) -> BatchEndpointRead:
        name = check_endpoint_name(body.name)
        default = body.defaults.deployment_name
        if default is not None:
            raise InvalidInputError(
                "a new endpoint has no deployments: create one (it becomes the default)",
                code="unknown_deployment",
                field="defaults.deployment_name",
            )
        now = self.clock()
        try:
            with self.db.write() as session:
                ws = workspace_row(session, workspace)
                if store.get_endpoint(session, ws.id, name) is not None:
                    raise _exists(name)
                row = BatchEndpointRow(
                    workspace_id=ws.id,
                    name=name,
                    description=body.description,
                    tags=body.tags,
                    auth_mode=body.auth_mode,
                    created_by=principal.id,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                return self._reads(session, workspace, [row])[0]
        except IntegrityError as exc:
            raise _exists(name) from exc

    def get(self, workspace: str, name: str) -> BatchEndpointRead:
        with self.db.read() as session:
            row = require_batch_endpoint(session, workspace, name)
            return self._reads(session, workspace, [row])[0]

    def list(
        self, workspace: str, *, page_token: str | None, max_results: int
    ) -> Page[BatchEndpointRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            ws = workspace_row(session, workspace)
            rows = store.list_endpoints(session, ws.id, after=after, limit=max_results + 1)
            page, token = split_page(rows, max_results, lambda r: r.name)
            return Page[BatchEndpointRead](
                items=self._reads(session, workspace, page), next_page_token=token
            )

    def update(
        self, principal: Principal, workspace: str, name: str, body: BatchEndpointUpdate
    ) -> BatchEndpointRead:
        """Only the fields given change; the default must be one of its deployments."""
        check_endpoint_name(name)
        if body.name is not None and body.name != name:
            raise ConflictError(
                f"the body names endpoint {body.name!r}, the path {name!r}; an endpoint cannot "
                "be renamed",
                code="name_mismatch",
                field="name",
            )
        with self.db.write() as session:
            row = require_batch_endpoint(session, workspace, name)
            if body.description is not None:
                row.description = body.description
            if body.tags is not None:
                row.tags = body.tags
            if body.defaults is not None and body.defaults.deployment_name is not None:
                default = body.defaults.deployment_name
                if store.get_deployment(session, row.id, default) is None:
                    raise InvalidInputError(
                        f"batch endpoint {name!r} has no deployment {default!r}",
                        code="unknown_deployment",
                        field="defaults.deployment_name",
                    )
                row.default_deployment = default
            row.updated_at = self.clock()
            session.flush()
            return self._reads(session, workspace, [row])[0]

    def delete(self, workspace: str, name: str) -> None:
        """With its deployments; the jobs it started stay."""
        with self.db.write() as session:
            session.delete(require_batch_endpoint(session, workspace, name))

    def _reads(
        self, session: Session, workspace: str, rows: builtins.list[BatchEndpointRow]
    ) -> builtins.list[BatchEndpointRead]:
        people = names_of(session, UserRow, {r.created_by for r in rows})
        return [
            BatchEndpointRead(
                name=row.name,
                description=row.description,
                tags=row.tags,
                auth_mode=row.auth_mode,
                defaults={"deployment_name": row.default_deployment},
                scoring_uri=self.server_url + jobs_path(workspace, row.name),
                created_by=people.get(row.created_by),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in rows
        ]

    # -- invoke ------------------------------------------------------------------------------

    def invoke(
        self,
        principal: Principal,
        workspace: str,
        name: str,
        body: BatchInvoke,
        *,
        deployment_name: str | None = None,
    ) -> JobRead:
        """Start a job of the deployment named (in the body, or the ``deployment_name``
        header), else of the endpoint's default."""
        check_endpoint_name(name, field="endpoint_name")
        inputs = _inputs(body)
        chosen = body.deployment_name or deployment_name
        with self.db.read() as session:
            parent = require_batch_endpoint(session, workspace, name)
            chosen = chosen or parent.default_deployment
            if chosen is None:
                raise InvalidInputError(
                    f"batch endpoint {name!r} has no default deployment: name one",
                    code="missing_field",
                    field="deployment_name",
                )
            check_deployment_name(chosen, field="deployment_name")
            deployment = require_deployment(session, parent, chosen)
            endpoint_id, kind = parent.id, deployment.type
            spec = {**deployment.spec, "code_digest": deployment.code_digest}
        experiment = body.experiment_name or name
        tags = {**body.tags, "azureml.batch_endpoint": name, "azureml.batch_deployment": chosen}
        if kind == "pipeline":
            job = self._pipeline_job(principal, workspace, spec, inputs, experiment, tags, body)
            self._link(job.id, endpoint_id, chosen)
            return job
        return self._model_job(
            principal, workspace, endpoint_id, chosen, spec, inputs, experiment, tags, body
        )

    def _model_job(
        self,
        principal: Principal,
        workspace: str,
        endpoint_id: str,
        deployment: str,
        spec: dict[str, Any],
        inputs: dict[str, Any],
        experiment: str,
        tags: dict[str, str],
        body: BatchInvoke,
    ) -> JobRead:
        data = [(k, v) for k, v in inputs.items() if isinstance(v, dict)]
        if len(data) != 1 or len(inputs) != 1:
            raise InvalidInputError(
                "a model deployment takes exactly one data input (a folder or a file)",
                code="invalid_inputs",
                field="inputs",
            )
        given_name, given = data[0]
        model = spec["model"]
        settings = spec["settings"]
        retry = settings.get("retry_settings") or {}
        config = {
            "scoring_script": (spec.get("code_configuration") or {}).get("scoring_script"),
            "mini_batch_size": settings["mini_batch_size"],
            "max_concurrency": settings["max_concurrency_per_instance"],
            "error_threshold": settings["error_threshold"],
            "max_retries": retry.get("max_retries", 3),
            "timeout": retry.get("timeout", 30),
            "output_action": settings["output_action"],
            "output_file_name": settings["output_file_name"],
            "logging_level": settings["logging_level"],
        }
        model_path = f"azureml:{model['asset']}" if model.get("asset") else model["uri"]
        command = CommandJobCreate.model_validate(
            {
                "name": _new_name(),
                "display_name": body.display_name,
                "experiment_name": experiment,
                "tags": tags,
                "command": _DRIVER_COMMAND,
                "code": f"sha256:{spec['code_digest']}",
                "environment_variables": {
                    **settings.get("environment_variables", {}),
                    CONFIG_VARIABLE: json.dumps(config),
                },
                "compute": spec["compute"],
                "inputs": {
                    DATA_INPUT: given,
                    "model": {"type": model["type"], "path": model_path, "mode": "ro_mount"},
                },
                "outputs": {SCORE_OUTPUT: {"type": "uri_folder", "mode": "rw_mount"}},
            }
        )
        assert command.name is not None
        try:
            prepared = self.jobs.prepare(
                principal, workspace, command, name=command.name, environment=spec["environment"]
            )
        except ShipyardError as exc:
            if exc.field and exc.field.startswith(f"inputs.{DATA_INPUT}"):
                exc.field = f"inputs.{given_name}" + exc.field[len(f"inputs.{DATA_INPUT}") :]
            raise
        try:
            with self.db.write() as session:
                ws = workspace_row(session, workspace)
                found = get_or_create(session, ws.id, prepared.spec["experiment_name"])
                submission = self.jobs.insert(session, ws, found.id, principal, prepared)
                session.add(
                    BatchEndpointJobRow(
                        job_id=submission.job_id,
                        endpoint_id=endpoint_id,
                        deployment=deployment,
                        created_at=self.clock(),
                    )
                )
        except IntegrityError as exc:
            raise name_taken(command.name) from exc
        self.jobs.wake()
        return self.jobs.get(workspace, command.name)

    def _pipeline_job(
        self,
        principal: Principal,
        workspace: str,
        spec: dict[str, Any],
        inputs: dict[str, Any],
        experiment: str,
        tags: dict[str, str],
        body: BatchInvoke,
    ) -> JobRead:
        template: dict[str, Any]
        definition = spec.get("job_definition")
        if isinstance(definition, str):
            template = self._template(workspace, definition)
        elif isinstance(definition, dict):
            template = dict(definition)
        else:
            template = {
                "jobs": {
                    "batch": {
                        "component": spec["component"],
                        "inputs": {k: f"${{{{parent.inputs.{k}}}}}" for k in inputs},
                    }
                }
            }
        settings = {**(template.get("settings") or {}), **(spec.get("settings") or {})}
        document = {
            **template,
            "type": "pipeline",
            "name": None,
            "display_name": body.display_name,
            "experiment_name": experiment,
            "tags": {**(template.get("tags") or {}), **tags},
            "inputs": {**(template.get("inputs") or {}), **inputs},
            "settings": settings,
        }
        if spec.get("compute"):
            document["compute"] = spec["compute"]
        document = {k: v for k, v in document.items() if v is not None}
        try:
            pipeline = PipelineJobCreate.model_validate(document)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidInputError(
                f"{where}: {first['msg']}", code="invalid_inputs", field=where
            ) from exc
        return self.pipelines.create(principal, workspace, pipeline)

    def _template(self, workspace: str, job_name: str) -> dict[str, Any]:
        with self.db.read() as session:
            ws = workspace_row(session, workspace)
            sub = job_store.get_submission(session, ws.id, job_name)
            if sub is None or sub.spec.get("type") != "pipeline":
                raise NotFoundError(
                    f"pipeline job {job_name!r} (the deployment's job_definition) does not exist",
                    code="job_not_found",
                    field="job_definition",
                )
            submitted = dict(sub.spec.get("submitted") or {})
        submitted.pop("name", None)
        return submitted

    def _link(self, job_id: str, endpoint_id: str, deployment: str) -> None:
        with self.db.write() as session:
            session.add(
                BatchEndpointJobRow(
                    job_id=job_id,
                    endpoint_id=endpoint_id,
                    deployment=deployment,
                    created_at=self.clock(),
                )
            )

    def list_jobs(self, workspace: str, name: str, *, max_results: int) -> builtins.list[JobRead]:
        """The newest first."""
        with self.db.read() as session:
            parent = require_batch_endpoint(session, workspace, name)
            ids = store.list_job_ids(session, parent.id, limit=min(max_results, MAX_LISTED_JOBS))
            names = [
                sub.name
                for job_id in ids
                if (sub := job_store.get_submission_by_job(session, job_id)) is not None
            ]
        return [self.jobs.get(workspace, job) for job in names]


def _inputs(body: BatchInvoke) -> dict[str, Any]:
    """The invoke's inputs as job inputs: ``{name: {type, path}}`` or a literal."""
    if (body.properties is None) == (body.inputs is None):
        raise InvalidInputError(
            "give inputs (or Azure's properties.InputData), one of them",
            code="missing_field",
            field="inputs",
        )
    if body.properties is not None:
        found: dict[str, Any] = {}
        for key, value in body.properties.InputData.items():
            field = f"properties.InputData.{key}"
            kind = _AZURE_TYPES.get(value.JobInputType.lower())
            if kind is None:
                raise InvalidInputError(
                    f"JobInputType is UriFolder, UriFile or Literal, not {value.JobInputType!r}",
                    code="invalid_input_type",
                    field=f"{field}.JobInputType",
                )
            if kind == "literal":
                found[key] = value.Value
                continue
            if not value.Uri:
                raise InvalidInputError(
                    "Uri is required", code="missing_field", field=f"{field}.Uri"
                )
            found[key] = {"type": kind, "path": value.Uri}
        return _checked(found, "properties.InputData")
    assert body.inputs is not None
    found = {}
    for key, value in body.inputs.items():
        if isinstance(value, Mapping):
            path = value.get("path")
            if not isinstance(path, str) or not path:
                raise InvalidInputError(
                    "path is required", code="missing_field", field=f"inputs.{key}.path"
                )
            kind = input_type_of(value.get("type"), field=f"inputs.{key}.type")
            found[key] = {"type": kind, "path": path}
        elif isinstance(value, str | int | float | bool):
            found[key] = value
        else:
            raise InvalidInputError(
                "an input is {type, path} or a literal value",
                code="invalid_inputs",
                field=f"inputs.{key}",
            )
    return _checked(found, "inputs")


def _checked(inputs: dict[str, Any], field: str) -> dict[str, Any]:
    if not inputs:
        raise InvalidInputError("no input given", code="missing_field", field=field)
    return inputs


def _new_name() -> str:
    return "batchjob_" + "".join(random.choice(_ALPHABET) for _ in range(12))


def _exists(name: str) -> ConflictError:
    return ConflictError(
        f"batch endpoint {name!r} already exists in this workspace; update it instead",
        code="endpoint_exists",
        field="name",
    )
