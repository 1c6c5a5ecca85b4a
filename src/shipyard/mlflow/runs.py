"""MLflow's run methods: create, get, update, delete, restore, and logging to a run.

Run names: MLflow keeps a run's name both as ``run_name`` and as the tag ``mlflow.runName``;
here the name is the run's own, and the tag is derived from it (setting the tag renames the
run). ``mlflow.parentRunId`` likewise is the run's parent. ``mlflow.user`` is the
authenticated principal, whatever name the client's machine reports.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Depends, Query, Request, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.domain.errors import InvalidInputError
from shipyard.domain.principals import Principal
from shipyard.mlflow import convert
from shipyard.mlflow import schemas as m
from shipyard.mlflow.convert import PARENT_TAG, RUN_NAME_TAG, USER_TAG
from shipyard.mlflow.lookup import active_experiment
from shipyard.mlflow.paths import API_PREFIX
from shipyard.mlflow.schemas import body_of
from shipyard.schemas.tracking import RunCreate, RunUpdate
from shipyard.services.audit import AuditEntry

router = APIRouter(
    prefix=API_PREFIX + "/runs",
    route_class=GuardedRoute,
    tags=["mlflow"],
)


@router.post("/create", response_model=m.RunResponse)
def create_run(
    workspace: str,
    body: m.CreateRun,
    request: Request,
    principal: Principal = require(actions.JOBS_WRITE),
    services: Services = Depends(get_services),
) -> Response:
    experiment_id = body.experiment_id or convert.DEFAULT_EXPERIMENT_ID
    if experiment_id == convert.DEFAULT_EXPERIMENT_ID:
        experiment_id = active_experiment(services, workspace, experiment_id).id
    tags = {t.key: t.value for t in body.tags}
    name = body.run_name or tags.pop(RUN_NAME_TAG, None) or None
    tags.pop(RUN_NAME_TAG, None)
    parent = tags.pop(PARENT_TAG, None) or None
    tags[USER_TAG] = principal.name
    # The request's audit event (started by the requirement) is stored with the run, in its
    # transaction, as the answer it gets when the run is stored.
    audit = getattr(request.state, "audit", None)
    if isinstance(audit, AuditEntry):
        audit.status = 200
    run = services.runs.create(
        principal,
        workspace,
        body_of(
            RunCreate,
            name=name,
            parent_run_id=parent,
            tags=tags,
            start_time=convert.from_ms(body.start_time),
        ),
        # Looked up (and checked active) in the transaction that creates the run.
        experiment_id=experiment_id,
        audit=audit if isinstance(audit, AuditEntry) else None,
    )
    # Serialised here, once: returned as a model, FastAPI would validate it again first.
    created = m.RunResponse(run=convert.run(run))
    return Response(created.model_dump_json(by_alias=True), media_type="application/json")


@router.get("/get", dependencies=[require(actions.JOBS_READ)])
def get_run(
    workspace: str,
    run_id: str | None = Query(None, max_length=64),
    run_uuid: str | None = Query(None, max_length=64),
    services: Services = Depends(get_services),
) -> m.RunResponse:
    ref = body_of(m.RunRef, run_id=run_id, run_uuid=run_uuid)
    run = services.runs.get(workspace, ref.id)
    return m.RunResponse(run=convert.run(run, services.run_inputs.of_runs([run.id])[run.id]))


@router.post("/update", dependencies=[require(actions.JOBS_WRITE)])
def update_run(
    workspace: str, body: m.UpdateRun, services: Services = Depends(get_services)
) -> m.UpdateRunResponse:
    status = convert.shipyard_status(body.status) if body.status else None
    update = body_of(
        RunUpdate,
        name=body.run_name or None,
        status=status,
        end_time=convert.from_ms(body.end_time),
    )
    run = services.runs.update(workspace, body.id, update)
    return m.UpdateRunResponse(run_info=convert.run_info(run))


@router.post("/delete", dependencies=[require(actions.JOBS_DELETE)])
def delete_run(
    workspace: str, body: m.RunRef, services: Services = Depends(get_services)
) -> m.Empty:
    services.runs.set_stage(workspace, body.id, "deleted")
    return m.Empty()


@router.post("/restore", dependencies=[require(actions.JOBS_WRITE)])
def restore_run(
    workspace: str, body: m.RunRef, services: Services = Depends(get_services)
) -> m.Empty:
    services.runs.set_stage(workspace, body.id, "active")
    return m.Empty()


def _log(
    services: Services,
    workspace: str,
    run_id: str,
    *,
    metrics: Sequence[m.Metric] = (),
    params: Sequence[m.Param] = (),
    tags: Sequence[m.Tag] = (),
) -> None:
    """Log what the request carried. Its body model already checked every limit the run
    service's own body would (key length and characters, step and timestamp ranges), so the
    points go on as tuples: a second model per point cost more than storing it."""
    names = [t.value for t in tags if t.key == RUN_NAME_TAG]
    kept = {_key(t.key, "tags"): t.value.strip() for t in tags if t.key not in _DERIVED_TAGS}
    points = [(_key(x.key, "metrics"), x.value, x.step, x.timestamp) for x in metrics]
    values = {_key(p.key, "params"): p.value.strip() for p in params}
    if points or values or kept or not names:
        services.runs.log(workspace, run_id, metrics=points, params=values, tags=kept)
    if names and names[-1]:
        services.runs.update(workspace, run_id, body_of(RunUpdate, name=names[-1]))


_DERIVED_TAGS = (RUN_NAME_TAG, PARENT_TAG)


def _key(key: str, field: str) -> str:
    """Keys are stored stripped of surrounding whitespace, like every Shipyard key."""
    stripped = key.strip()
    if not stripped:
        raise InvalidInputError(
            f"{field}: a key needs a character other than whitespace",
            code="invalid_field",
            field=f"{field}.key",
        )
    return stripped


def _empty() -> Response:
    """MLflow's ``{}``, without building and serialising a model for it."""
    return Response(b"{}", media_type="application/json")


@router.post(
    "/log-metric",
    dependencies=[require(actions.JOBS_WRITE, telemetry=True)],
    response_model=m.Empty,
)
def log_metric(
    workspace: str, body: m.LogMetric, services: Services = Depends(get_services)
) -> Response:
    metric = m.Metric(key=body.key, value=body.value, timestamp=body.timestamp, step=body.step)
    _log(services, workspace, body.id, metrics=[metric])
    return _empty()


@router.post(
    "/log-parameter",
    dependencies=[require(actions.JOBS_WRITE, telemetry=True)],
    response_model=m.Empty,
)
def log_param(
    workspace: str, body: m.LogParam, services: Services = Depends(get_services)
) -> Response:
    _log(services, workspace, body.id, params=[m.Param(key=body.key, value=body.value)])
    return _empty()


@router.post(
    "/set-tag",
    dependencies=[require(actions.JOBS_WRITE, telemetry=True)],
    response_model=m.Empty,
)
def set_tag(workspace: str, body: m.SetTag, services: Services = Depends(get_services)) -> Response:
    _log(services, workspace, body.id, tags=[m.Tag(key=body.key, value=body.value)])
    return _empty()


@router.post("/delete-tag", dependencies=[require(actions.JOBS_WRITE)])
def delete_tag(
    workspace: str, body: m.DeleteTag, services: Services = Depends(get_services)
) -> m.Empty:
    services.runs.delete_tag(workspace, body.id, body.key)
    return m.Empty()


@router.post(
    "/log-batch",
    dependencies=[require(actions.JOBS_WRITE, telemetry=True)],
    response_model=m.Empty,
)
def log_batch(
    workspace: str, body: m.LogBatch, services: Services = Depends(get_services)
) -> Response:
    _log(services, workspace, body.id, metrics=body.metrics, params=body.params, tags=body.tags)
    return _empty()
