"""/api/v1/workspaces/{workspace}/data: data assets and their versions.

``POST /{name}/versions`` registers a version (``version`` omitted: the next number);
``GET /{name}/versions/latest`` is the newest one that is not archived (``latest`` is a label,
never a version). Files are listed with ``GET .../files?path=&recursive=`` and downloaded with
``GET .../files/<path>`` (``Range`` honoured); ``GET .../preview`` shows a table's schema and
first rows. Local files are uploaded first through ``.../data/artifacts`` (see
``routers.uploads``).
"""

from __future__ import annotations

import posixpath

from fastapi import APIRouter, Depends, Query, Request, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.file_transfer import file_response
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.data import (
    DataAssetRead,
    DataFileList,
    DataPreview,
    DataVersionCreate,
    DataVersionRead,
    DataVersionUpdate,
)
from shipyard.services import asset_files
from shipyard.services.data_preview import DEFAULT_ROWS
from shipyard.services.datastore_uris import Location

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/data", route_class=GuardedRoute, tags=["data"]
)


@router.get("", dependencies=[require(actions.DATA_READ)])
def list_data(
    workspace: str,
    include_archived: bool = Query(False, description="Archived assets too."),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[DataAssetRead]:
    return services.data.list_assets(
        workspace,
        include_archived=include_archived,
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.post("/{name}/versions", status_code=201)
def create_data_version(
    workspace: str,
    name: str,
    body: DataVersionCreate,
    principal: Principal = require(actions.DATA_WRITE),
    services: Services = Depends(get_services),
) -> DataVersionRead:
    return services.data.create(principal, workspace, name, body)


@router.get("/{name}/versions", dependencies=[require(actions.DATA_READ)])
def list_data_versions(
    workspace: str,
    name: str,
    include_archived: bool = Query(False, description="Archived versions too."),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[DataVersionRead]:
    return services.data.list_versions(
        workspace,
        name,
        include_archived=include_archived,
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.get("/{name}/versions/{version}", dependencies=[require(actions.DATA_READ)])
def get_data_version(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> DataVersionRead:
    return services.data.get(workspace, name, version)


@router.patch("/{name}/versions/{version}", dependencies=[require(actions.DATA_WRITE)])
def update_data_version(
    workspace: str,
    name: str,
    version: str,
    body: DataVersionUpdate,
    services: Services = Depends(get_services),
) -> DataVersionRead:
    return services.data.update(workspace, name, version, body)


@router.delete(
    "/{name}/versions/{version}", status_code=204, dependencies=[require(actions.DATA_DELETE)]
)
def delete_data_version(
    workspace: str,
    name: str,
    version: str,
    force: bool = Query(False, description="Delete even while something uses the version."),
    services: Services = Depends(get_services),
) -> Response:
    services.data.delete(workspace, name, version, force=force)
    return Response(status_code=204)


@router.post(
    "/{name}/versions/{version}/archive",
    status_code=204,
    dependencies=[require(actions.DATA_WRITE)],
)
def archive_data_version(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> Response:
    services.data.set_archived(workspace, name, version, True)
    return Response(status_code=204)


@router.post(
    "/{name}/versions/{version}/restore",
    status_code=204,
    dependencies=[require(actions.DATA_WRITE)],
)
def restore_data_version(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> Response:
    services.data.set_archived(workspace, name, version, False)
    return Response(status_code=204)


@router.post("/{name}/archive", status_code=204, dependencies=[require(actions.DATA_WRITE)])
def archive_data(workspace: str, name: str, services: Services = Depends(get_services)) -> Response:
    services.data.set_archived(workspace, name, None, True)
    return Response(status_code=204)


@router.post("/{name}/restore", status_code=204, dependencies=[require(actions.DATA_WRITE)])
def restore_data(workspace: str, name: str, services: Services = Depends(get_services)) -> Response:
    services.data.set_archived(workspace, name, None, False)
    return Response(status_code=204)


@router.get("/{name}/versions/{version}/files", dependencies=[require(actions.DATA_READ)])
def list_data_files(
    workspace: str,
    name: str,
    version: str,
    path: str = Query("", max_length=4096, description="A folder (or file) in the asset."),
    recursive: bool = Query(False, description="Every file below, not only direct children."),
    services: Services = Depends(get_services),
) -> DataFileList:
    return DataFileList(
        items=services.data.files(workspace, name, version, path, recursive=recursive)
    )


@router.get(
    "/{name}/versions/{version}/files/{path:path}", dependencies=[require(actions.DATA_READ)]
)
def download_data_file(
    workspace: str,
    name: str,
    version: str,
    path: str,
    request: Request,
    services: Services = Depends(get_services),
) -> Response:
    _, location = services.data.location(workspace, name, version)
    return asset_file_response(location, path, request)


def asset_file_response(location: Location, path: str, request: Request) -> Response:
    """One file of a data or model version, streamed (``Range`` honoured)."""
    target = asset_files.resolve_file(location, path)
    return file_response(
        asset_files.file_size(target),
        lambda start, end: asset_files.read(target, start, end),
        request.headers.get("range"),
        filename=posixpath.basename(target.key),
    )


@router.get("/{name}/versions/{version}/preview", dependencies=[require(actions.DATA_READ)])
def preview_data(
    workspace: str,
    name: str,
    version: str,
    rows: int = Query(DEFAULT_ROWS, description="How many rows (1 to 1000)."),
    services: Services = Depends(get_services),
) -> DataPreview:
    return services.data.preview(workspace, name, version, rows)
