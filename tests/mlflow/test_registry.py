"""The real mlflow client against a workspace's model registry: registered models, versions,
stages, aliases, tags, search, and what it must refuse."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.conftest import unique
from tests.mlflow.conftest import Tracking

# get_latest_versions and stages are deprecated in MLflow (aliases replace them) but still
# served: MLflow warns about them on every call.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture
def client(tracking: Tracking) -> MlflowClient:
    return MlflowClient()


@pytest.fixture
def run_id(client: MlflowClient) -> str:
    return str(client.create_run("0").info.run_id)


def refused(call: Callable[[], Any]) -> MlflowException:
    with pytest.raises(MlflowException) as caught:
        call()
    return caught.value


def register(client: MlflowClient, name: str, run_id: str, path: str = "model") -> Any:
    return client.create_model_version(name, f"runs:/{run_id}/{path}", run_id=run_id)


def all_pages(search: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    token = None
    while True:
        page = search(page_token=token, **kwargs)
        yield page
        token = page.token
        if not token:
            return


def test_registered_model_lifecycle(client: MlflowClient) -> None:
    name = unique("churn")
    made = client.create_registered_model(name, tags={"team": "growth"}, description="v0")
    assert made.name == name
    assert made.description == "v0"
    assert made.tags == {"team": "growth"}
    assert made.creation_timestamp > 0

    client.update_registered_model(name, description="better")
    client.set_registered_model_tag(name, "stage", "dev")
    client.delete_registered_model_tag(name, "team")
    client.delete_registered_model_tag(name, "never-set")  # a no-op, as on MLflow's server
    got = client.get_registered_model(name)
    assert got.description == "better"
    assert got.tags == {"stage": "dev"}
    assert got.last_updated_timestamp >= got.creation_timestamp

    client.rename_registered_model(name, name + "-v2")
    assert client.get_registered_model(name + "-v2").tags == {"stage": "dev"}
    assert refused(lambda: client.get_registered_model(name)).error_code == (
        "RESOURCE_DOES_NOT_EXIST"
    )
    client.delete_registered_model(name + "-v2")
    gone = refused(lambda: client.get_registered_model(name + "-v2"))
    assert gone.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_search_registered_models_filters_orders_and_pages(client: MlflowClient) -> None:
    prefix = unique("srch")
    names = [f"{prefix}-{letter}" for letter in "abcde"]
    for index, name in enumerate(names):
        client.create_registered_model(name, tags={"parity": "even" if index % 2 == 0 else "odd"})
    client.create_registered_model(prefix.upper() + "-Z")

    def names_of(models: Any) -> list[str]:
        return [m.name for m in models]

    assert names_of(client.search_registered_models(f"name = '{names[1]}'")) == [names[1]]
    assert names_of(client.search_registered_models(f"name LIKE '{prefix}-%'")) == names
    assert len(client.search_registered_models(f"name ILIKE '{prefix}-%'")) == 6
    even = client.search_registered_models(f"name LIKE '{prefix}%' AND tags.parity = 'even'")
    assert names_of(even) == [names[0], names[2], names[4]]
    newest_first = client.search_registered_models(
        f"name LIKE '{prefix}-%'", order_by=["creation_timestamp DESC"]
    )
    assert names_of(newest_first) == names[::-1]
    assert names_of(
        client.search_registered_models(f"name LIKE '{prefix}-%'", order_by=["name DESC"])
    ) == sorted(names, reverse=True)

    pages = list(
        all_pages(
            client.search_registered_models,
            filter_string=f"name LIKE '{prefix}-%'",
            max_results=2,
        )
    )
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [m.name for p in pages for m in p] == names

    for bad in ("name = ", "nme = 'x'", "name = 'x' OR name = 'y'", "tags.a > 'x'"):
        error = refused(lambda bad=bad: client.search_registered_models(bad))
        assert error.error_code == "INVALID_PARAMETER_VALUE", bad
    error = refused(lambda: client.search_registered_models(order_by=["version_number"]))
    assert error.error_code == "INVALID_PARAMETER_VALUE"


def test_versions_from_a_run_are_numbered_and_found(client: MlflowClient, run_id: str) -> None:
    name = unique("model")
    client.create_registered_model(name)
    first = register(client, name, run_id)
    assert first.version == "1"
    assert first.status == "READY"
    assert first.current_stage == "None"
    assert first.source == f"runs:/{run_id}/model"
    assert first.run_id == run_id
    assert first.user_id == "admin"  # the token's principal
    download = client.get_model_version_download_uri(name, "1")
    assert download == f"mlflow-artifacts:/runs/{run_id}/artifacts/model"

    second = client.create_model_version(
        name,
        f"mlflow-artifacts:/runs/{run_id}/artifacts/other",
        tags={"kind": "candidate"},
        description="second",
    )
    assert second.version == "2"
    assert second.run_id == run_id  # lineage read from the storage path
    assert second.tags == {"kind": "candidate"}
    assert client.get_model_version_download_uri(name, "2") == second.source

    client.update_model_version(name, "1", description="first, described")
    client.set_model_version_tag(name, "1", "validated", "yes")
    got = client.get_model_version(name, "1")
    assert got.description == "first, described"
    assert got.tags == {"validated": "yes"}
    client.delete_model_version_tag(name, "1", "validated")
    assert client.get_model_version(name, "1").tags == {}

    assert client.get_registered_model(name).latest_versions[0].version == "2"
    by_name = client.search_model_versions(f"name = '{name}'")
    assert sorted(v.version for v in by_name) == ["1", "2"]
    assert [v.version for v in client.search_model_versions("tags.kind = 'candidate'")] == ["2"]
    by_run = client.search_model_versions(f"run_id = '{run_id}' AND name = '{name}'")
    assert len(by_run) == 2
    by_number = client.search_model_versions(f"name = '{name}' AND version_number > 1")
    assert [v.version for v in by_number] == ["2"]
    by_source = client.search_model_versions("source_path LIKE '%/other'")
    assert [(v.name, v.version) for v in by_source] == [(name, "2")]
    pages = list(
        all_pages(client.search_model_versions, filter_string=f"name = '{name}'", max_results=1)
    )
    assert sorted(v.version for p in pages for v in p) == ["1", "2"]

    client.delete_model_version(name, "2")
    assert refused(lambda: client.get_model_version(name, "2")).error_code == (
        "RESOURCE_DOES_NOT_EXIST"
    )
    assert register(client, name, run_id).version == "3"  # a deleted number is not reused


def test_a_version_copied_to_another_model_shares_its_files(
    client: MlflowClient, run_id: str
) -> None:
    source, target = unique("dev"), unique("prod")
    client.create_registered_model(source)
    client.create_registered_model(target)
    register(client, source, run_id)
    client.set_registered_model_alias(source, "best", "1")
    copied = client.copy_model_version(f"models:/{source}@best", target)
    assert (copied.name, copied.version, copied.run_id) == (target, "1", run_id)
    assert client.get_model_version_download_uri(target, "1") == (
        f"mlflow-artifacts:/runs/{run_id}/artifacts/model"
    )
    again = client.create_model_version(target, f"models:/{source}/1")
    assert again.version == "2"
    missing = refused(lambda: client.create_model_version(target, f"models:/{source}/9"))
    assert missing.error_code == "INVALID_PARAMETER_VALUE"
    other_run = client.create_run("0").info.run_id
    mismatch = refused(
        lambda: client.create_model_version(target, f"runs:/{run_id}/model", run_id=other_run)
    )
    assert mismatch.error_code == "INVALID_PARAMETER_VALUE"


def test_stages_and_latest_versions(client: MlflowClient, run_id: str) -> None:
    name = unique("staged")
    client.create_registered_model(name)
    for _ in range(3):
        register(client, name, run_id)
    moved = client.transition_model_version_stage(name, "1", "production")
    assert moved.current_stage == "Production"  # stage names are matched in any case
    client.transition_model_version_stage(name, "2", "Staging")
    latest = {v.current_stage: v.version for v in client.get_latest_versions(name)}
    assert latest == {"Production": "1", "Staging": "2", "None": "3"}
    assert [v.version for v in client.get_latest_versions(name, stages=["Staging"])] == ["2"]

    client.transition_model_version_stage(name, "3", "Production", archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name='{name}'")}
    assert stages == {"1": "Archived", "2": "Staging", "3": "Production"}

    bad = refused(lambda: client.transition_model_version_stage(name, "1", "Shipped"))
    assert bad.error_code == "INVALID_PARAMETER_VALUE"
    bad = refused(
        lambda: client.transition_model_version_stage(
            name, "1", "Archived", archive_existing_versions=True
        )
    )
    assert bad.error_code == "INVALID_PARAMETER_VALUE"


def test_aliases_name_one_version_each(client: MlflowClient, run_id: str) -> None:
    name = unique("aliased")
    client.create_registered_model(name)
    register(client, name, run_id)
    register(client, name, run_id)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_registered_model(name).aliases == {"champion": "1", "challenger": "2"}
    assert client.get_model_version(name, "1").aliases == ["champion"]

    client.set_registered_model_alias(name, "champion", "2")  # moves it
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_model_version(name, "2").aliases == ["challenger", "champion"]

    client.delete_registered_model_alias(name, "challenger")
    missing = refused(lambda: client.get_model_version_by_alias(name, "challenger"))
    assert missing.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_model_version(name, "2")  # its alias goes with it
    assert client.get_registered_model(name).aliases == {}

    for reserved in ("latest", "v1", "no spaces"):
        error = refused(lambda a=reserved: client.set_registered_model_alias(name, a, "1"))
        assert error.error_code == "INVALID_PARAMETER_VALUE", reserved
    unknown = refused(lambda: client.set_registered_model_alias(name, "x", "9"))
    assert unknown.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_concurrent_registrations_get_distinct_numbers(client: MlflowClient, run_id: str) -> None:
    name = unique("busy")
    client.create_registered_model(name)
    threads, per_thread = 6, 5
    numbers: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        own = MlflowClient()
        try:
            for _ in range(per_thread):
                version = register(own, name, run_id)
                with lock:
                    numbers.append(int(version.version))
        except BaseException as exc:  # reported below, with the numbers seen so far
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    assert sorted(numbers) == list(range(1, threads * per_thread + 1))


@pytest.mark.parametrize(
    "source",
    [
        "file:///etc/passwd",
        "/abs/path/model",
        "s3://bucket/model",
        "https://example.com/model.tar.gz",
        "runs:/{run}/../../other",
        "runs:/{run}/%2e%2e/%2e%2e/escape",
        "runs:/not-a-run/model",
        "mlflow-artifacts:/runs/{run}/artifacts/../../../x",
        "mlflow-artifacts://elsewhere.example/runs/{run}/artifacts/model",
        "mlflow-artifacts:/",
        "mlflow-artifacts:/runs/not-a-run/artifacts/model",
        "models:/some-model/1",
        "models:/m-00000000000000000000000000000000",
        "runs:/{run}/model\\..\\..\\x",
    ],
)
def test_sources_outside_the_workspace_are_refused(
    client: MlflowClient, run_id: str, source: str
) -> None:
    name = unique("guarded")
    client.create_registered_model(name)
    error = refused(lambda: client.create_model_version(name, source.format(run=run_id)))
    assert error.error_code == "INVALID_PARAMETER_VALUE"
    assert client.search_model_versions(f"name = '{name}'") == []


def test_another_workspaces_models_and_runs_are_invisible(
    tracking: Tracking, client: MlflowClient, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("private")
    client.create_registered_model(name)
    register(client, name, run_id)
    other = unique("ws")
    tracking.admin("POST", "/api/v1/workspaces", json={"name": other})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.uri.replace(tracking.workspace, other))
    elsewhere = MlflowClient()
    assert refused(lambda: elsewhere.get_registered_model(name)).error_code == (
        "RESOURCE_DOES_NOT_EXIST"
    )
    assert elsewhere.search_registered_models(f"name = '{name}'") == []
    assert elsewhere.search_model_versions(f"name = '{name}'") == []
    elsewhere.create_registered_model(name)  # the same name is free there
    stolen = refused(lambda: elsewhere.create_model_version(name, f"runs:/{run_id}/model"))
    assert stolen.error_code == "INVALID_PARAMETER_VALUE"
    assert "does not exist in this workspace" in stolen.message


def test_bad_requests_name_the_problem(client: MlflowClient, run_id: str) -> None:
    name = unique("strict")
    client.create_registered_model(name)
    duplicate = refused(lambda: client.create_registered_model(name))
    assert duplicate.error_code == "RESOURCE_ALREADY_EXISTS"
    other = unique("strict")
    client.create_registered_model(other)
    taken = refused(lambda: client.rename_registered_model(other, name))
    assert taken.error_code == "RESOURCE_ALREADY_EXISTS"
    for bad_name in ("a/b", "a:b"):
        error = refused(lambda n=bad_name: client.create_registered_model(n))
        assert error.error_code == "INVALID_PARAMETER_VALUE"
    unknown = refused(lambda: client.create_model_version("no-such-model", f"runs:/{run_id}/m"))
    assert unknown.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert refused(lambda: client.get_model_version(name, "abc")).error_code == (
        "INVALID_PARAMETER_VALUE"
    )
    assert refused(lambda: client.get_model_version(name, "7")).error_code == (
        "RESOURCE_DOES_NOT_EXIST"
    )
    wrong_run = refused(
        lambda: client.create_model_version(name, f"runs:/{run_id}/m", run_id="f" * 32)
    )
    assert wrong_run.error_code == "INVALID_PARAMETER_VALUE"
    bad_token = refused(lambda: client.search_registered_models(page_token="not-a-token"))
    assert bad_token.error_code == "INVALID_PARAMETER_VALUE"
    # NUL cannot be stored (PostgreSQL text refuses it): a 400, never a 500.
    nul = refused(lambda: client.create_registered_model(unique("m"), description="a\x00b"))
    assert nul.error_code == "INVALID_PARAMETER_VALUE"
    nul = refused(lambda: client.set_model_version_tag(name, "1", "k", "\x00"))
    assert nul.error_code == "INVALID_PARAMETER_VALUE"
    nul = refused(lambda: client.get_registered_model("a\x00b"))
    assert nul.error_code == "INVALID_PARAMETER_VALUE"


def test_a_reader_can_read_but_not_register(
    tracking: Tracking, client: MlflowClient, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("shared")
    client.create_registered_model(name)
    register(client, name, run_id)
    _, reader = tracking.user("Reader")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", reader)
    as_reader = MlflowClient()
    assert as_reader.get_registered_model(name).name == name
    assert as_reader.get_model_version_download_uri(name, "1").startswith("mlflow-artifacts:/")
    for change in (
        lambda: as_reader.create_registered_model(unique("mine")),
        lambda: as_reader.create_model_version(name, f"runs:/{run_id}/model"),
        lambda: as_reader.set_registered_model_alias(name, "champion", "1"),
        lambda: as_reader.delete_registered_model(name),
    ):
        assert refused(change).error_code == "PERMISSION_DENIED"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        denied = refused(lambda: mlflow.register_model(f"runs:/{run_id}/model", name))
    assert denied.error_code == "PERMISSION_DENIED"


def test_registry_changes_are_audited(tracking: Tracking, client: MlflowClient) -> None:
    name = unique("audited")
    client.create_registered_model(name)
    client.set_registered_model_tag(name, "k", "v")
    client.get_registered_model(name)  # a read: not audited
    events = tracking.admin(
        "GET", f"/api/v1/workspaces/{tracking.workspace}/audit", params={"max_results": 100}
    ).json()["items"]
    registry = [e for e in events if "/registered-models/" in e["resource"]]
    assert sorted((e["method"], e["resource"].rsplit("/", 1)[-1]) for e in registry) == [
        ("POST", "create"),
        ("POST", "set-tag"),
    ]
    assert {e["action"] for e in registry} == {"workspaces/models/write"}
    assert {e["outcome"] for e in registry} == {"succeeded"}
    assert {e["principal"] for e in registry} == {"admin"}
