"""The app factory: the one place where settings become stores, services and routes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from shipyard import mlflow as mlflow_surface
from shipyard._version import __version__
from shipyard.api import problems
from shipyard.api.authz import GuardedRoute, install_body_error_guard
from shipyard.api.deps import Services
from shipyard.api.middleware import RequestContextMiddleware
from shipyard.api.routers import (
    artifacts,
    audit,
    data,
    datastores,
    experiments,
    groups,
    health,
    models,
    role_assignments,
    roles,
    runs,
    secrets,
    service_principals,
    sessions,
    tokens,
    uploads,
    users,
    workspaces,
)
from shipyard.services.artifacts import ArtifactService
from shipyard.services.audit import AuditService
from shipyard.services.authz import RoleBasedAuthorizer
from shipyard.services.data import DataService
from shipyard.services.datastore_uris import DefaultDatastoreResolver
from shipyard.services.datastores import (
    DatastorePolicy,
    DatastoreService,
    NamedDatastoreResolver,
)
from shipyard.services.experiments import ExperimentService
from shipyard.services.groups import GroupService
from shipyard.services.logged_models import LoggedModelService, logged_model_exists
from shipyard.services.master_key import load_keyring
from shipyard.services.model_assets import ModelAssetService
from shipyard.services.model_versions import ModelVersionService
from shipyard.services.models import ModelService
from shipyard.services.passwords import Passwords
from shipyard.services.rate_limit import SlidingWindowLimiter
from shipyard.services.role_assignments import RoleAssignmentService
from shipyard.services.roles import RoleService
from shipyard.services.run_inputs import RunInputService
from shipyard.services.runs import RunService
from shipyard.services.secrets import SecretService
from shipyard.services.service_principals import ServicePrincipalService
from shipyard.services.sessions import LoginPolicy, SessionService
from shipyard.services.tokens import TokenService
from shipyard.services.uploads import UploadService
from shipyard.services.users import UserService
from shipyard.services.workspaces import StoragePolicy, WorkspaceService
from shipyard.settings import Settings
from shipyard.storage.base import Storage
from shipyard.storage.factory import open_storage
from shipyard.storage.s3_options import S3Options
from shipyard.store.database import Database

log = logging.getLogger(__name__)


def storage_opener(settings: Settings) -> Callable[[str], Storage]:
    """How this server opens a storage URI: s3:// ones with its own S3 settings."""
    secret = settings.s3_secret_access_key
    s3 = S3Options(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret else None,
    )
    return functools.partial(open_storage, s3=s3)


def datastore_policy(settings: Settings) -> DatastorePolicy:
    """What datastores may reach: folders in datastore_roots, never the server's own."""
    return DatastorePolicy(
        roots=tuple(settings.datastore_roots),
        protected=(str(settings.data_dir), settings.artifact_root_uri),
        server_credentials=settings.datastore_server_credentials,
        workspace_s3_endpoint=settings.s3_endpoint_url,
    )


def build_services(settings: Settings, db: Database) -> Services:
    authorizer = RoleBasedAuthorizer(db)
    opener = storage_opener(settings)
    passwords = Passwords(min_length=settings.password_min_length)
    secret_service = SecretService(db, load_keyring(settings.master_key, settings.data_dir))
    datastore_service = DatastoreService(
        db, secret_service, authorizer, datastore_policy(settings), open_storage=opener
    )
    datastore_paths = NamedDatastoreResolver(datastore_service, DefaultDatastoreResolver(opener))
    return Services(
        settings=settings,
        db=db,
        authorizer=authorizer,
        tokens=TokenService(
            db,
            authorizer,
            default_ttl_days=settings.token_default_ttl_days,
            max_ttl_days=settings.token_max_ttl_days,
        ),
        users=UserService(db, passwords, authorizer, new_user_roles=settings.new_user_roles),
        workspaces=WorkspaceService(
            db,
            StoragePolicy(settings.artifact_root_uri, settings.storage_roots),
            retention_days=settings.workspace_retention_days,
            open_storage=opener,
        ),
        groups=GroupService(db, authorizer),
        service_principals=ServicePrincipalService(db),
        roles=RoleService(db),
        role_assignments=RoleAssignmentService(db, authorizer),
        audit=AuditService(db),
        sessions=SessionService(
            db,
            passwords,
            LoginPolicy(
                session_ttl=timedelta(hours=settings.session_ttl_hours),
                max_failures=settings.login_max_failures,
                lockout=timedelta(minutes=settings.login_lockout_minutes),
            ),
            SlidingWindowLimiter(settings.login_rate_per_minute, 60),
        ),
        experiments=ExperimentService(db),
        runs=RunService(db),
        secrets=secret_service,
        artifacts=ArtifactService(
            db,
            max_upload_bytes=settings.max_artifact_bytes,
            model_exists=logged_model_exists,
            open_storage=opener,
        ),
        run_inputs=RunInputService(db),
        models=ModelService(db),
        model_versions=ModelVersionService(db),
        logged_models=LoggedModelService(db),
        uploads=UploadService(db, datastore_paths, max_file_bytes=settings.max_artifact_bytes),
        data=DataService(db, datastore_paths),
        model_assets=ModelAssetService(db, datastore_paths, authorizer),
        datastores=datastore_service,
    )


def create_app(settings: Settings, db: Database | None = None) -> FastAPI:
    """A ready-to-serve app. The database must already be migrated (see services.bootstrap)."""
    services = build_services(
        settings,
        db
        or Database(
            settings.database_url, sqlite_busy_timeout_seconds=settings.sqlite_busy_timeout_seconds
        ),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        purger = asyncio.create_task(_purge_loop(services, settings.purge_interval_seconds))
        log.info("server ready", extra={"version": __version__})
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            services.db.dispose()
            log.info("server stopped")

    app = FastAPI(
        title="Shipyard",
        version=__version__,
        description="A self-hosted machine-learning workspace.",
        lifespan=lifespan,
        openapi_url=None,  # served by health.openapi, which declares its action like any route
        docs_url=None,
        redoc_url=None,
    )
    app.router.route_class = GuardedRoute
    app.state.services = services
    problems.install(app)
    install_body_error_guard(app)  # replaces two of them: authenticate before body errors
    mlflow_surface.install(app)  # MLflow's error shape under /mlflow/ (wraps the ones above)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_request_body_bytes,
        max_upload_bytes=settings.max_artifact_bytes,
        audit=services.audit,
    )
    for router in (
        health.router,
        users.router,
        tokens.router,
        workspaces.router,
        groups.router,
        service_principals.router,
        roles.router,
        role_assignments.router,
        audit.router,
        sessions.router,
        experiments.router,
        runs.router,
        secrets.router,
        datastores.router,
        artifacts.router,
        uploads.data_router,
        uploads.model_router,
        data.router,
        models.router,
        mlflow_surface.router,
    ):
        app.include_router(router)
    return app


async def _purge_loop(services: Services, interval: float) -> None:
    while True:
        try:
            purged = await run_in_threadpool(services.workspaces.purge_expired)
            if purged:
                log.info("purged expired workspaces", extra={"workspaces": purged})
        except Exception:  # the loop must outlive a failed pass; the next pass retries
            log.exception("purging expired workspaces failed")
        await asyncio.sleep(interval)
