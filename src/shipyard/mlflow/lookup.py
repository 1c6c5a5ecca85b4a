"""MLflow names experiments by id; Shipyard's experiment service by name. This bridges them.

MLflow's default experiment id "0" is the workspace's experiment named "Default", created on
first use.
"""

from __future__ import annotations

from collections.abc import Iterator

from shipyard.api.deps import Services
from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.mlflow.convert import DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME
from shipyard.schemas.tracking import ExperimentCreate, ExperimentRead

_PAGE = 1000


def all_experiments(
    services: Services, workspace: str, *, deleted: bool
) -> Iterator[ExperimentRead]:
    token: str | None = None
    while True:
        page = services.experiments.list(
            workspace, deleted=deleted, page_token=token, max_results=_PAGE
        )
        yield from page.items
        token = page.next_page_token
        if token is None:
            return


def default_experiment(services: Services, workspace: str) -> ExperimentRead:
    try:
        return services.experiments.get(workspace, DEFAULT_EXPERIMENT_NAME)
    except NotFoundError as exc:
        if exc.code != "experiment_not_found":
            raise
    try:
        return services.experiments.create(
            workspace, ExperimentCreate(name=DEFAULT_EXPERIMENT_NAME)
        )
    except ConflictError:  # created meanwhile by a concurrent first use
        return services.experiments.get(workspace, DEFAULT_EXPERIMENT_NAME)


def experiment_by_id(services: Services, workspace: str, experiment_id: str) -> ExperimentRead:
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        return default_experiment(services, workspace)
    return services.experiments.get_by_id(workspace, experiment_id)


def active_experiment(services: Services, workspace: str, experiment_id: str) -> ExperimentRead:
    """The experiment a new run goes into: it must not be deleted (MLflow's rule)."""
    found = experiment_by_id(services, workspace, experiment_id)
    if found.lifecycle_stage != "active":
        raise InvalidInputError(
            f"experiment {found.name!r} is deleted; restore it to create runs in it",
            code="experiment_deleted",
            field="experiment_id",
        )
    return found
