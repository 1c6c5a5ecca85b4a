"""Batch deployments: what a batch endpoint's jobs run (docs/batch-endpoints.md).

A ``type: model`` deployment is pinned at create/update as a job submission is: the model to
a version, the environment to a version and its spec, the compute checked, the code to a
snapshot that holds the scoring script and the batch driver (``services.batch_code``). Invoking
it (``services.batch_endpoints``) makes a command job from that spec. A ``type: pipeline``
deployment names a pipeline component (or an earlier pipeline job as its template); invoking
it submits a pipeline job.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.batch_endpoints import check_output_file_name
from shipyard.domain.content import is_digest
from shipyard.domain.endpoints import check_deployment_name, check_endpoint_name
from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.domain.paging import decode_page_token
from shipyard.domain.principals import Principal
from shipyard.schemas.batch_endpoints import (
    BatchDeploymentCreate,
    BatchDeploymentRead,
    BatchDeploymentUpdate,
    ModelBatchSettings,
)
from shipyard.schemas.common import Page
from shipyard.schemas.pipelines import PipelineSettings
from shipyard.services.authz import Authorizer
from shipyard.services.batch_code import BatchCode
from shipyard.services.deployment_specs import (
    pin_model,
    same_endpoint,
    scoring_script_path,
)
from shipyard.services.environments import Environments
from shipyard.services.job_inputs import IoResolver
from shipyard.services.model_assets import ModelAssetService
from shipyard.services.paging import split_page
from shipyard.services.secret_references import check_secret_references
from shipyard.services.secrets import SecretService
from shipyard.store import batch_endpoints as store
from shipyard.store.base import utcnow
from shipyard.store.batch_endpoints import BatchDeploymentRow, BatchEndpointRow
from shipyard.store.computes import get_compute
from shipyard.store.database import Database
from shipyard.store.tracking import names_of
from shipyard.store.users import UserRow
from shipyard.store.workspaces import WorkspaceRow, get_workspace

LOCAL_COMPUTE = "local"
#: An MLflow model deployed without an environment runs in this curated one.
MLFLOW_ENVIRONMENT = "azureml:shipyard-sklearn@latest"


class BatchDeploymentService:
    def __init__(
        self,
        db: Database,
        authorizer: Authorizer,
        io: IoResolver,
        models: ModelAssetService,
        environments: Environments,
        secrets: SecretService,
        code: BatchCode,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.authorizer = authorizer
        self.io = io
        self.models = models
        self.environments = environments
        self.secrets = secrets
        self.code = code
        self.clock = clock

    # -- create, update ------------------------------------------------------------------------

    def create(
        self,
        principal: Principal,
        workspace: str,
        endpoint: str,
        body: BatchDeploymentCreate,
        *,
        set_default: bool = False,
    ) -> BatchDeploymentRead:
        """409 when the endpoint has a deployment of that name. ``set_default``: the
        endpoint's default from now on (also when it had none)."""
        check_endpoint_name(endpoint, field="endpoint_name")
        name = check_deployment_name(body.name)
        same_endpoint(body.endpoint_name, endpoint)
        with self.db.read() as session:
            parent = require_batch_endpoint(session, workspace, endpoint)
            if store.get_deployment(session, parent.id, name) is not None:
                raise _exists(name, endpoint)
        spec, digest = self._prepare(principal, workspace, body)
        now = self.clock()
        try:
            with self.db.write() as session:
                parent = require_batch_endpoint(session, workspace, endpoint)
                row = BatchDeploymentRow(
                    endpoint_id=parent.id,
                    name=name,
                    description=body.description,
                    tags=body.tags,
                    type=body.type,
                    spec=spec,
                    code_digest=digest,
                    created_by=principal.id,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                # Azure makes the first deployment the default; so does Shipyard.
                if set_default or parent.default_deployment is None:
                    parent.default_deployment = name
                    parent.updated_at = now
                session.flush()
                return self._reads(session, parent, [row])[0]
        except IntegrityError as exc:
            raise _exists(name, endpoint) from exc

    def update(
        self,
        principal: Principal,
        workspace: str,
        endpoint: str,
        name: str,
        body: BatchDeploymentUpdate,
        *,
        set_default: bool = False,
    ) -> BatchDeploymentRead:
        """The fields given replace the deployment's; the whole is checked again."""
        check_endpoint_name(endpoint, field="endpoint_name")
        check_deployment_name(name)
        if body.name is not None and body.name != name:
            raise ConflictError(
                f"the body names deployment {body.name!r}, the path {name!r}; a deployment "
                "cannot be renamed",
                code="name_mismatch",
                field="name",
            )
        same_endpoint(body.endpoint_name, endpoint)
        with self.db.read() as session:
            parent = require_batch_endpoint(session, workspace, endpoint)
            submitted = dict(require_deployment(session, parent, name).spec.get("submitted") or {})
        changes = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        try:
            merged = BatchDeploymentCreate.model_validate({**submitted, **changes, "name": name})
        except ValidationError as exc:
            raise _invalid(exc, "") from exc
        spec, digest = self._prepare(principal, workspace, merged)
        with self.db.write() as session:
            parent = require_batch_endpoint(session, workspace, endpoint)
            row = require_deployment(session, parent, name)
            row.description = merged.description
            row.tags = merged.tags
            row.type = merged.type
            row.spec = spec
            row.code_digest = digest
            row.updated_at = self.clock()
            if set_default:
                parent.default_deployment = name
                parent.updated_at = row.updated_at
            session.flush()
            return self._reads(session, parent, [row])[0]

    def _prepare(
        self, principal: Principal, workspace: str, body: BatchDeploymentCreate
    ) -> tuple[dict[str, Any], str | None]:
        submitted = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        if body.type == "pipeline":
            return {**self._pipeline(body), "submitted": submitted}, None
        for field in ("component", "job_definition"):
            if getattr(body, field) is not None:
                raise InvalidInputError(
                    f"{field} belongs to a type: pipeline deployment",
                    code="unexpected_field",
                    field=field,
                )
        if body.model is None:
            raise InvalidInputError(
                "a model deployment needs a model", code="missing_field", field="model"
            )
        settings = _model_settings(body.settings)
        model = pin_model(self.models, self.io, workspace, body.model, with_location=False)
        code = body.code_configuration
        if code is None and model["type"] != "mlflow_model":
            raise InvalidInputError(
                "code_configuration (code and scoring_script) is required unless the model "
                "is an mlflow_model",
                code="missing_field",
                field="code_configuration",
            )
        if body.environment is None and code is not None:
            raise InvalidInputError(
                "environment is required with scoring code (only an mlflow_model deployment "
                "without code may leave it out)",
                code="missing_field",
                field="environment",
            )
        environment = self.environments.pin(
            principal, workspace, body.environment or MLFLOW_ENVIRONMENT
        )
        check_secret_references(
            self.authorizer,
            self.secrets,
            principal,
            workspace,
            settings.environment_variables,
            field="settings.environment_variables",
        )
        script = scoring_script_path(code.scoring_script) if code else None
        with self.db.read() as session:
            ws = workspace_row(session, workspace)
            compute = _check_compute(session, ws, body.compute)
        user_digest = _user_digest(code.code) if code else None
        digest = self.code.with_driver(principal, ws, user_digest, script)
        spec: dict[str, Any] = {
            "model": model,
            "code_configuration": (
                {"code": code.code, "scoring_script": script} if code is not None else None
            ),
            "environment": environment,
            "compute": compute,
            "resources": body.resources.model_dump(),
            "settings": settings.model_dump(),
            "submitted": submitted,
        }
        return spec, digest

    def _pipeline(self, body: BatchDeploymentCreate) -> dict[str, Any]:
        for field in ("model", "code_configuration", "environment"):
            if getattr(body, field) is not None:
                raise InvalidInputError(
                    f"{field} belongs to a type: model deployment",
                    code="unexpected_field",
                    field=field,
                )
        if (body.component is None) == (body.job_definition is None):
            raise InvalidInputError(
                "a pipeline deployment names a component or a job_definition (one of them)",
                code="missing_field",
                field="component",
            )
        try:
            settings = PipelineSettings.model_validate(body.settings)
        except ValidationError as exc:
            raise _invalid(exc, "settings.") from exc
        job_definition = body.job_definition
        if isinstance(job_definition, str):
            job_definition = job_definition.removeprefix("azureml:")
            if not job_definition:
                raise InvalidInputError(
                    "job_definition is azureml:<pipeline job name>",
                    code="invalid_reference",
                    field="job_definition",
                )
        return {
            "component": body.component,
            "job_definition": job_definition,
            "compute": body.compute,
            "settings": settings.model_dump(exclude_unset=True),
        }

    # -- read, delete ----------------------------------------------------------------------------

    def get(self, workspace: str, endpoint: str, name: str) -> BatchDeploymentRead:
        with self.db.read() as session:
            parent = require_batch_endpoint(session, workspace, endpoint)
            return self._reads(session, parent, [require_deployment(session, parent, name)])[0]

    def list(
        self, workspace: str, endpoint: str, *, page_token: str | None, max_results: int
    ) -> Page[BatchDeploymentRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            parent = require_batch_endpoint(session, workspace, endpoint)
            rows = store.list_deployments(session, parent.id, after=after, limit=max_results + 1)
            page, token = split_page(rows, max_results, lambda r: r.name)
            return Page[BatchDeploymentRead](
                items=self._reads(session, parent, page), next_page_token=token
            )

    def delete(self, workspace: str, endpoint: str, name: str) -> None:
        """Refused for the endpoint's default while it has other deployments (as Azure):
        make another the default first. Its jobs stay."""
        with self.db.write() as session:
            parent = require_batch_endpoint(session, workspace, endpoint)
            row = require_deployment(session, parent, name)
            if parent.default_deployment == name:
                others = [d for d in store.list_deployments(session, parent.id) if d.name != name]
                if others:
                    raise ConflictError(
                        f"deployment {name!r} is the default of batch endpoint {endpoint!r}; "
                        "make another deployment the default first",
                        code="default_deployment",
                        field="defaults.deployment_name",
                    )
                parent.default_deployment = None
                parent.updated_at = self.clock()
            session.delete(row)

    def _reads(
        self, session: Session, parent: BatchEndpointRow, rows: builtins.list[BatchDeploymentRow]
    ) -> builtins.list[BatchDeploymentRead]:
        people = names_of(session, UserRow, {r.created_by for r in rows})
        return [_read(row, parent, people.get(row.created_by)) for row in rows]


def _read(
    row: BatchDeploymentRow, parent: BatchEndpointRow, creator: str | None
) -> BatchDeploymentRead:
    spec = row.spec
    model = spec.get("model")
    environment = spec.get("environment")
    shown_model: str | dict[str, Any] | None = None
    if model is not None:
        shown_model = (
            f"azureml:{model['asset']}"
            if model.get("asset")
            else {"path": model["uri"], "type": model["type"]}
        )
    component = spec.get("component")
    job_definition = spec.get("job_definition")
    return BatchDeploymentRead(
        name=row.name,
        endpoint_name=parent.name,
        description=row.description,
        tags=row.tags,
        type=row.type,
        model=shown_model,
        model_type=model["type"] if model else None,
        code_configuration=spec.get("code_configuration"),
        environment=(
            str(environment.get("ref") or f"azureml:{environment['name']}:{environment['version']}")
            if environment
            else None
        ),
        compute=spec.get("compute"),
        resources=spec.get("resources") or {},
        settings=spec.get("settings") or {},
        component=component if isinstance(component, str) or component is None else "inline",
        job_definition=(
            f"azureml:{job_definition}"
            if isinstance(job_definition, str)
            else ("inline" if job_definition is not None else None)
        ),
        is_default=parent.default_deployment == row.name,
        created_by=creator,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _model_settings(given: dict[str, Any]) -> ModelBatchSettings:
    try:
        settings = ModelBatchSettings.model_validate(given)
    except ValidationError as exc:
        raise _invalid(exc, "settings.") from exc
    check_output_file_name(settings.output_file_name)
    return settings


def _invalid(exc: ValidationError, prefix: str) -> InvalidInputError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return InvalidInputError(
        f"{prefix}{where}: {first['msg']}", code="invalid_field", field=f"{prefix}{where}"
    )


def _check_compute(session: Session, ws: WorkspaceRow, compute: str | None) -> str:
    name = (compute or LOCAL_COMPUTE).removeprefix("azureml:")
    if name in ("", LOCAL_COMPUTE, "serverless"):
        return LOCAL_COMPUTE
    found = get_compute(session, ws.id, name)
    if found is None:
        raise NotFoundError(
            f"compute {name!r} does not exist in this workspace",
            code="compute_not_found",
            field="compute",
        )
    return name


def _user_digest(code: str) -> str:
    digest = code.removeprefix("sha256:")
    if not code.startswith("sha256:") or not is_digest(digest):
        raise InvalidInputError(
            "code must be 'sha256:<digest>' of an uploaded code snapshot; the CLI and SDK "
            "upload a local folder and fill this in",
            code="invalid_code",
            field="code_configuration.code",
        )
    return digest


def workspace_row(session: Session, workspace: str) -> WorkspaceRow:
    row = get_workspace(session, workspace)
    if row is None or row.deleted_at is not None:
        raise NotFoundError(
            f"workspace {workspace!r} does not exist", code="workspace_not_found", field="workspace"
        )
    return row


def require_batch_endpoint(session: Session, workspace: str, name: str) -> BatchEndpointRow:
    row = store.get_endpoint(session, workspace_row(session, workspace).id, name)
    if row is None:
        raise NotFoundError(
            f"batch endpoint {name!r} does not exist in workspace {workspace!r}",
            code="endpoint_not_found",
            field="endpoint_name",
        )
    return row


def require_deployment(session: Session, parent: BatchEndpointRow, name: str) -> BatchDeploymentRow:
    row = store.get_deployment(session, parent.id, name)
    if row is None:
        raise NotFoundError(
            f"deployment {name!r} does not exist on batch endpoint {parent.name!r}",
            code="deployment_not_found",
            field="deployment_name",
        )
    return row


def _exists(name: str, endpoint: str) -> ConflictError:
    return ConflictError(
        f"deployment {name!r} already exists on batch endpoint {endpoint!r}; update it instead",
        code="deployment_exists",
        field="name",
    )
