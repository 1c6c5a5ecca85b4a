"""The model registry's store on each backend: version numbers under concurrency, cascades,
and searches through the JSON tag columns."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shipyard.api.app import build_services
from shipyard.api.deps import Services
from shipyard.domain.errors import InvalidInputError
from shipyard.domain.principals import Principal
from shipyard.schemas.models import LoggedModelCreate, ModelCreate, ModelVersionCreate
from shipyard.schemas.tracking import ExperimentCreate, RunCreate
from shipyard.schemas.workspaces import WorkspaceCreate
from shipyard.services.bootstrap import prepare
from shipyard.store.database import Database
from shipyard.store.models import ModelAliasRow, ModelRow, ModelVersionRow
from tests.conftest import ADMIN_TOKEN, make_settings, unique


@dataclass
class Registry:
    services: Services
    admin: Principal
    workspace: str
    run_id: str

    def model(self, **tags: str) -> str:
        name = unique("model")
        self.services.models.create(self.admin, self.workspace, ModelCreate(name=name, tags=tags))
        return name

    def version(self, name: str, **tags: str) -> int:
        body = ModelVersionCreate(source=f"runs:/{self.run_id}/model", tags=tags)
        return self.services.model_versions.create(self.admin, self.workspace, name, body).version


@pytest.fixture
def registry(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    settings = make_settings(tmp_path / "data", database_url)
    db = Database(database_url)
    try:
        prepare(settings, db)
        services = build_services(settings, db)
        admin = services.tokens.authenticate(ADMIN_TOKEN)
        workspace = unique("ws")
        services.workspaces.create(admin.id, WorkspaceCreate(name=workspace))
        run = services.runs.create(admin, workspace, RunCreate())
        yield Registry(services, admin, workspace, run.id)
    finally:
        db.dispose()


def test_concurrent_versions_are_numbered_without_gaps_or_repeats(registry: Registry) -> None:
    name = registry.model()
    numbers: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            for _ in range(5):
                number = registry.version(name)
                with lock:
                    numbers.append(number)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(numbers) == list(range(1, 41))
    with registry.services.db.read() as session:
        last = session.scalar(select(ModelRow.last_version).where(ModelRow.name == name))
    assert last == 40


def test_deleting_cascades_and_numbers_are_not_reused(registry: Registry) -> None:
    name = registry.model()
    registry.version(name)
    registry.version(name)
    registry.services.models.set_alias(registry.workspace, name, "champion", 2)
    registry.services.model_versions.delete(registry.workspace, name, 2)
    assert registry.services.models.get(registry.workspace, name).aliases == {}
    assert registry.version(name) == 3

    registry.services.models.delete(registry.workspace, name)
    with registry.services.db.read() as session:
        assert session.scalar(select(func.count()).select_from(ModelVersionRow)) == 0
        assert session.scalar(select(func.count()).select_from(ModelAliasRow)) == 0


def test_tag_searches_read_the_json_columns(registry: Registry) -> None:
    keep = registry.model(**{"team.name": "vision", "tier": "gold"})
    registry.model(tier="silver")
    bare = registry.model()
    search = registry.services.models.search

    def names(text: str) -> list[str]:
        return [m.name for m in search(registry.workspace, filter=text).items]

    assert names("tags.`team.name` = 'vision'") == [keep]
    assert names("tags.tier ILIKE 'GOLD'") == [keep]
    # A missing tag matches no comparison, != included (MLflow's rule)...
    assert bare not in names("tags.tier != 'bronze'")
    # ...except the prompt marker the MLflow client adds to every model search.
    assert bare in names("tags.`mlflow.prompt.is_prompt` != 'true'")
    with pytest.raises(InvalidInputError) as caught:
        names("tags.`say \"hi\"` = 'x'")
    assert caught.value.field == "filter"


def test_logged_models_need_an_experiment_and_run_of_the_workspace(registry: Registry) -> None:
    services = registry.services
    experiment = services.experiments.create(registry.workspace, ExperimentCreate(name="e"))
    made = services.logged_models.create(
        registry.admin,
        registry.workspace,
        LoggedModelCreate(experiment_id=experiment.id, source_run_id=registry.run_id),
    )
    assert made.status == "PENDING"
    assert made.storage_location == f"mlflow-artifacts:/models/{made.id}/artifacts"
    name = registry.model()
    body = ModelVersionCreate(source=f"models:/{made.id}", type="mlflow_model")
    version = services.model_versions.create(registry.admin, registry.workspace, name, body)
    assert (version.logged_model_id, version.storage_location) == (made.id, made.storage_location)
    assert version.run_id == registry.run_id  # the logged model's run, when none is given
    services.logged_models.delete(registry.workspace, made.id)
    # Hidden, not gone: the version keeps its lineage and the proxy still serves its files.
    again = services.model_versions.get(registry.workspace, name, version.version)
    assert again.logged_model_id == made.id
    assert services.logged_models.get(registry.workspace, made.id, include_deleted=True).id
