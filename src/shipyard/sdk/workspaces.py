"""``client.workspaces`` and the ``client.workspace(name)`` handle."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from shipyard.schemas.tracking import RunRead
from shipyard.schemas.workspaces import WorkspaceRead
from shipyard.sdk.batch_endpoints import BatchDeploymentOperations, BatchEndpointOperations
from shipyard.sdk.components import ComponentOperations
from shipyard.sdk.computes import ComputeOperations
from shipyard.sdk.costs import CostOperations
from shipyard.sdk.data import DataOperations
from shipyard.sdk.datastores import DatastoreOperations
from shipyard.sdk.endpoints import OnlineDeploymentOperations, OnlineEndpointOperations
from shipyard.sdk.environments import EnvironmentOperations
from shipyard.sdk.experiments import ExperimentOperations
from shipyard.sdk.http import HttpSession
from shipyard.sdk.models import ModelOperations
from shipyard.sdk.run_logger import DEFAULT_MAX_QUEUE
from shipyard.sdk.runs import JobOperations, Run, start_run
from shipyard.sdk.schedules import ScheduleOperations
from shipyard.sdk.secrets import SecretOperations

Workspace = WorkspaceRead
_UNSET: Any = object()


def _path(name: str) -> str:
    return f"/api/v1/workspaces/{quote(name, safe='')}"


class WorkspaceOperations:
    """Create, read, update and delete workspaces.

    Example::

        ws = client.workspaces.create(name="churn", description="Churn models")
        for w in client.workspaces.list():
            print(w.name, w.display_name)
    """

    def __init__(self, http: HttpSession) -> None:
        self._http = http

    def create(
        self,
        name: str,
        *,
        display_name: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        storage_uri: str | None = None,
        environment_registry: str = "shared",
    ) -> Workspace:
        spec: dict[str, Any] = {
            "name": name,
            "display_name": display_name,
            "description": description,
            "tags": tags or {},
            "environment_registry": environment_registry,
        }
        if storage_uri is not None:
            spec["storage"] = {"uri": storage_uri}
        return self.create_from_spec(spec)

    def create_from_spec(self, spec: dict[str, Any]) -> Workspace:
        """Create from a mapping shaped like the workspace YAML (what the CLI sends)."""
        # The server validates (one set of rules, errors that name the field).
        return self._http.send_model("POST", "/api/v1/workspaces", Workspace, spec)

    def get(self, name: str) -> Workspace:
        return self._http.get_model(_path(name), Workspace)

    def list(self, *, deleted: bool = False, page_size: int | None = None) -> Iterator[Workspace]:
        """Every workspace you may see, page after page (``deleted=True``: the soft-deleted)."""
        params = {"deleted": deleted or None, "max_results": page_size}
        return self._http.iterate("/api/v1/workspaces", Workspace, params)

    def update(
        self,
        name: str,
        *,
        display_name: str | None = _UNSET,
        description: str | None = _UNSET,
        tags: dict[str, str] | None = _UNSET,
    ) -> Workspace:
        """Change only the fields given; ``None`` clears a field, ``tags`` replaces all tags."""
        given = {"display_name": display_name, "description": description, "tags": tags}
        return self.update_from_spec(name, {k: v for k, v in given.items() if v is not _UNSET})

    def update_from_spec(self, name: str, changes: dict[str, Any]) -> Workspace:
        """Send these changes as they are (what the CLI sends; the server checks the fields)."""
        return self._http.send_model("PATCH", _path(name), Workspace, changes)

    def delete(self, name: str, *, permanently_delete: bool = False) -> None:
        """Soft-delete (recoverable for the server's retention period) or delete for good."""
        params = {"permanently_delete": "true"} if permanently_delete else None
        self._http.request("DELETE", _path(name), params=params)

    def recover(self, name: str) -> Workspace:
        return self._http.send_model("POST", _path(name) + "/recover", Workspace)


class WorkspaceHandle:
    """One workspace's resources; later features hang their groups here (``ws.jobs``...)."""

    def __init__(self, http: HttpSession, name: str) -> None:
        self._http = http
        self.name = name
        self.jobs = JobOperations(http, name)
        self.experiments = ExperimentOperations(http, name)
        self.secrets = SecretOperations(http, name)
        self.data = DataOperations(http, name)
        self.models = ModelOperations(http, name)
        self.datastores = DatastoreOperations(http, name)
        self.computes = ComputeOperations(http, name)
        self.costs = CostOperations(http, name)
        self.environments = EnvironmentOperations(http, name)
        self.components = ComponentOperations(http, name)
        self.schedules = ScheduleOperations(http, name, self.jobs._submitted)
        self.online_endpoints = OnlineEndpointOperations(http, name)
        self.online_deployments = OnlineDeploymentOperations(http, name, self.models)
        self.batch_endpoints = BatchEndpointOperations(http, name, self.jobs._submitted)
        self.batch_deployments = BatchDeploymentOperations(http, name, self.models)

    def get(self) -> Workspace:
        return self._http.get_model(_path(self.name), Workspace)

    def start_run(
        self,
        experiment: str = "Default",
        name: str | None = None,
        tags: Mapping[str, object] | None = None,
        parent_run: Run | RunRead | str | None = None,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> Run:
        """Start a run in ``experiment`` (created if needed) and return it to log to.

        Use it as a context manager: the run ends ``Completed`` at the end of the block,
        ``Failed`` if the block raises. ``parent_run`` (a run or its id) nests it. See
        :class:`shipyard.sdk.runs.Run` for how logging is queued and sent.

        Example::

            with ws.start_run(experiment="baseline", name="lr-0.1") as run:
                run.log_param("lr", 0.1)
                run.log_metric("loss", 0.42, step=1)
        """
        return start_run(
            self._http,
            self.name,
            experiment=experiment,
            name=name,
            tags=tags,
            parent_run=parent_run,
            max_queue=max_queue,
        )

    def __repr__(self) -> str:
        return f"WorkspaceHandle(name={self.name!r})"
