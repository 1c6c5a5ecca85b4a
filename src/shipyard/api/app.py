"""The app factory: the one place where settings become stores, services and routes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psutil
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from shipyard import mlflow as mlflow_surface
from shipyard._version import __version__
from shipyard.api import problems
from shipyard.api.authz import GuardedRoute, install_body_error_guard
from shipyard.api.deps import Services
from shipyard.api.file_transfer import tune_allocator
from shipyard.api.instance_client import InstanceClient
from shipyard.api.middleware import RequestContextMiddleware
from shipyard.api.routers import (
    artifacts,
    audit,
    batch_endpoints,
    components,
    computes,
    costs,
    data,
    datastores,
    endpoint_metrics,
    endpoints,
    environments,
    experiments,
    groups,
    health,
    jobs,
    models,
    prometheus,
    registries,
    registry_components,
    role_assignments,
    roles,
    runs,
    schedules,
    secrets,
    service_principals,
    sessions,
    tokens,
    uploads,
    users,
    workspaces,
)
from shipyard.api.scoring_gateway import ScoringGateway
from shipyard.compute import job_users
from shipyard.compute.containers import ContainerEngine, host_environment
from shipyard.compute.environments import EnvironmentBuilder, default_platform
from shipyard.compute.launchers.local import LocalLauncher
from shipyard.compute.launchers.ray import RayLauncher
from shipyard.services.artifacts import ArtifactService
from shipyard.services.audit import AuditService
from shipyard.services.authz import RoleBasedAuthorizer
from shipyard.services.batch_code import BatchCode
from shipyard.services.batch_deployments import BatchDeploymentService
from shipyard.services.batch_endpoints import BatchEndpointService
from shipyard.services.components import Components
from shipyard.services.computes import ComputeService
from shipyard.services.costs import CostService
from shipyard.services.data import DataService
from shipyard.services.data_collector import DataCollector
from shipyard.services.datastore_uris import DefaultDatastoreResolver
from shipyard.services.datastores import (
    DatastorePolicy,
    DatastoreService,
    NamedDatastoreResolver,
)
from shipyard.services.deployment_files import DeploymentPreparer
from shipyard.services.deployment_runtime import DeploymentRuntime
from shipyard.services.endpoint_keys import EndpointAuthenticator, EndpointKeys
from shipyard.services.endpoint_metrics import EndpointMetrics
from shipyard.services.endpoints import OnlineEndpointService
from shipyard.services.environments import Environments
from shipyard.services.experiments import ExperimentService
from shipyard.services.groups import GroupService
from shipyard.services.job_inputs import IoResolver
from shipyard.services.job_logs import JobLogs
from shipyard.services.job_runner import JobRunner, RunnerSettings
from shipyard.services.jobs import JobService, LocalCapacity
from shipyard.services.lineage import LineageService
from shipyard.services.logged_models import LoggedModelService, logged_model_exists
from shipyard.services.master_key import load_keyring
from shipyard.services.model_assets import ModelAssetService
from shipyard.services.model_versions import ModelVersionService
from shipyard.services.models import ModelService
from shipyard.services.online_deployments import OnlineDeploymentService
from shipyard.services.passwords import Passwords
from shipyard.services.pipeline_runner import PipelineRunner
from shipyard.services.pipelines import PipelineService
from shipyard.services.rate_limit import SlidingWindowLimiter
from shipyard.services.registries import RegistryService
from shipyard.services.registry_code import RegistryCode
from shipyard.services.registry_components import RegistryComponents
from shipyard.services.role_assignments import RoleAssignmentService
from shipyard.services.roles import RoleService
from shipyard.services.run_inputs import RunInputService
from shipyard.services.runs import RunService
from shipyard.services.schedules import ScheduleService, submitter
from shipyard.services.scoring_stats import ScoringStats
from shipyard.services.secrets import SecretService
from shipyard.services.service_principals import ServicePrincipalService
from shipyard.services.sessions import LoginPolicy, SessionService
from shipyard.services.sweep_runner import SweepRunner
from shipyard.services.sweeps import SweepService
from shipyard.services.tokens import TokenService
from shipyard.services.upload_gc import UploadCollector
from shipyard.services.uploads import UploadService
from shipyard.services.users import UserService
from shipyard.services.workspaces import StoragePolicy, WorkspaceService
from shipyard.serving.spec import SupervisorSettings
from shipyard.settings import Settings
from shipyard.storage.base import Storage
from shipyard.storage.factory import open_storage
from shipyard.storage.s3_options import S3Options
from shipyard.store.database import Database

log = logging.getLogger(__name__)

# How often every server looks for due schedule fires: a fire is late by at most this much.
# Cheap (one indexed query); a fire is claimed once whichever server sees it first.
SCHEDULE_POLL_SECONDS = 1.0


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


def local_capacity(settings: Settings) -> LocalCapacity:
    """What the ``local`` compute hands to jobs: this host's CPUs and memory unless the
    settings say less."""
    return LocalCapacity(
        cpus=settings.local_compute_cpus or float(os.cpu_count() or 1),
        memory_mb=(
            settings.local_compute_memory_mb
            if settings.local_compute_memory_mb is not None
            else psutil.virtual_memory().total // (1024 * 1024)
        ),
        gpus=settings.local_compute_gpus,
        cost_per_core_hour=settings.local_compute_cost_per_core_hour,
    )


def environments_dir(settings: Settings) -> Path:
    return settings.environment_cache_dir or settings.data_dir / "environments"


def job_user_pool(settings: Settings) -> job_users.JobUsers | None:
    """The user ids local jobs and deployment instances run as (``local_compute_uids``);
    None: they run as the server."""
    runs_code = settings.jobs_enabled or settings.serving_enabled is True
    if not settings.local_compute_uids or not runs_code:
        return None
    return job_users.set_up(
        settings.local_compute_uids,
        settings.data_dir,
        settings.data_dir / "jobs",
        environments_dir(settings),
        # Local artifact storage (no scheme): made now, so it is made private.
        private=[Path(a) for a in [settings.artifact_root_uri] if "://" not in a],
        reachable=[settings.data_dir / "deployments"],
    )


def build_jobs(
    settings: Settings,
    db: Database,
    authorizer: RoleBasedAuthorizer,
    resolver: NamedDatastoreResolver,
    *,
    secrets: SecretService,
    environments: Environments,
    artifacts: ArtifactService,
    runs: RunService,
    data: DataService,
    model_assets: ModelAssetService,
    users: job_users.JobUsers | None = None,
) -> tuple[JobService, JobRunner | None]:
    """The job service, and the runner that executes jobs here (None when this server only
    takes submissions: ``jobs_enabled`` off)."""
    capacity = local_capacity(settings)
    jobs_dir = settings.data_dir / "jobs"
    runner = None
    if settings.jobs_enabled:
        runner = JobRunner(
            db,
            RunnerSettings(
                jobs_dir=jobs_dir,
                server_url=settings.server_url,
                capacity=capacity,
                kill_grace_seconds=settings.job_kill_grace_seconds,
                metrics_interval_seconds=settings.job_metrics_interval_seconds,
            ),
            launcher=LocalLauncher(),
            # Loads Ray only when a job runs on a Ray compute.
            ray=RayLauncher(metrics_interval=settings.job_metrics_interval_seconds),
            environments=environments,
            resolver=resolver,
            artifacts=artifacts,
            secrets=secrets,
            runs=runs,
            data=data,
            models=model_assets,
            pipelines=PipelineRunner(db),
            users=users,
            containers=environments.builder.engine,
            # Trials are inserted as the job service inserts any job; that service is made
            # below (it wakes this runner), hence the late-bound call.
            sweeps=SweepRunner(db, lambda *args, **kwargs: service.insert(*args, **kwargs)),
        )
    service = JobService(
        db,
        authorizer,
        IoResolver(db, resolver, data, model_assets),
        secrets,
        environments,
        capacity,
        wake=runner.wake if runner is not None else (lambda: None),
        read_log=JobLogs(jobs_dir, artifacts).read,
    )
    return service, runner


def build_services(settings: Settings, db: Database) -> Services:
    authorizer = RoleBasedAuthorizer(db)
    opener = storage_opener(settings)
    passwords = Passwords(min_length=settings.password_min_length)
    secret_service = SecretService(db, load_keyring(settings.master_key, settings.data_dir))
    datastore_service = DatastoreService(
        db, secret_service, authorizer, datastore_policy(settings), open_storage=opener
    )
    datastore_paths = NamedDatastoreResolver(datastore_service, DefaultDatastoreResolver(opener))
    artifacts = ArtifactService(
        db,
        max_upload_bytes=settings.max_artifact_bytes,
        model_exists=logged_model_exists,
        open_storage=opener,
    )
    environments = Environments(
        db,
        EnvironmentBuilder(
            db,
            environments_dir(settings),
            max_bytes=settings.environment_cache_max_bytes,
            allow_pip_options=settings.environment_allow_pip_options,
            # Jobs that run as their own users need an interpreter they may run.
            platform=replace(default_platform(), for_all_users=bool(settings.local_compute_uids)),
            engine=ContainerEngine.find(settings.container_engine, host_environment()),
        ),
        authorizer,
        allow_pip_options=settings.environment_allow_pip_options,
    )
    runs = RunService(db)
    data = DataService(db, datastore_paths)
    model_assets = ModelAssetService(db, datastore_paths, authorizer)
    users = job_user_pool(settings)
    jobs, runner = build_jobs(
        settings,
        db,
        authorizer,
        datastore_paths,
        secrets=secret_service,
        environments=environments,
        artifacts=artifacts,
        runs=runs,
        data=data,
        model_assets=model_assets,
        users=users,
    )
    registry_code = RegistryCode(db, datastore_paths, opener, settings.artifact_root_uri)
    registry_components = RegistryComponents(db, environments, authorizer, registry_code)
    components = Components(db, environments, authorizer, registries=registry_components)
    pipelines = PipelineService(db, jobs, components, wake=jobs.wake)
    sweeps = SweepService(db, jobs, wake=jobs.wake)
    # Notes each scoring request's credential kind for the per-deployment counts.
    endpoint_auth = EndpointAuthenticator(db)
    endpoint_keys = EndpointKeys(db, secret_service, changed=endpoint_auth.invalidate)
    # The deployments' runtime is made below (it reports through the deployment service):
    # the services wake it through this late-bound call.
    runtime: DeploymentRuntime | None = None
    data_collector: DataCollector | None = None

    def deployments_changed() -> None:
        if runtime is not None:
            runtime.wake()
        if data_collector is not None:
            data_collector.wake()

    online_deployments = OnlineDeploymentService(
        db,
        authorizer,
        IoResolver(db, datastore_paths, data, model_assets),
        model_assets,
        environments,
        secret_service,
        logs_root=settings.data_dir / "deployments",
        changed=deployments_changed,
    )
    serving = settings.serving_enabled
    if serving if serving is not None else settings.jobs_enabled:
        runtime = DeploymentRuntime(
            db,
            DeploymentPreparer(
                db,
                environments=environments,
                resolver=datastore_paths,
                secrets=secret_service,
                max_body_bytes=settings.max_request_body_bytes,
            ),
            online_deployments.report_state,
            work_dir=settings.data_dir / "deployments",
            # Instances run as job users too, taken from the same pool as local jobs.
            supervisor=SupervisorSettings(work_dir=settings.data_dir / "deployments", users=users),
        )
    scoring_stats = ScoringStats()
    if runtime is not None:  # where the gateway routes scoring requests, it samples them
        data_collector = DataCollector(
            db,
            datastore_paths,
            data,
            scoring_stats,
            flush_seconds=settings.data_collector_flush_seconds,
            max_buffer_bytes=settings.data_collector_buffer_bytes,
        )
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
        runs=runs,
        secrets=secret_service,
        artifacts=artifacts,
        run_inputs=RunInputService(db),
        models=ModelService(db),
        model_versions=ModelVersionService(db),
        logged_models=LoggedModelService(db),
        uploads=UploadService(db, datastore_paths, max_file_bytes=settings.max_artifact_bytes),
        upload_gc=UploadCollector(
            db,
            datastore_paths,
            abandon_after=timedelta(hours=settings.upload_abandon_after_hours),
        ),
        data=data,
        model_assets=model_assets,
        datastores=datastore_service,
        computes=ComputeService(db, local_capacity(settings)),
        environments=environments,
        components=components,
        pipelines=pipelines,
        sweeps=sweeps,
        schedules=ScheduleService(
            db, submitter(jobs.create, pipelines.create, sweeps.create), authorizer=authorizer
        ),
        jobs=jobs,
        costs=CostService(db),
        lineage=LineageService(db),
        job_runner=runner,
        online_endpoints=OnlineEndpointService(
            db, endpoint_keys, server_url=settings.server_url, changed=deployments_changed
        ),
        online_deployments=online_deployments,
        endpoint_auth=endpoint_auth,
        deployment_runtime=runtime,
        scoring_stats=scoring_stats,
        data_collector=data_collector,
        endpoint_metrics=EndpointMetrics(
            db,
            scoring_stats,
            runtime,
            retention_days=settings.endpoint_metrics_retention_days,
        ),
        registries=RegistryService(db, registry_code),
        registry_components=registry_components,
        batch_endpoints=BatchEndpointService(db, jobs, pipelines, server_url=settings.server_url),
        batch_deployments=BatchDeploymentService(
            db,
            authorizer,
            IoResolver(db, datastore_paths, data, model_assets),
            model_assets,
            environments,
            secret_service,
            BatchCode(db, datastore_paths),
        ),
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

    forwarder = InstanceClient()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tune_allocator()  # big request bodies: see file_transfer
        purger = asyncio.create_task(_purge_loop(services, settings.purge_interval_seconds))
        collector = asyncio.create_task(
            _upload_gc_loop(services, settings.upload_gc_interval_seconds)
        )
        scheduler = asyncio.create_task(_schedule_loop(services, SCHEDULE_POLL_SECONDS))
        metrics = asyncio.create_task(
            _endpoint_metrics_loop(services, settings.endpoint_metrics_interval_seconds)
        )
        if services.job_runner is not None:
            await run_in_threadpool(services.job_runner.start)
        if services.deployment_runtime is not None:
            await run_in_threadpool(services.deployment_runtime.start)
        if services.data_collector is not None:
            await run_in_threadpool(services.data_collector.start)
        log.info("server ready", extra={"version": __version__})
        try:
            yield
        finally:
            if services.job_runner is not None:
                await run_in_threadpool(services.job_runner.stop)
            if services.deployment_runtime is not None:
                await run_in_threadpool(services.deployment_runtime.stop)
            if services.data_collector is not None:  # writes what it still holds
                await run_in_threadpool(services.data_collector.stop)
            await forwarder.aclose()
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
            scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scheduler
            metrics.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await metrics
            await _flush_endpoint_metrics(services)  # the last requests' figures
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
    # Added before the request context middleware, so it runs inside it (request id, body
    # limit, audit): MLflow's hottest methods without FastAPI's routing (see its module).
    app.add_middleware(mlflow_surface.HotRoutes, api=app)
    # The same for scoring requests (see api.scoring_gateway): authenticated by the endpoint's
    # key, routed to the deployments' instances.
    app.add_middleware(
        ScoringGateway,
        runtime=services.deployment_runtime,
        auth=services.endpoint_auth,
        stats=services.scoring_stats,
        forwarder=forwarder,
        collector=services.data_collector,
    )
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
        registries.router,
        registry_components.router,
        audit.router,
        sessions.router,
        experiments.router,
        runs.router,
        secrets.router,
        datastores.router,
        computes.router,
        artifacts.router,
        uploads.data_router,
        uploads.model_router,
        uploads.code_router,
        jobs.router,
        jobs.lineage_router,
        costs.router,
        data.router,
        environments.router,
        components.router,
        schedules.router,
        endpoints.router,
        batch_endpoints.router,
        endpoint_metrics.router,
        prometheus.router,
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
        try:
            removed = await run_in_threadpool(services.endpoint_metrics.purge)
            if removed:
                log.info("purged endpoint metrics", extra={"rows": removed})
        except Exception:  # the loop must outlive a failed pass; the next pass retries
            log.exception("purging endpoint metrics failed")
        await asyncio.sleep(interval)


async def _upload_gc_loop(services: Services, interval: float) -> None:
    """Remove unfinished and unused uploads (``services.upload_gc``), first after one
    interval: a server that restarts often does not sweep at every start."""
    while True:
        await asyncio.sleep(interval)
        try:
            sweep = await run_in_threadpool(services.upload_gc.collect)
            if sweep.removed:
                log.info("removed uploads", extra={"uploads": len(sweep.removed)})
        except Exception:  # the loop must outlive a failed pass; the next pass retries
            log.exception("removing unused uploads failed")


async def _endpoint_metrics_loop(services: Services, interval: float) -> None:
    """Write the online deployments' figures to the store (``services.endpoint_metrics``)."""
    while True:
        await asyncio.sleep(interval)
        await _flush_endpoint_metrics(services)


async def _flush_endpoint_metrics(services: Services) -> None:
    try:
        await run_in_threadpool(services.endpoint_metrics.flush)
    except Exception:  # the loop must outlive a failed pass; the next pass retries
        log.exception("writing endpoint metrics failed")


async def _schedule_loop(services: Services, interval: float) -> None:
    """Submit the jobs of due schedule fires (``services.schedules``)."""
    while True:
        try:
            fired = await run_in_threadpool(services.schedules.fire_due)
            if fired:
                log.info("schedules fired", extra={"fires": fired})
        except Exception:  # the loop must outlive a failed pass; the next pass retries
            log.exception("firing schedules failed")
        await asyncio.sleep(interval)
