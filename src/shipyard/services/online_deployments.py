"""Online deployments: a model, scoring code and an environment, run as instances behind an
endpoint (docs/endpoints.md).

Creating or updating a deployment checks and pins everything its instances will need, as a
job submission does (``services.jobs``): the model reference to a version and its files' URI,
the environment to a version and its spec, the code to an uploaded snapshot that holds the
scoring script, secret references to secrets that exist. The row keeps that desired spec and
a ``generation`` that grows with every change; the runtime (``serving/``) runs what the spec
says, and reports back through ``report_state``: the provisioning state, one entry per
instance and the last error. Until a runtime picks a deployment up it stays ``Creating``.

Instances write their output to ``<logs_root>/<deployment id>/logs/*.log``; ``logs`` returns the
last lines of those files.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.content import is_digest
from shipyard.domain.endpoints import (
    CREATING,
    PROVISIONING_STATES,
    UPDATING,
    check_deployment_name,
    check_endpoint_name,
    instance_part,
    takes_traffic,
    without_deployment,
)
from shipyard.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from shipyard.domain.paging import decode_page_token
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.endpoints import (
    DeploymentLogsRead,
    OnlineDeploymentCreate,
    OnlineDeploymentRead,
    OnlineDeploymentUpdate,
)
from shipyard.services.authz import Authorizer
from shipyard.services.data_collection import check_data_collector
from shipyard.services.deployment_specs import (
    pin_model,
    same_endpoint,
    scoring_script_path,
)
from shipyard.services.endpoints import deployment_compute, require_endpoint
from shipyard.services.environments import Environments
from shipyard.services.job_inputs import IoResolver
from shipyard.services.model_assets import ModelAssetService
from shipyard.services.paging import split_page
from shipyard.services.secret_references import check_secret_references
from shipyard.services.secrets import SecretService
from shipyard.services.workspace_rows import live_workspace
from shipyard.store import endpoints as store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.endpoints import OnlineDeploymentRow, OnlineEndpointRow
from shipyard.store.tracking import names_of
from shipyard.store.uploads import get_upload
from shipyard.store.users import UserRow

DEFAULT_LOG_LINES = 100
MAX_LOG_LINES = 10_000
# Read from the end of each log file at most this much: a long-running instance's log grows.
_LOG_TAIL_BYTES = 4 * 1024 * 1024
# Fields of the body kept as given (Azure's, with no meaning here) in the spec's "extra".
_EXTRA = (
    "scale_settings",
    "app_insights_enabled",
    "egress_public_network_access",
)


@dataclass(frozen=True)
class _Prepared:
    spec: dict[str, Any]
    code_digest: str | None


class OnlineDeploymentService:
    def __init__(
        self,
        db: Database,
        authorizer: Authorizer,
        io: IoResolver,
        models: ModelAssetService,
        environments: Environments,
        secrets: SecretService,
        *,
        logs_root: Path,
        clock: Callable[[], datetime] = utcnow,
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.authorizer = authorizer
        self.io = io
        self.models = models
        self.environments = environments
        self.secrets = secrets
        self.logs_root = logs_root
        self.clock = clock
        self.changed = changed  # wakes the runtime (services.deployment_runtime)

    # -- create, update ------------------------------------------------------------------------

    def create(
        self,
        principal: Principal,
        workspace: str,
        endpoint: str,
        body: OnlineDeploymentCreate,
        *,
        all_traffic: bool = False,
    ) -> OnlineDeploymentRead:
        """Refused (409) when the endpoint has a deployment of that name: update it instead.
        ``all_traffic``: the endpoint sends it 100% of live traffic from now on."""
        check_endpoint_name(endpoint, field="endpoint_name")
        name = check_deployment_name(body.name)
        same_endpoint(body.endpoint_name, endpoint)
        with self.db.read() as session:  # 404 and 409 before any resolving
            parent = require_endpoint(session, workspace, endpoint)
            if store.get_deployment(session, parent.id, name) is not None:
                raise _exists(name, endpoint)
        prepared = self._prepare(principal, workspace, body, endpoint=endpoint)
        now = self.clock()
        try:
            with self.db.write() as session:
                parent = require_endpoint(session, workspace, endpoint, lock=all_traffic)
                if store.get_deployment(session, parent.id, name) is not None:
                    raise _exists(name, endpoint)
                row = OnlineDeploymentRow(
                    endpoint_id=parent.id,
                    name=name,
                    description=body.description,
                    tags=body.tags,
                    spec=prepared.spec,
                    code_digest=prepared.code_digest,
                    provisioning_state=CREATING,
                    created_by=principal.id,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                if all_traffic:
                    parent.traffic = {
                        **dict.fromkeys(parent.traffic, 0),
                        name: 100,
                    }
                    parent.mirror_traffic = without_deployment(parent.mirror_traffic, name)
                    parent.updated_at = now
                session.flush()
                created = self._reads(session, parent, [row])[0]
        except IntegrityError as exc:
            raise _exists(name, endpoint) from exc
        self.changed()
        return created

    def update(
        self,
        principal: Principal,
        workspace: str,
        endpoint: str,
        name: str,
        body: OnlineDeploymentUpdate,
    ) -> OnlineDeploymentRead:
        """The fields given replace the deployment's; the whole spec is checked again."""
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
            parent = require_endpoint(session, workspace, endpoint)
            current = _require(session, parent, name)
            submitted = dict(current.spec.get("submitted") or {})
        changes = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        merged = OnlineDeploymentCreate.model_validate({**submitted, **changes, "name": name})
        prepared = self._prepare(principal, workspace, merged, endpoint=endpoint)
        with self.db.write() as session:
            parent = require_endpoint(session, workspace, endpoint)
            row = _require(session, parent, name)
            if prepared.spec.get("compute") != row.spec.get("compute"):
                raise ConflictError(
                    f"deployment {name!r} runs on compute "
                    f"{(row.spec.get('compute') or {}).get('name', 'local')!r}; its compute "
                    "cannot change: create another deployment on the other compute",
                    code="compute_immutable",
                    field="compute",
                )
            row.description = merged.description
            row.tags = merged.tags
            if instance_part(prepared.spec) != instance_part(row.spec):
                row.generation += 1
                row.provisioning_state = UPDATING
            row.spec = prepared.spec
            row.code_digest = prepared.code_digest
            row.updated_at = self.clock()
            session.flush()
            updated = self._reads(session, parent, [row])[0]
        self.changed()
        return updated

    def _prepare(
        self, principal: Principal, workspace: str, body: OnlineDeploymentCreate, *, endpoint: str
    ) -> _Prepared:
        with self.db.read() as session:  # a Ray compute: a Serve application (docs)
            compute = deployment_compute(session, workspace, endpoint, body.compute)
        model = (
            pin_model(self.models, self.io, workspace, body.model, with_location=True)
            if body.model is not None
            else None
        )
        code = body.code_configuration
        if code is None and (model is None or model["type"] != "mlflow_model"):
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
        environment = (
            self.environments.resolve(principal, workspace, body.environment).pinned()
            if body.environment is not None
            else None
        )
        check_secret_references(
            self.authorizer, self.secrets, principal, workspace, body.environment_variables
        )
        digest = self._check_code(workspace, code.code, code.scoring_script) if code else None
        collector = check_data_collector(
            self.db,
            self.io.resolver,
            self.authorizer,
            principal,
            workspace=workspace,
            endpoint=endpoint,
            deployment=body.name,
            raw=body.data_collector,
        )
        spec: dict[str, Any] = {
            "model": model,
            "code_configuration": (
                {"code": code.code, "scoring_script": scoring_script_path(code.scoring_script)}
                if code
                else None
            ),
            "environment": environment,
            "environment_variables": body.environment_variables,
            "instance_type": body.instance_type,
            "compute": compute,
            "instance_count": body.instance_count,
            "request_settings": body.request_settings.model_dump(),
            "liveness_probe": body.liveness_probe.model_dump(),
            "readiness_probe": body.readiness_probe.model_dump(),
            "extra": {k: getattr(body, k) for k in _EXTRA if getattr(body, k) is not None},
            # What the gateway samples to a datastore (services.data_collection); None: nothing.
            "data_collector": collector,
            # As given, so an update can change some fields and check the whole again.
            "submitted": body.model_dump(mode="json", by_alias=True, exclude_unset=True),
        }
        return _Prepared(spec, digest)

    def _check_code(self, workspace: str, code: str, script: str) -> str:
        field = "code_configuration.code"
        digest = code.removeprefix("sha256:")
        if not code.startswith("sha256:") or not is_digest(digest):
            raise InvalidInputError(
                "code must be 'sha256:<digest>' of an uploaded code snapshot; the CLI and SDK "
                "upload a local folder and fill this in",
                code="invalid_code",
                field=field,
            )
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            upload = get_upload(session, ws.id, "code", digest)
            if upload is None or upload.committed_at is None:
                raise NotFoundError(
                    "the code snapshot has not been uploaded to this workspace",
                    code="code_not_found",
                    field=field,
                )
            files = {entry[0] for entry in upload.manifest}
        if scoring_script_path(script) not in files:
            raise InvalidInputError(
                f"the code snapshot holds no file {script[:200]!r}",
                code="scoring_script_not_found",
                field="code_configuration.scoring_script",
            )
        return digest

    # -- read, delete ----------------------------------------------------------------------------

    def get(self, workspace: str, endpoint: str, name: str) -> OnlineDeploymentRead:
        with self.db.read() as session:
            parent = require_endpoint(session, workspace, endpoint)
            return self._reads(session, parent, [_require(session, parent, name)])[0]

    def list(
        self, workspace: str, endpoint: str, *, page_token: str | None, max_results: int
    ) -> Page[OnlineDeploymentRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            parent = require_endpoint(session, workspace, endpoint)
            rows = store.list_deployments(session, parent.id, after=after, limit=max_results + 1)
            page, token = split_page(rows, max_results, lambda r: r.name)
            return Page[OnlineDeploymentRead](
                items=self._reads(session, parent, page), next_page_token=token
            )

    def delete(self, workspace: str, endpoint: str, name: str) -> None:
        """Refused while the endpoint sends it live or mirrored traffic (as Azure)."""
        with self.db.write() as session:
            parent = require_endpoint(session, workspace, endpoint, lock=True)
            row = _require(session, parent, name)
            split = takes_traffic(name, parent.traffic, parent.mirror_traffic)
            if split is not None:
                raise ConflictError(
                    f"deployment {name!r} takes {split} of endpoint {endpoint!r}; set its "
                    f"{split} to 0 first (online-endpoint update --{split.replace('_', '-')})",
                    code="deployment_takes_traffic",
                    field=split,
                )
            parent.traffic = without_deployment(parent.traffic, name)
            parent.updated_at = self.clock()
            session.delete(row)
        self.changed()

    def logs(
        self, workspace: str, endpoint: str, name: str, *, lines: int = DEFAULT_LOG_LINES
    ) -> DeploymentLogsRead:
        if not 1 <= lines <= MAX_LOG_LINES:
            raise InvalidInputError(
                f"lines is 1 to {MAX_LOG_LINES}", code="invalid_lines", field="lines"
            )
        with self.db.read() as session:
            parent = require_endpoint(session, workspace, endpoint)
            row = _require(session, parent, name)
            deployment_id, error = row.id, row.error
        folder = self.logs_root / deployment_id
        # The runtime's supervisor writes one log per instance under logs/; the one written
        # last goes last, so the tail is the newest lines.
        logs = [*folder.glob("*.log"), *folder.glob("logs/*.log")]
        found = _tail(sorted(logs, key=_modified), lines)
        if not found and error:
            found = error.splitlines()[-lines:]
        return DeploymentLogsRead(text="".join(f"{line}\n" for line in found), lines=len(found))

    # -- the runtime's side ----------------------------------------------------------------------

    def report_state(
        self,
        deployment_id: str,
        *,
        provisioning_state: str,
        instances: Sequence[dict[str, Any]] = (),
        error: str | None = None,
        generation: int | None = None,
    ) -> bool:
        """Record what the runtime sees of a deployment. With ``generation``, only if the
        spec is still that one (a report about a replaced spec is dropped): False then, or
        when the deployment is gone."""
        if provisioning_state not in PROVISIONING_STATES:
            raise ValueError(f"not a provisioning state: {provisioning_state!r}")
        with self.db.write() as session:
            row = session.get(OnlineDeploymentRow, deployment_id)
            if row is None or (generation is not None and row.generation != generation):
                return False
            row.provisioning_state = provisioning_state
            row.instances = [dict(i) for i in instances]
            row.error = error
            row.state_updated_at = self.clock()
            return True

    def _reads(
        self, session: Session, parent: OnlineEndpointRow, rows: builtins.list[OnlineDeploymentRow]
    ) -> builtins.list[OnlineDeploymentRead]:
        people = names_of(session, UserRow, {r.created_by for r in rows})
        return [_read(row, parent.name, people.get(row.created_by)) for row in rows]


def _read(row: OnlineDeploymentRow, endpoint: str, creator: str | None) -> OnlineDeploymentRead:
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
    return OnlineDeploymentRead(
        name=row.name,
        endpoint_name=endpoint,
        description=row.description,
        tags=row.tags,
        model=shown_model,
        model_type=model["type"] if model else None,
        code_configuration=spec.get("code_configuration"),
        environment=(
            f"azureml:{environment['name']}:{environment['version']}" if environment else None
        ),
        environment_variables=spec.get("environment_variables") or {},
        instance_type=spec.get("instance_type"),
        compute=(spec.get("compute") or {}).get("name"),
        instance_count=int(spec.get("instance_count") or 1),
        request_settings=spec.get("request_settings") or {},
        data_collector=spec.get("data_collector"),
        liveness_probe=spec.get("liveness_probe") or {},
        readiness_probe=spec.get("readiness_probe") or {},
        provisioning_state=row.provisioning_state,
        generation=row.generation,
        instances=list(row.instances or []),
        error=row.error,
        created_by=creator,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed meanwhile: read as empty
        return 0.0


def _tail(files: list[Path], lines: int) -> list[str]:
    found: list[str] = []
    for file in files:
        try:
            with open(file, "rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(max(0, size - _LOG_TAIL_BYTES))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            continue
        found.extend(text.splitlines())
    return found[-lines:]


def _require(session: Session, parent: OnlineEndpointRow, name: str) -> OnlineDeploymentRow:
    row = store.get_deployment(session, parent.id, name)
    if row is None:
        raise NotFoundError(
            f"deployment {name!r} does not exist on online endpoint {parent.name!r}",
            code="deployment_not_found",
            field="name",
        )
    return row


def _exists(name: str, endpoint: str) -> ConflictError:
    return ConflictError(
        f"deployment {name!r} already exists on online endpoint {endpoint!r}; update it instead",
        code="deployment_exists",
        field="name",
    )
