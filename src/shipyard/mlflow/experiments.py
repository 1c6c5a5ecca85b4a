"""MLflow's experiment methods: create, get, get-by-name, search, update, delete, restore, tags."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.domain.errors import NotFoundError
from shipyard.mlflow import convert, filters
from shipyard.mlflow import schemas as m
from shipyard.mlflow.lookup import all_experiments, experiment_by_id
from shipyard.mlflow.paging import next_token, offset_of
from shipyard.mlflow.paths import API_PREFIX
from shipyard.mlflow.schemas import body_of
from shipyard.schemas.tracking import ExperimentCreate, ExperimentUpdate

router = APIRouter(
    prefix=API_PREFIX + "/experiments",
    route_class=GuardedRoute,
    tags=["mlflow"],
)

_VIEW_TYPES = {"ACTIVE_ONLY": (False,), "DELETED_ONLY": (True,), "ALL": (False, True)}


@router.post("/create", dependencies=[require(actions.JOBS_WRITE)])
def create_experiment(
    workspace: str, body: m.CreateExperiment, services: Services = Depends(get_services)
) -> m.CreateExperimentResponse:
    tags = {t.key: t.value for t in body.tags}
    made = services.experiments.create(
        workspace, body_of(ExperimentCreate, name=body.name, tags=tags)
    )
    return m.CreateExperimentResponse(experiment_id=made.id)


@router.get("/get", dependencies=[require(actions.JOBS_READ)])
def get_experiment(
    workspace: str,
    experiment_id: str = Query(min_length=1, max_length=64),
    services: Services = Depends(get_services),
) -> m.ExperimentResponse:
    found = experiment_by_id(services, workspace, experiment_id)
    return m.ExperimentResponse(experiment=convert.experiment(found))


@router.get("/get-by-name", dependencies=[require(actions.JOBS_READ)])
def get_experiment_by_name(
    workspace: str,
    experiment_name: str = Query(min_length=1, max_length=256),
    services: Services = Depends(get_services),
) -> m.ExperimentResponse:
    found = services.experiments.get(workspace, experiment_name)
    return m.ExperimentResponse(experiment=convert.experiment(found))


def _search(
    services: Services, workspace: str, query: m.SearchExperiments
) -> m.SearchExperimentsResponse:
    view = convert.view_type(query.view_type, "view_type")
    keep = filters.parse_filter(query.filter)
    found = [
        converted
        for deleted in _VIEW_TYPES[view]
        for experiment in all_experiments(services, workspace, deleted=deleted)
        if keep(converted := convert.experiment(experiment))
    ]
    ordered = filters.sort(found, query.order_by)
    start = offset_of(query.page_token)
    end = start + query.max_results
    token = next_token(end, len(ordered))
    return m.SearchExperimentsResponse(experiments=ordered[start:end], next_page_token=token)


@router.post("/search", dependencies=[require(actions.JOBS_READ)])
def search_experiments(
    workspace: str, body: m.SearchExperiments, services: Services = Depends(get_services)
) -> m.SearchExperimentsResponse:
    return _search(services, workspace, body)


@router.get("/search", dependencies=[require(actions.JOBS_READ)])
def search_experiments_get(
    workspace: str,
    max_results: int = Query(1000, ge=1, le=m.MAX_EXPERIMENTS_PER_PAGE),
    page_token: str | None = Query(None),
    filter: str | None = Query(None, max_length=10_000),
    order_by: list[str] = Query(default_factory=list),
    view_type: str = Query("ACTIVE_ONLY"),
    services: Services = Depends(get_services),
) -> m.SearchExperimentsResponse:
    query = m.SearchExperiments(
        max_results=max_results,
        page_token=page_token,
        filter=filter,
        order_by=order_by,
        view_type=int(view_type) if view_type.isdigit() else view_type,
    )
    return _search(services, workspace, query)


@router.post("/update", dependencies=[require(actions.JOBS_WRITE)])
def update_experiment(
    workspace: str, body: m.UpdateExperiment, services: Services = Depends(get_services)
) -> m.Empty:
    found = experiment_by_id(services, workspace, body.experiment_id)
    if body.new_name is not None:
        services.experiments.update(
            workspace, found.name, body_of(ExperimentUpdate, name=body.new_name)
        )
    return m.Empty()


@router.post("/delete", dependencies=[require(actions.JOBS_DELETE)])
def delete_experiment(
    workspace: str, body: m.ExperimentRef, services: Services = Depends(get_services)
) -> m.Empty:
    found = experiment_by_id(services, workspace, body.experiment_id)
    services.experiments.set_stage(workspace, found.name, "deleted")
    return m.Empty()


@router.post("/restore", dependencies=[require(actions.JOBS_WRITE)])
def restore_experiment(
    workspace: str, body: m.ExperimentRef, services: Services = Depends(get_services)
) -> m.Empty:
    found = experiment_by_id(services, workspace, body.experiment_id)
    services.experiments.set_stage(workspace, found.name, "active")
    return m.Empty()


@router.post("/set-experiment-tag", dependencies=[require(actions.JOBS_WRITE)])
def set_experiment_tag(
    workspace: str, body: m.SetExperimentTag, services: Services = Depends(get_services)
) -> m.Empty:
    found = experiment_by_id(services, workspace, body.experiment_id)
    tags = {**found.tags, body.key: body.value}
    services.experiments.update(workspace, found.name, body_of(ExperimentUpdate, tags=tags))
    return m.Empty()


@router.post("/delete-experiment-tag", dependencies=[require(actions.JOBS_WRITE)])
def delete_experiment_tag(
    workspace: str, body: m.DeleteExperimentTag, services: Services = Depends(get_services)
) -> m.Empty:
    found = experiment_by_id(services, workspace, body.experiment_id)
    if body.key not in found.tags:
        raise NotFoundError(
            f"experiment {found.name!r} has no tag {body.key!r}", code="tag_not_found", field="key"
        )
    tags = {k: v for k, v in found.tags.items() if k != body.key}
    services.experiments.update(workspace, found.name, body_of(ExperimentUpdate, tags=tags))
    return m.Empty()
