"""/api/v1/workspaces/{workspace}/models: the native model API on the shared registry.

Models and versions here are the ones MLflow's registry surface shows (and the reverse).
``POST /{name}/versions`` registers a version in Azure ML's shape (the model is created with
its first version); ``GET /{name}/versions/latest`` is the highest version;
``/{name}/aliases/{alias}`` names one version each (``@champion``); ``.../stage`` moves a
version between MLflow's stages. Files: ``GET .../files?path=&recursive=`` and
``GET .../files/<path>``. Local folders are uploaded first through ``.../models/artifacts``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.api.routers.data import asset_file_response
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.data import DataFileList
from shipyard.schemas.models import (
    ModelAliasSet,
    ModelAssetCreate,
    ModelAssetRead,
    ModelAssetUpdate,
    ModelRead,
    ModelStageChange,
    ModelUpdate,
    ModelVersionUpdate,
)
from shipyard.services.model_assets import version_number

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/models", route_class=GuardedRoute, tags=["models"]
)


@router.get("", dependencies=[require(actions.MODELS_READ)])
def list_models(
    workspace: str, paging: PageParams = Depends(), services: Services = Depends(get_services)
) -> Page[ModelRead]:
    return services.models.search(
        workspace, max_results=paging.max_results, page_token=paging.page_token
    )


@router.get("/{name}", dependencies=[require(actions.MODELS_READ)])
def get_model(workspace: str, name: str, services: Services = Depends(get_services)) -> ModelRead:
    return services.models.get(workspace, name)


@router.patch("/{name}", dependencies=[require(actions.MODELS_WRITE)])
def update_model(
    workspace: str, name: str, body: ModelAssetUpdate, services: Services = Depends(get_services)
) -> ModelRead:
    changes = body.model_dump(exclude_unset=True)
    return services.models.update(workspace, name, ModelUpdate(**changes))


@router.delete("/{name}", status_code=204, dependencies=[require(actions.MODELS_DELETE)])
def delete_model(workspace: str, name: str, services: Services = Depends(get_services)) -> Response:
    services.models.delete(workspace, name)
    return Response(status_code=204)


@router.post("/{name}/versions", status_code=201)
def create_model_version(
    workspace: str,
    name: str,
    body: ModelAssetCreate,
    principal: Principal = require(actions.MODELS_WRITE),
    services: Services = Depends(get_services),
) -> ModelAssetRead:
    return services.model_assets.create(principal, workspace, name, body)


@router.get("/{name}/versions", dependencies=[require(actions.MODELS_READ)])
def list_model_versions(
    workspace: str,
    name: str,
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[ModelAssetRead]:
    return services.model_assets.list_versions(
        workspace, name, page_token=paging.page_token, max_results=paging.max_results
    )


@router.get("/{name}/versions/{version}", dependencies=[require(actions.MODELS_READ)])
def get_model_version(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> ModelAssetRead:
    return services.model_assets.get(workspace, name, version)


@router.patch("/{name}/versions/{version}", dependencies=[require(actions.MODELS_WRITE)])
def update_model_version(
    workspace: str,
    name: str,
    version: str,
    body: ModelAssetUpdate,
    services: Services = Depends(get_services),
) -> ModelAssetRead:
    changes = body.model_dump(exclude_unset=True)
    services.model_versions.update(
        workspace, name, version_number(version), ModelVersionUpdate(**changes)
    )
    return services.model_assets.get(workspace, name, version)


@router.delete(
    "/{name}/versions/{version}", status_code=204, dependencies=[require(actions.MODELS_DELETE)]
)
def delete_model_version(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> Response:
    services.model_versions.delete(workspace, name, version_number(version))
    return Response(status_code=204)


@router.post("/{name}/versions/{version}/stage", dependencies=[require(actions.MODELS_WRITE)])
def transition_model_stage(
    workspace: str,
    name: str,
    version: str,
    body: ModelStageChange,
    services: Services = Depends(get_services),
) -> ModelAssetRead:
    services.model_versions.transition_stage(
        workspace,
        name,
        version_number(version),
        body.stage,
        archive_existing=body.archive_existing_versions,
    )
    return services.model_assets.get(workspace, name, version)


@router.get("/{name}/aliases/{alias}", dependencies=[require(actions.MODELS_READ)])
def get_model_alias(
    workspace: str, name: str, alias: str, services: Services = Depends(get_services)
) -> ModelAssetRead:
    return services.model_assets.get_by_alias(workspace, name, alias)


@router.put("/{name}/aliases/{alias}", dependencies=[require(actions.MODELS_WRITE)])
def set_model_alias(
    workspace: str,
    name: str,
    alias: str,
    body: ModelAliasSet,
    services: Services = Depends(get_services),
) -> ModelAssetRead:
    services.models.set_alias(workspace, name, alias, body.version)
    return services.model_assets.get(workspace, name, str(body.version))


@router.delete(
    "/{name}/aliases/{alias}", status_code=204, dependencies=[require(actions.MODELS_WRITE)]
)
def delete_model_alias(
    workspace: str, name: str, alias: str, services: Services = Depends(get_services)
) -> Response:
    services.models.delete_alias(workspace, name, alias)
    return Response(status_code=204)


@router.get("/{name}/versions/{version}/files", dependencies=[require(actions.MODELS_READ)])
def list_model_files(
    workspace: str,
    name: str,
    version: str,
    path: str = Query("", max_length=4096, description="A folder (or file) in the model."),
    recursive: bool = Query(False, description="Every file below, not only direct children."),
    services: Services = Depends(get_services),
) -> DataFileList:
    return DataFileList(
        items=services.model_assets.files(workspace, name, version, path, recursive=recursive)
    )


@router.get(
    "/{name}/versions/{version}/files/{path:path}", dependencies=[require(actions.MODELS_READ)]
)
def download_model_file(
    workspace: str,
    name: str,
    version: str,
    path: str,
    request: Request,
    services: Services = Depends(get_services),
) -> Response:
    location = services.model_assets.location(workspace, name, version)
    return asset_file_response(location, path, request)
