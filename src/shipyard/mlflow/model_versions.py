"""MLflow's model-version methods: create, get, update, delete, search, tags, stage
transitions and the download URI.

Versions registered through MLflow are ``mlflow_model`` versions. Their source must be in the
workspace (``services.model_sources``); the download URI is the resolved location, an
``mlflow-artifacts:/`` URI the client reads through this workspace's artifact proxy.
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
from shipyard.schemas.models import NO_NUL, ModelVersionCreate, ModelVersionUpdate

router = APIRouter(prefix=API_PREFIX + "/model-versions", route_class=GuardedRoute, tags=["mlflow"])

_NAME = Query(min_length=1, max_length=256, pattern=NO_NUL)
_VERSION = Query(min_length=1, max_length=20)


@router.post("/create")
def create_model_version(
    workspace: str,
    body: r.CreateModelVersion,
    principal: Principal = require(actions.MODELS_WRITE),
    services: Services = Depends(get_services),
) -> r.ModelVersionResponse:
    made = services.model_versions.create(
        principal,
        workspace,
        body.name,
        body_of(
            ModelVersionCreate,
            source=body.source,
            type="mlflow_model",
            run_id=body.run_id or None,
            logged_model_id=body.model_id or None,
            description=body.description,
            tags={t.key: t.value for t in body.tags},
        ),
    )
    return r.ModelVersionResponse(model_version=convert.model_version(made))


@router.get("/get", dependencies=[require(actions.MODELS_READ)])
def get_model_version(
    workspace: str,
    name: str = _NAME,
    version: str = _VERSION,
    services: Services = Depends(get_services),
) -> r.ModelVersionResponse:
    found = services.model_versions.get(workspace, name, convert.version_number(version))
    return r.ModelVersionResponse(model_version=convert.model_version(found))


@router.patch("/update", dependencies=[require(actions.MODELS_WRITE)])
def update_model_version(
    workspace: str, body: r.UpdateModelVersion, services: Services = Depends(get_services)
) -> r.ModelVersionResponse:
    changed = services.model_versions.update(
        workspace,
        body.name,
        convert.version_number(body.version),
        body_of(ModelVersionUpdate, description=body.description),
    )
    return r.ModelVersionResponse(model_version=convert.model_version(changed))


@router.delete("/delete", dependencies=[require(actions.MODELS_DELETE)])
def delete_model_version(
    workspace: str, body: r.VersionRef, services: Services = Depends(get_services)
) -> Empty:
    services.model_versions.delete(workspace, body.name, convert.version_number(body.version))
    return Empty()


@router.get("/search", dependencies=[require(actions.MODELS_READ)])
def search_model_versions(
    workspace: str,
    filter: str | None = Query(None, max_length=10_000),
    max_results: int = Query(r.MAX_VERSIONS_PAGE, ge=1, le=r.MAX_VERSIONS_PAGE),
    order_by: list[str] = Query(default_factory=list, max_length=20),
    page_token: str | None = Query(None, max_length=1000),
    services: Services = Depends(get_services),
) -> r.SearchModelVersionsResponse:
    page = services.model_versions.search(
        workspace,
        filter=filter,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
    )
    return r.SearchModelVersionsResponse(
        model_versions=[convert.model_version(v) for v in page.items],
        next_page_token=page.next_page_token,
    )


@router.get("/get-download-uri", dependencies=[require(actions.MODELS_READ)])
def get_model_version_download_uri(
    workspace: str,
    name: str = _NAME,
    version: str = _VERSION,
    services: Services = Depends(get_services),
) -> r.DownloadUriResponse:
    found = services.model_versions.get(workspace, name, convert.version_number(version))
    return r.DownloadUriResponse(artifact_uri=found.storage_location)


@router.post("/transition-stage", dependencies=[require(actions.MODELS_WRITE)])
def transition_model_version_stage(
    workspace: str, body: r.TransitionModelVersionStage, services: Services = Depends(get_services)
) -> r.ModelVersionResponse:
    changed = services.model_versions.transition_stage(
        workspace,
        body.name,
        convert.version_number(body.version),
        body.stage,
        archive_existing=body.archive_existing_versions,
    )
    return r.ModelVersionResponse(model_version=convert.model_version(changed))


@router.post("/set-tag", dependencies=[require(actions.MODELS_WRITE)])
def set_model_version_tag(
    workspace: str, body: r.SetModelVersionTag, services: Services = Depends(get_services)
) -> Empty:
    services.model_versions.set_tag(
        workspace, body.name, convert.version_number(body.version), body.key, body.value
    )
    return Empty()


@router.delete("/delete-tag", dependencies=[require(actions.MODELS_WRITE)])
def delete_model_version_tag(
    workspace: str, body: r.DeleteModelVersionTag, services: Services = Depends(get_services)
) -> Empty:
    services.model_versions.delete_tag(
        workspace, body.name, convert.version_number(body.version), body.key, missing_ok=True
    )
    return Empty()
