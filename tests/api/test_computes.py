"""Compute targets over real HTTP: ``local`` always there with its slots and price, Ray
clusters by address, Azure's amlcompute YAML mapped onto one, and every bad input a 4xx
naming its field. The Ray cluster itself is in tests/compute/test_ray_launcher.py; here an
address is checked against servers that are not Ray (nothing listening, a web server that
is not a Ray dashboard)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.sdk.client import Client
from shipyard.sdk.jobs import command
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.conftest import RunningServer, free_port, start_server, unique

NOWHERE = f"http://127.0.0.1:{free_port()}"  # nothing listens there


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    # No runner: submitted jobs stay queued, which is what the in-use checks need.
    with start_server(
        tmp_path_factory.mktemp("data"),
        module_database_url,
        jobs_enabled=False,
        local_compute_cpus=3,
        local_compute_memory_mb=2048,
        local_compute_gpus=1,
        local_compute_cost_per_core_hour=0.25,
    ) as running:
        yield running


@pytest.fixture
def ws(admin: Client) -> WorkspaceHandle:
    name = unique()
    admin.workspaces.create(name)
    return admin.workspace(name)


def post(server: RunningServer, workspace: str, body: dict[str, Any], **params: Any) -> Any:
    return httpx.post(
        f"{server.url}/api/v1/workspaces/{workspace}/computes",
        json=body,
        params=params or None,
        headers=server.auth,
        timeout=30,
    )


def expect(response: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["code"] == code, problem
    assert problem.get("field") == field, problem


def test_every_workspace_has_local_first_with_its_slots_and_price(ws: WorkspaceHandle) -> None:
    [local] = list(ws.computes.list())
    assert local.name == "local"
    assert local.type == "local"
    assert local.capacity is not None
    assert (local.capacity.cpus, local.capacity.memory_mb, local.capacity.gpus) == (3, 2048, 1)
    assert (local.cost.rate, local.cost.unit) == (0.25, "core")
    assert ws.computes.get("local") == local
    with pytest.raises(ConflictError) as deleted:
        ws.computes.delete("local")
    assert deleted.value.code == "compute_protected"


def test_a_ray_compute_is_created_listed_shown_and_deleted(ws: WorkspaceHandle) -> None:
    made = ws.computes.create(
        "ray-cpu",
        address=NOWHERE + "/",
        description="the team's cluster",
        tags={"team": "churn"},
        cost={"rate": 0.12, "unit": "node"},
        skip_validation=True,
    )
    assert made.type == "ray"
    assert made.address == NOWHERE  # normalised: no trailing slash
    assert (made.cost.rate, made.cost.unit) == (0.12, "node")
    assert made.tags == {"team": "churn"}
    assert made.description == "the team's cluster"
    assert made.capacity is None
    assert made.autoscaler is None
    assert made.created_by == "admin"
    assert made.created_at is not None
    ws.computes.create("another", address=NOWHERE, skip_validation=True)
    assert [c.name for c in ws.computes.list()] == ["local", "another", "ray-cpu"]
    # Paged one at a time, local still comes first and nothing is repeated or lost.
    assert [c.name for c in ws.computes.list(page_size=1)] == ["local", "another", "ray-cpu"]
    assert ws.computes.get("ray-cpu") == made
    ws.computes.delete("ray-cpu")
    with pytest.raises(NotFoundError) as gone:
        ws.computes.get("ray-cpu")
    assert (gone.value.code, gone.value.field) == ("compute_not_found", "name")


def test_an_amlcompute_file_maps_onto_the_ray_autoscaler_and_keeps_no_password(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    body = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json",
        "name": "cpu-cluster",
        "type": "amlcompute",
        "size": "STANDARD_DS3_v2",
        "tier": "low_priority",
        "min_instances": 1,
        "max_instances": 4,
        "idle_time_before_scale_down": 180,
        "location": "westeurope",
        "admin_username": "azureuser",
        "admin_password": "do-not-keep-me",
        "address": NOWHERE,
    }
    response = post(server, ws.name, body, skip_validation="true")
    assert response.status_code == 201, response.text
    assert "do-not-keep-me" not in response.text
    made = ws.computes.get("cpu-cluster")
    assert made.type == "ray"
    assert made.properties == {
        "azure_type": "amlcompute",
        "size": "STANDARD_DS3_v2",
        "tier": "low_priority",
        "min_instances": 1,
        "max_instances": 4,
        "idle_time_before_scale_down": 180,
        "location": "westeurope",
        "admin_username": "azureuser",
    }
    assert made.autoscaler is not None
    assert made.autoscaler.model_dump() == {
        "min_workers": 1,
        "max_workers": 4,
        "idle_timeout_minutes": 3.0,
    }
    # Azure's defaults for the fields a file leaves out.
    bare = {"name": "bare", "type": "amlcompute", "address": NOWHERE}
    assert post(server, ws.name, bare, skip_validation="true").status_code == 201
    scaler = ws.computes.get("bare").autoscaler
    assert scaler is not None
    assert (scaler.min_workers, scaler.max_workers, scaler.idle_timeout_minutes) == (0, 1, 2.0)
    with server.db.read() as session:
        from shipyard.store.computes import ComputeRow

        stored = [repr(row.properties) for row in session.query(ComputeRow)]
    assert not any("do-not-keep-me" in text for text in stored)


def test_an_amlcompute_file_without_an_address_is_refused_naming_it(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    body = {"name": "cpu-cluster", "type": "amlcompute", "size": "STANDARD_DS3_v2"}
    response = post(server, ws.name, body)
    expect(response, 400, "missing_field", "address")
    assert "does not provision machines" in response.json()["detail"]
    expect(post(server, ws.name, {"name": "r", "type": "ray"}), 400, "missing_field", "address")


def test_an_address_that_does_not_answer_is_refused_at_create(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    started = time.monotonic()
    response = post(server, ws.name, {"name": "gone", "type": "ray", "address": NOWHERE})
    expect(response, 400, "compute_unreachable", "address")
    assert NOWHERE in response.json()["detail"]
    assert time.monotonic() - started < 10
    with pytest.raises(NotFoundError):
        ws.computes.get("gone")


def test_a_web_server_that_is_not_ray_is_refused(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    # The Shipyard server itself answers, but /health/api/version is no Ray dashboard.
    body = {"name": "not-ray", "type": "ray", "address": f"{server.url}/health"}
    expect(post(server, ws.name, body), 400, "not_a_ray_cluster", "address")


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("ray://head:10001", "Ray Client"),
        ("ftp://head:8265", "http(s)"),
        ("head:8265", "http(s)"),
        ("http://user:pw@head:8265", "user name or password"),
        ("http://head:8265/?token=x", "query"),
        ("http://head:99999", "not a URL"),
    ],
)
def test_bad_addresses_are_refused_naming_the_field(
    server: RunningServer, ws: WorkspaceHandle, address: str, fragment: str
) -> None:
    response = post(server, ws.name, {"name": "bad", "type": "ray", "address": address})
    expect(response, 400, "invalid_address", "address")
    assert fragment in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"type": "kubernetes"}, "type", "Kubernetes"),
        ({"type": "local"}, "type", "already"),
        ({"type": "spark"}, "type", "'ray' or 'amlcompute'"),
        ({"cost": {"rate": -1}}, "cost.rate", None),
        ({"cost": {"rate": 1, "unit": "gpu"}}, "cost.unit", None),
        ({"min_instances": 3, "max_instances": 2}, None, "max_instances"),
        ({"surprise": 1}, "surprise", None),
    ],
)
def test_bad_bodies_are_400s_naming_the_field(
    server: RunningServer,
    ws: WorkspaceHandle,
    body: dict[str, Any],
    field: str | None,
    fragment: str | None,
) -> None:
    full = {"name": "bad", "type": "ray", "address": NOWHERE, **body}
    response = post(server, ws.name, full, skip_validation="true")
    assert response.status_code == 400, response.text
    if field is not None:
        assert response.json()["field"] == field, response.text
    if fragment is not None:
        assert fragment in response.json()["detail"]


@pytest.mark.parametrize("name", ["local", "Serverless", "-dash", "a" * 101, "x/y"])
def test_reserved_and_malformed_names_are_refused(ws: WorkspaceHandle, name: str) -> None:
    with pytest.raises((ConflictError, InvalidInputError)) as refused:
        ws.computes.create_from_spec(
            {"name": name, "type": "ray", "address": NOWHERE}, skip_validation=True
        )
    assert refused.value.field == "name"


def test_a_duplicate_name_is_a_conflict(ws: WorkspaceHandle) -> None:
    ws.computes.create("twice", address=NOWHERE, skip_validation=True)
    with pytest.raises(ConflictError) as again:
        ws.computes.create("twice", address=NOWHERE, skip_validation=True)
    assert (again.value.code, again.value.field) == ("compute_exists", "name")


def test_computes_belong_to_their_workspace(admin: Client, ws: WorkspaceHandle) -> None:
    ws.computes.create("mine", address=NOWHERE, skip_validation=True)
    other = unique()
    admin.workspaces.create(other)
    with pytest.raises(NotFoundError):
        admin.workspace(other).computes.get("mine")
    assert [c.name for c in admin.workspace(other).computes.list()] == ["local"]


def test_a_job_on_an_unknown_compute_is_a_404_naming_compute(ws: WorkspaceHandle) -> None:
    with pytest.raises(NotFoundError) as missing:
        ws.jobs.create(command(command="echo hi", compute="azureml:nope"))
    assert (missing.value.code, missing.value.field) == ("compute_not_found", "compute")


def test_a_compute_with_queued_jobs_cannot_be_deleted(ws: WorkspaceHandle) -> None:
    ws.computes.create("busy", address=NOWHERE, skip_validation=True)
    job = ws.jobs.create(
        command(command="echo hi", compute="azureml:busy", resources={"instance_count": 3})
    )
    assert job.status == "Queued"
    assert job.compute == "busy"
    with pytest.raises(ConflictError) as busy:
        ws.computes.delete("busy")
    assert busy.value.code == "compute_in_use"
    assert job.name in busy.value.detail
    ws.jobs.cancel(job.name)
    ws.computes.delete("busy")


def test_a_job_on_a_cluster_that_does_not_answer_fails_after_its_retries(
    tmp_path: Path, database_url: str
) -> None:
    """With a runner: the cluster not answering is the infrastructure's failure, retried
    like any other, then the job fails saying which cluster did not answer."""
    with (
        start_server(
            tmp_path / "data", database_url, environment_cache_dir=SHARED_ENVIRONMENTS
        ) as running,
        running.client() as admin,
    ):
        admin.workspaces.create("ws-down")
        ws = admin.workspace("ws-down")
        ws.computes.create("down", address=NOWHERE, skip_validation=True)
        job = ws.jobs.create(command(command="echo never", compute="down"))
        deadline = time.monotonic() + 120
        while (ended := ws.jobs.get_job(job.name)).status not in ("Failed", "Completed"):
            assert time.monotonic() < deadline, ended.status
            time.sleep(0.1)
        assert ended.status == "Failed"
        assert ended.attempt == 2  # retried twice, as infrastructure failures are
        assert ended.error is not None
        assert NOWHERE in ended.error, ended.error
        assert "does not answer" in ended.error
