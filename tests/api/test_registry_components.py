"""Components in a registry over real HTTP: versions, their code and environment kept by the
registry, pipelines of two workspaces running the same registry component (and reusing its
step), the caller's read checked at the registry, and a registry that holds components
refusing to be deleted.

The server runs jobs, and its new users hold no role: every permission a caller has here is
one the test gave it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Actor, Api
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.conftest import RunningServer, start_server

TERMINAL = ("Completed", "Failed", "Canceled")
ENVIRONMENT = "azureml:shipyard-minimal@latest"  # curated: every workspace has it
ECHO = {
    "name": "echo",
    "command": "echo ${{inputs.text}} > ${{outputs.out}}/note.txt",
    "environment": ENVIRONMENT,
    "inputs": {"text": {"type": "string"}},
    "outputs": {"out": {"type": "uri_folder"}},
}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    with start_server(
        tmp_path_factory.mktemp("data"),
        module_database_url,
        new_user_roles=[],
        environment_cache_dir=SHARED_ENVIRONMENTS,
        local_compute_cpus=2,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[Api]:
    with httpx.Client(timeout=60) as http:
        yield Api(server, http)


def components(registry: str) -> str:
    return f"/api/v1/registries/{registry}/components"


def uri(registry: str, name: str, version: str | None = None) -> str:
    tail = f"versions/{version}" if version else "labels/latest"
    return f"azureml://registries/{registry}/components/{name}/{tail}"


def problem(response: httpx.Response, status: int, code: str, field: str | None) -> str:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert (body["code"], body.get("field")) == (code, field), body
    return str(body["detail"])


def create(api: Api, registry: str, body: dict[str, Any], actor: Actor | None = None) -> Any:
    headers = actor.headers if actor else api.admin
    return api.call("POST", f"{components(registry)}/{body['name']}/versions", headers, json=body)


def pipeline(component: str, text: str = "hi") -> dict[str, Any]:
    return {
        "type": "pipeline",
        "jobs": {
            "say": {"component": component, "inputs": {"text": text}},
            "show": {
                "command": "cat ${{inputs.note}}/note.txt",
                "inputs": {"note": "${{parent.jobs.say.outputs.out}}"},
            },
        },
    }


def wait(api: Api, workspace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = api.as_admin(
            "GET", f"/api/v1/workspaces/{workspace}/jobs/{name}"
        ).json()
        if job["status"] in TERMINAL:
            return job
        assert time.monotonic() < deadline, f"{name} still {job['status']}"
        time.sleep(0.1)


def steps(api: Api, workspace: str, name: str) -> dict[str, dict[str, Any]]:
    params = {"parent_job_name": name}
    listed = api.as_admin("GET", f"/api/v1/workspaces/{workspace}/jobs", params=params).json()
    return {job["step"]: job for job in listed["items"]}


# ----------------------------------------------------------------------------------------
# Versions
# ----------------------------------------------------------------------------------------


def test_versions_are_immutable_numbered_listed_archived_and_deleted(api: Api) -> None:
    registry = api.registry()
    made = create(api, registry, {**ECHO, "version": "1"})
    assert made.status_code == 201, made.text
    first = made.json()
    assert (first["registry"], first["version"], first["environment"]) == (
        registry,
        "1",
        "azureml:shipyard-minimal:1",
    )
    problem(
        create(api, registry, {**ECHO, "version": "1"}), 409, "component_version_exists", "version"
    )
    second = create(api, registry, {**ECHO, "description": "again"}).json()
    assert second["version"] == "2"
    assert second["definition_hash"] == first["definition_hash"]  # the same definition

    base = f"{components(registry)}/echo/versions"
    assert api.as_admin("GET", f"{base}/latest").json()["version"] == "2"
    assert [c["name"] for c in api.as_admin("GET", components(registry)).json()["items"]] == [
        "echo"
    ]
    assert [v["version"] for v in api.as_admin("GET", base).json()["items"]] == ["2", "1"]
    patched = api.as_admin("PATCH", f"{base}/1", json={"description": "first"}).json()
    assert patched["description"] == "first"

    assert api.call("POST", f"{base}/2/archive", api.admin).status_code == 204
    assert api.as_admin("GET", f"{base}/latest").json()["version"] == "1"
    assert api.call("POST", f"{base}/2/restore", api.admin).status_code == 204
    assert api.as_admin("GET", f"{base}/latest").json()["version"] == "2"

    assert api.call("DELETE", f"{base}/2", api.admin).status_code == 204
    problem(api.call("GET", f"{base}/2", api.admin), 404, "component_version_not_found", "version")
    assert api.call("DELETE", f"{base}/1", api.admin).status_code == 204  # the last one
    problem(api.call("GET", f"{base}/latest", api.admin), 404, "component_not_found", "name")
    # Another registry's component of the same name is another component.
    other = api.registry()
    assert create(api, other, ECHO).json()["version"] == "1"
    problem(api.call("GET", f"{components(registry)}/echo/versions/1", api.admin), 404,
            "component_not_found", "name")  # fmt: skip


def test_what_a_registry_component_cannot_hold(api: Api) -> None:
    registry = api.registry()
    workspace = api.workspace()
    env = {**ECHO, "environment": "azureml:my-env:1"}
    detail = problem(
        create(api, registry, env), 400, "workspace_reference_in_registry", "environment"
    )
    assert "workspace" in detail
    other = {**ECHO, "environment": "azureml://registries/other/environments/e/versions/1"}
    problem(create(api, registry, other), 400, "workspace_reference_in_registry", "environment")
    nested = {"name": "nested", "type": "pipeline", "jobs": {}}
    problem(create(api, registry, nested), 400, "unsupported_component_type", "type")
    with_code = {**ECHO, "code": "sha256:" + "a" * 64}
    problem(create(api, registry, with_code), 400, "missing_field", "code_workspace")
    problem(create(api, registry, {**with_code, "code_workspace": workspace}), 404,
            "code_not_found", "code")  # fmt: skip
    problem(create(api, registry, {**with_code, "code_workspace": "nope-nope"}), 404,
            "workspace_not_found", "code_workspace")  # fmt: skip
    problem(create(api, "no-such-registry", ECHO), 404, "registry_not_found", "registry")


def test_an_inline_environment_is_kept_by_value(api: Api) -> None:
    registry = api.registry()
    inline = {**ECHO, "environment": {"pip_requirements": ["six==1.16.0"]}}
    made = create(api, registry, inline)
    assert made.status_code == 201, made.text
    assert made.json()["environment"].endswith("(inline)")


# ----------------------------------------------------------------------------------------
# Used by pipelines of any workspace
# ----------------------------------------------------------------------------------------


def test_two_workspaces_run_the_same_registry_component_and_reuse_it(
    api: Api, server: RunningServer, tmp_path: Path
) -> None:
    registry = api.registry()
    first, second = api.workspace(), api.workspace()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "say.py").write_text(
        "import sys, pathlib\n"
        "pathlib.Path(sys.argv[2], 'note.txt').write_text('said ' + sys.argv[1])\n"
    )
    (tmp_path / "say.yml").write_text(
        "name: say\nversion: '1'\ncode: ./src\n"
        "command: python say.py ${{inputs.text}} ${{outputs.out}}\n"
        f"environment: {ENVIRONMENT}\n"
        "inputs: {text: {type: string}}\noutputs: {out: {type: uri_folder}}\n"
    )
    with server.client() as admin:
        made = admin.registry(registry).components.create(
            tmp_path / "say.yml", code_workspace=first
        )
    assert made.code is not None
    assert made.id == uri(registry, "say", "1")

    jobs = {}
    for workspace in (first, second):
        submitted = api.as_admin("POST", f"/api/v1/workspaces/{workspace}/jobs",
                                 json=pipeline(uri(registry, "say", "1"), "hello"))  # fmt: skip
        assert submitted.status_code == 201, submitted.text
        jobs[workspace] = submitted.json()["name"]
    for workspace, name in jobs.items():
        assert wait(api, workspace, name)["status"] == "Completed"
        ran = steps(api, workspace, name)
        assert ran["say"]["status"] == "Completed"
        assert ran["say"]["reused_from"] is None
        shown = ran["show"]["name"]
        log = api.as_admin("GET", f"/api/v1/workspaces/{workspace}/jobs/{shown}/logs")
        assert "said hello" in log.text

    # Resubmitted unchanged (through latest this time): the step is reused in its workspace.
    again = api.as_admin("POST", f"/api/v1/workspaces/{second}/jobs",
                         json=pipeline(uri(registry, "say"), "hello")).json()  # fmt: skip
    assert wait(api, second, again["name"])["status"] == "Completed"
    reused = steps(api, second, again["name"])["say"]
    assert reused["reused_from"] == steps(api, second, jobs[second])["say"]["name"]

    # A changed definition (a new version with another command) is not reused.
    changed = {**ECHO, "name": "say", "command": "echo other > ${{outputs.out}}/note.txt"}
    assert create(api, registry, changed).status_code == 201
    third = api.as_admin("POST", f"/api/v1/workspaces/{second}/jobs",
                         json=pipeline(uri(registry, "say"), "hello")).json()  # fmt: skip
    assert wait(api, second, third["name"])["status"] == "Completed"
    rerun = steps(api, second, third["name"])["say"]
    assert rerun["reused_from"] is None
    assert "component" in rerun["reuse"]["differs"]


def test_the_caller_needs_read_at_the_registry(api: Api) -> None:
    registry = api.registry()
    workspace = api.workspace()
    assert create(api, registry, {**ECHO, "version": "1"}).status_code == 201
    scientist = api.user_with("Data Scientist", workspace=workspace)
    path = f"/api/v1/workspaces/{workspace}/jobs"
    refused = api.call("POST", path, scientist.headers, json=pipeline(uri(registry, "echo", "1")))
    problem(refused, 404, "registry_not_found", "jobs.say.component")

    api.assign("Registry User", registry=registry, user=scientist.name)
    allowed = api.call("POST", path, scientist.headers, json=pipeline(uri(registry, "echo", "1")))
    assert allowed.status_code == 201, allowed.text
    api.as_admin("POST", f"{path}/{allowed.json()['name']}/cancel")

    # Reading a registry is not enough to publish in it.
    reader = api.user_with("Reader", registry=registry)
    problem(create(api, registry, ECHO, reader), 403, "forbidden", None)


def test_unknown_registry_name_or_version_is_a_404_naming_the_field(api: Api) -> None:
    registry = api.registry()
    workspace = api.workspace()
    assert create(api, registry, {**ECHO, "version": "1"}).status_code == 201
    path = f"/api/v1/workspaces/{workspace}/jobs"
    cases = {
        uri("no-such-registry", "echo", "1"): "registry_not_found",
        uri(registry, "nope", "1"): "component_not_found",
        uri(registry, "echo", "9"): "component_version_not_found",
    }
    for ref, code in cases.items():
        problem(
            api.call("POST", path, api.admin, json=pipeline(ref)), 404, code, "jobs.say.component"
        )
    # Azure's reference forms only: a version or the latest label.
    bare = f"azureml://registries/{registry}/components/echo"
    problem(api.call("POST", path, api.admin, json=pipeline(bare)), 400, "invalid_reference",
            "jobs.say.component")  # fmt: skip


def test_a_registry_that_holds_components_is_not_deleted(api: Api) -> None:
    registry = api.registry()
    assert create(api, registry, ECHO).status_code == 201
    refused = api.call("DELETE", f"/api/v1/registries/{registry}", api.admin)
    detail = problem(refused, 409, "registry_not_empty", "registry")
    assert "echo" in detail
    assert api.call("DELETE", f"{components(registry)}/echo", api.admin).status_code == 204
    assert api.call("DELETE", f"/api/v1/registries/{registry}", api.admin).status_code == 204
