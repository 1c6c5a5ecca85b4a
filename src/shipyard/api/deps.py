"""The services a request handler may use, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from shipyard.services.artifacts import ArtifactService
from shipyard.services.audit import AuditService
from shipyard.services.authz import Authorizer
from shipyard.services.batch_deployments import BatchDeploymentService
from shipyard.services.batch_endpoints import BatchEndpointService
from shipyard.services.components import Components
from shipyard.services.computes import ComputeService
from shipyard.services.costs import CostService
from shipyard.services.data import DataService
from shipyard.services.data_collector import DataCollector
from shipyard.services.datastores import DatastoreService
from shipyard.services.deployment_runtime import DeploymentRuntime
from shipyard.services.endpoint_keys import EndpointAuthenticator
from shipyard.services.endpoint_metrics import EndpointMetrics
from shipyard.services.endpoints import OnlineEndpointService
from shipyard.services.environments import Environments
from shipyard.services.experiments import ExperimentService
from shipyard.services.groups import GroupService
from shipyard.services.job_runner import JobRunner
from shipyard.services.jobs import JobService
from shipyard.services.lineage import LineageService
from shipyard.services.logged_models import LoggedModelService
from shipyard.services.model_assets import ModelAssetService
from shipyard.services.model_versions import ModelVersionService
from shipyard.services.models import ModelService
from shipyard.services.online_deployments import OnlineDeploymentService
from shipyard.services.pipelines import PipelineService
from shipyard.services.registries import RegistryService
from shipyard.services.registry_components import RegistryComponents
from shipyard.services.role_assignments import RoleAssignmentService
from shipyard.services.roles import RoleService
from shipyard.services.run_inputs import RunInputService
from shipyard.services.runs import RunService
from shipyard.services.schedules import ScheduleService
from shipyard.services.scoring_stats import ScoringStats
from shipyard.services.secrets import SecretService
from shipyard.services.service_principals import ServicePrincipalService
from shipyard.services.sessions import SessionService
from shipyard.services.sweeps import SweepService
from shipyard.services.tokens import TokenService
from shipyard.services.upload_gc import UploadCollector
from shipyard.services.uploads import UploadService
from shipyard.services.users import UserService
from shipyard.services.workspaces import WorkspaceService
from shipyard.settings import Settings
from shipyard.store.database import Database


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    authorizer: Authorizer
    tokens: TokenService
    users: UserService
    workspaces: WorkspaceService
    groups: GroupService
    service_principals: ServicePrincipalService
    roles: RoleService
    role_assignments: RoleAssignmentService
    audit: AuditService
    sessions: SessionService
    experiments: ExperimentService
    runs: RunService
    secrets: SecretService
    artifacts: ArtifactService
    run_inputs: RunInputService
    models: ModelService
    model_versions: ModelVersionService
    logged_models: LoggedModelService
    uploads: UploadService
    upload_gc: UploadCollector
    data: DataService
    model_assets: ModelAssetService
    datastores: DatastoreService
    computes: ComputeService
    environments: Environments
    components: Components
    jobs: JobService
    pipelines: PipelineService
    schedules: ScheduleService
    costs: CostService
    lineage: LineageService
    job_runner: JobRunner | None
    sweeps: SweepService
    registries: RegistryService
    online_endpoints: OnlineEndpointService
    online_deployments: OnlineDeploymentService
    # The scoring gateway's key and token check (cached; see services.endpoint_keys).
    endpoint_auth: EndpointAuthenticator
    registry_components: RegistryComponents
    # The deployments' figures as time series (writes them every minute, reads ranges).
    endpoint_metrics: EndpointMetrics
    batch_endpoints: BatchEndpointService
    batch_deployments: BatchDeploymentService
    # Runs online deployments' instances (None: serving_enabled off); the gateway's counts.
    deployment_runtime: DeploymentRuntime | None = None
    scoring_stats: ScoringStats = field(default_factory=ScoringStats)
    # Samples scoring requests to datastores (data_collector; None where nothing is served).
    data_collector: DataCollector | None = None


async def get_services(request: Request) -> Services:
    # async: FastAPI calls it on the event loop instead of sending it to a worker thread.
    services: Services = request.app.state.services
    return services
