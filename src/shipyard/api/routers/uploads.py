"""Content-addressed uploads, one set of routes per kind of asset (each declares that asset's
write action): ``.../data/artifacts/{digest}`` and ``.../models/artifacts/{digest}``.

- ``PUT .../artifacts/{digest}`` with the manifest (``{"files": [{path, sha256, size}]}``)
  records it (idempotent: the digest names the manifest) and answers which files are missing;
- ``PUT .../artifacts/{digest}/{path}`` with a file's bytes as the raw body (streamed; checked
  against the manifest before it becomes visible);
- ``PUT .../artifacts/bundles/{digest}`` with many files in one raw body (small files: one
  request for a thousand instead of a thousand requests; the framing is in
  ``schemas.uploads``), each checked like a file of its own;
- ``POST .../artifacts/{digest}/commit`` once every file is there.

The routes sit under an ``/artifacts/`` segment because that is where the request middleware
allows bodies up to ``max_artifact_bytes`` (a manifest of many files, a big file) instead of
``max_request_body_bytes``. File uploads count as telemetry (left out of the audit log unless
refused, like a run's artifact uploads); the manifest and the commit are recorded.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.file_transfer import receive_upload
from shipyard.domain import actions
from shipyard.domain.errors import PayloadTooLargeError
from shipyard.domain.principals import Principal
from shipyard.schemas.uploads import (
    UploadBundleWritten,
    UploadFileWritten,
    UploadManifest,
    UploadRead,
)

#: A manifest's JSON, at most: room for the 100,000 files one upload may hold.
MAX_MANIFEST_BYTES = 32 * 1024 * 1024


async def read_manifest(request: Request) -> UploadManifest:
    """The manifest body, read up to its own limit (the route's body limit is a file's)."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_MANIFEST_BYTES:
            raise PayloadTooLargeError(
                f"a manifest may be at most {MAX_MANIFEST_BYTES} bytes; split the upload",
                code="manifest_too_large",
                field="files",
            )
    try:
        return UploadManifest.model_validate_json(bytes(raw))
    except ValidationError as exc:
        # Reported like any body error (unknown_field, missing_field, malformed_json...).
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None


def upload_router(resource: str, purpose: str, write_action: str) -> APIRouter:
    router = APIRouter(
        prefix=f"/api/v1/workspaces/{{workspace}}/{resource}/artifacts",
        route_class=GuardedRoute,
        tags=[resource],
    )

    @router.put("/{digest}", name=f"begin_{purpose}_upload")
    async def begin_upload(
        workspace: str,
        digest: str,
        request: Request,
        principal: Principal = require(write_action),
        services: Services = Depends(get_services),
    ) -> UploadRead:
        manifest = await read_manifest(request)
        return await run_in_threadpool(
            services.uploads.begin,
            principal,
            workspace,
            purpose,
            digest,
            manifest.files,
            name=manifest.name,
        )

    # Declared before the file route, which would take "bundles" for a digest (and refuse it).
    @router.put(
        "/bundles/{digest}",
        name=f"upload_{purpose}_bundle",
        dependencies=[require(write_action, telemetry=True)],
    )
    async def upload_bundle(
        workspace: str,
        digest: str,
        request: Request,
        services: Services = Depends(get_services),
    ) -> UploadBundleWritten:
        bundle = await run_in_threadpool(services.uploads.bundle, workspace, purpose, digest)
        return await receive_upload(request, bundle)

    @router.put(
        "/{digest}/{path:path}",
        status_code=201,
        name=f"upload_{purpose}_file",
        dependencies=[require(write_action, telemetry=True)],
    )
    async def upload_file(
        workspace: str,
        digest: str,
        path: str,
        request: Request,
        services: Services = Depends(get_services),
    ) -> UploadFileWritten:
        writer = await run_in_threadpool(services.uploads.writer, workspace, purpose, digest, path)
        written = await receive_upload(request, writer)
        return UploadFileWritten(path=path, size=written.size, sha256=written.sha256)

    @router.post(
        "/{digest}/commit", name=f"commit_{purpose}_upload", dependencies=[require(write_action)]
    )
    def commit_upload(
        workspace: str, digest: str, services: Services = Depends(get_services)
    ) -> UploadRead:
        return services.uploads.commit(workspace, purpose, digest)

    return router


data_router = upload_router("data", "data", actions.DATA_WRITE)
model_router = upload_router("models", "model", actions.MODELS_WRITE)
# Job code snapshots: whoever may submit a job may upload the code it runs.
code_router = upload_router("code", "code", actions.JOBS_WRITE)
