"""MLflow's registered-model methods: create, get, rename, update, delete, search, latest
versions, tags and aliases. They are Shipyard's models (``services.models``): a model
registered here is the same model Shipyard's own API shows.

Deleting a tag or an alias that is not there succeeds, as on MLflow's server.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.mlflow import registry_convert as convert
from shipyard.mlflow import registry_schemas as r
from shipyard.mlflow.paths import API_PREFIX
from shipyard.mlflow.schemas import Empty, body_of
from shipyard.schemas.models import NO_NUL, ModelCreate, ModelUpdate

router = APIRouter(
    prefix=API_PREFIX + "/registered-models", route_class=GuardedRoute, tags=["mlflow"]
)

_NAME = Query(min_length=1, max_length=256, pattern=NO_NUL)


@router.post("/create")
def create_registered_model(
    workspace: str,
    body: r.CreateRegisteredModel,
    principal: Principal = require(actions.MODELS_WRITE),
    services: Services = Depends(get_services),
) -> r.RegisteredModelResponse:
    made = services.models.create(
        principal,
        workspace,
        body_of(
            ModelCreate,
            name=body.name,
            description=body.description,
            tags={t.key: t.value for t in body.tags},
        ),
    )
    return r.RegisteredModelResponse(registered_model=convert.registered_model(made))


@router.get("/get", dependencies=[require(actions.MODELS_READ)])
def get_registered_model(
    workspace: str, name: str = _NAME, services: Services = Depends(get_services)
) -> r.RegisteredModelResponse:
    found = services.models.get(workspace, name)
    return r.RegisteredModelResponse(registered_model=convert.registered_model(found))


@router.post("/rename", dependencies=[require(actions.MODELS_WRITE)])
def rename_registered_model(
    workspace: str, body: r.RenameRegisteredModel, services: Services = Depends(get_services)
) -> r.RegisteredModelResponse:
    changed = services.models.update(workspace, body.name, body_of(ModelUpdate, name=body.new_name))
    return r.RegisteredModelResponse(registered_model=convert.registered_model(changed))


@router.patch("/update", dependencies=[require(actions.MODELS_WRITE)])
def update_registered_model(
    workspace: str, body: r.UpdateRegisteredModel, services: Services = Depends(get_services)
) -> r.RegisteredModelResponse:
    changed = services.models.update(
        workspace, body.name, body_of(ModelUpdate, description=body.description)
    )
    return r.RegisteredModelResponse(registered_model=convert.registered_model(changed))


@router.delete("/delete", dependencies=[require(actions.MODELS_DELETE)])
def delete_registered_model(
    workspace: str, body: r.ModelRef, services: Services = Depends(get_services)
) -> Empty:
    services.models.delete(workspace, body.name)
    return Empty()


@router.get("/search", dependencies=[require(actions.MODELS_READ)])
def search_registered_models(
    workspace: str,
    filter: str | None = Query(None, max_length=10_000),
    max_results: int = Query(100, ge=1, le=r.MAX_REGISTRY_PAGE),
    order_by: list[str] = Query(default_factory=list, max_length=20),
    page_token: str | None = Query(None, max_length=1000),
    services: Services = Depends(get_services),
) -> r.SearchRegisteredModelsResponse:
    page = services.models.search(
        workspace,
        filter=filter,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
    )
    return r.SearchRegisteredModelsResponse(
        registered_models=[convert.registered_model(m) for m in page.items],
        next_page_token=page.next_page_token,
    )


def _latest(
    services: Services, workspace: str, name: str, stages: list[str]
) -> r.ModelVersionsResponse:
    found = services.model_versions.latest(workspace, name, stages or None)
    return r.ModelVersionsResponse(model_versions=[convert.model_version(v) for v in found])


@router.post("/get-latest-versions", dependencies=[require(actions.MODELS_READ)])
def get_latest_versions(
    workspace: str, body: r.GetLatestVersions, services: Services = Depends(get_services)
) -> r.ModelVersionsResponse:
    return _latest(services, workspace, body.name, body.stages)


@router.get("/get-latest-versions", dependencies=[require(actions.MODELS_READ)])
def get_latest_versions_get(
    workspace: str,
    name: str = _NAME,
    stages: list[str] = Query(default_factory=list, max_length=10),
    services: Services = Depends(get_services),
) -> r.ModelVersionsResponse:
    return _latest(services, workspace, name, stages)


@router.post("/set-tag", dependencies=[require(actions.MODELS_WRITE)])
def set_registered_model_tag(
    workspace: str, body: r.SetRegisteredModelTag, services: Services = Depends(get_services)
) -> Empty:
    services.models.set_tag(workspace, body.name, body.key, body.value)
    return Empty()


@router.delete("/delete-tag", dependencies=[require(actions.MODELS_WRITE)])
def delete_registered_model_tag(
    workspace: str, body: r.DeleteRegisteredModelTag, services: Services = Depends(get_services)
) -> Empty:
    services.models.delete_tag(workspace, body.name, body.key, missing_ok=True)
    return Empty()


@router.post("/alias", dependencies=[require(actions.MODELS_WRITE)])
def set_registered_model_alias(
    workspace: str, body: r.SetRegisteredModelAlias, services: Services = Depends(get_services)
) -> Empty:
    version = convert.version_number(body.version)
    services.models.set_alias(workspace, body.name, body.alias, version)
    return Empty()


@router.delete("/alias", dependencies=[require(actions.MODELS_WRITE)])
def delete_registered_model_alias(
    workspace: str, body: r.DeleteRegisteredModelAlias, services: Services = Depends(get_services)
) -> Empty:
    services.models.delete_alias(workspace, body.name, body.alias, missing_ok=True)
    return Empty()


@router.get("/alias", dependencies=[require(actions.MODELS_READ)])
def get_model_version_by_alias(
    workspace: str,
    name: str = _NAME,
    alias: str = Query(min_length=1, max_length=256, pattern=NO_NUL),
    services: Services = Depends(get_services),
) -> r.ModelVersionResponse:
    found = services.model_versions.get_by_alias(workspace, name, alias)
    return r.ModelVersionResponse(model_version=convert.model_version(found))
