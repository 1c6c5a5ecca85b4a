"""Online endpoints and deployments over real HTTP: CRUD, validation, keys and tokens, access.

The scoring gateway does not exist yet; its check (``services.endpoint_keys``) is called on the
running server's own services, against the same store the HTTP calls wrote.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shipyard.api.deps import Services
from shipyard.sdk.client import Client
from shipyard.services.endpoint_keys import EndpointAuthenticator
from shipyard.store import endpoints as endpoint_store
from shipyard.store.base import utcnow
from shipyard.store.workspaces import get_workspace
from tests.conftest import RunningServer, start_server, unique

ENV = "azureml:shipyard-minimal@latest"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    thread = start_server(tmp_path_factory.mktemp("data"), module_database_url, jobs_enabled=False)
    with thread as running:
        yield running


@pytest.fixture(scope="module")
def services(server: RunningServer) -> Services:
    return server.services


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def sdk(server: RunningServer) -> Iterator[Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def setup(sdk: Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace with a custom model, an MLflow model and a scoring code folder."""
    ws = unique("ws")
    sdk.workspaces.create(ws)
    root = tmp_path_factory.mktemp("files")
    (root / "model").mkdir()
    (root / "model" / "weights.txt").write_text("1 2 3\n")
    (root / "mlflow").mkdir()
    (root / "mlflow" / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
    )
    (root / "src").mkdir()
    (root / "src" / "score.py").write_text(
        "def init():\n    pass\n\n\ndef run(raw_data):\n    return raw_data\n"
    )
    handle = sdk.workspace(ws)
    handle.models.create("churn", root / "model")
    handle.models.create("churn-mlflow", root / "mlflow", type="mlflow_model")
    return {"ws": ws, "root": root, "handle": handle}


def _endpoints(setup: dict[str, Any]) -> str:
    return f"/api/v1/workspaces/{setup['ws']}/onlineEndpoints"


def _endpoint(http: httpx.Client, setup: dict[str, Any], **fields: Any) -> str:
    name = unique("ep")
    response = http.post(_endpoints(setup), json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return name


def _deployment_spec(name: str, endpoint: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "endpoint_name": endpoint,
        "model": "azureml:churn:1",
        "code_configuration": {"code": "./src", "scoring_script": "score.py"},
        "environment": ENV,
        "instance_type": "Standard_DS3_v2",
        "instance_count": 1,
        **fields,
    }


def _deploy(setup: dict[str, Any], endpoint: str, name: str, **options: Any) -> Any:
    return setup["handle"].online_deployments.create(
        _deployment_spec(name, endpoint), base_dir=setup["root"], **options
    )


def _code_ref(setup: dict[str, Any], endpoint: str) -> str:
    """The snapshot reference of the scoring code folder (uploaded by the SDK)."""
    body = setup["handle"].online_deployments.prepare(
        _deployment_spec("x", endpoint), endpoint, base_dir=setup["root"]
    )
    return str(body["code_configuration"]["code"])


def _problem(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    return body


# -- endpoints -------------------------------------------------------------------------------------


def test_endpoint_crud(http: httpx.Client, setup: dict[str, Any], server: RunningServer) -> None:
    name = _endpoint(http, setup, description="churn scoring", tags={"team": "ml"})
    shown = http.get(f"{_endpoints(setup)}/{name}").json()
    assert shown["auth_mode"] == "key"
    assert shown["traffic"] == {}
    assert shown["mirror_traffic"] == {}
    assert shown["provisioning_state"] == "Succeeded"
    assert shown["scoring_uri"].endswith(
        f"/api/v1/workspaces/{setup['ws']}/onlineEndpoints/{name}/score"
    )
    assert shown["created_by"] == "admin"
    listed = http.get(_endpoints(setup)).json()["items"]
    assert name in [item["name"] for item in listed]
    changed = http.patch(f"{_endpoints(setup)}/{name}", json={"description": "v2", "tags": {}})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["description"], changed.json()["tags"]) == ("v2", {})
    again = http.post(_endpoints(setup), json={"name": name})
    _problem(again, 409, "name")
    assert http.delete(f"{_endpoints(setup)}/{name}").status_code == 204
    _problem(http.get(f"{_endpoints(setup)}/{name}"), 404, "endpoint_name")
    _problem(http.delete(f"{_endpoints(setup)}/{name}"), 404, "endpoint_name")


@pytest.mark.parametrize("name", ["ab", "1abc", "a_bc", "abc-", "a" * 33, "bad name", "ümlaut"])
def test_endpoint_names_follow_azure(http: httpx.Client, setup: dict[str, Any], name: str) -> None:
    body = _problem(http.post(_endpoints(setup), json={"name": name}), 400, "name")
    assert body["code"] == "invalid_name"


def test_endpoint_body_errors_name_the_field(http: httpx.Client, setup: dict[str, Any]) -> None:
    bad_mode = http.post(_endpoints(setup), json={"name": unique("ep"), "auth_mode": "aad_token"})
    _problem(bad_mode, 400, "auth_mode")
    # No deployment exists at create: a split can only name none.
    early = http.post(_endpoints(setup), json={"name": unique("ep"), "traffic": {"blue": 100}})
    _problem(early, 400, "traffic.blue")


def test_traffic_rules(http: httpx.Client, setup: dict[str, Any]) -> None:
    endpoint = _endpoint(http, setup)
    _deploy(setup, endpoint, "blue")
    _deploy(setup, endpoint, "green")
    path = f"{_endpoints(setup)}/{endpoint}"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"traffic": {"blue": 90, "green": 20}}, "traffic"),
        ({"traffic": {"blue": 100, "red": 0}}, "traffic.red"),
        ({"traffic": {"blue": 50.5, "green": 49.5}}, "traffic.blue"),
        ({"traffic": {"blue": -10, "green": 110}}, "traffic.blue"),
        ({"traffic": {"blue": "all"}}, "traffic.blue"),
        ({"traffic": {"blue": 100}, "mirror_traffic": {"green": 60}}, "mirror_traffic.green"),
        ({"traffic": {"blue": 100}, "mirror_traffic": {"blue": 10}}, "mirror_traffic.blue"),
        ({"traffic": {"blue": 100}, "mirror_traffic": {"red": 10}}, "mirror_traffic.red"),
        ({"traffic": {"blue": 90, "green": 10}, "mirror_traffic": {"green": 10}},
         "mirror_traffic.green"),
    ]  # fmt: skip
    for body, field in cases:
        _problem(http.patch(path, json=body), 400, field)
    two = {"traffic": {"blue": 50, "green": 50}, "mirror_traffic": {"blue": 5, "green": 5}}
    _problem(http.patch(path, json=two), 400, "mirror_traffic")
    assert http.get(path).json()["traffic"] == {}  # nothing refused was kept

    split = http.patch(path, json={"traffic": {"blue": 90, "green": 10}})
    assert split.status_code == 200, split.text
    assert split.json()["traffic"] == {"blue": 90, "green": 10}
    mirrored = http.patch(path, json={"traffic": {"blue": 100, "green": 0},
                                      "mirror_traffic": {"green": 10}})  # fmt: skip
    assert mirrored.status_code == 200, mirrored.text
    assert mirrored.json()["mirror_traffic"] == {"green": 10}
    # The mirror stays when only the live split changes, and is checked against it.
    _problem(http.patch(path, json={"traffic": {"green": 100}}), 400, "mirror_traffic.green")
    off = http.patch(path, json={"traffic": {"green": 0}, "mirror_traffic": {}})
    assert off.json()["traffic"] == {"green": 0}
    assert off.json()["mirror_traffic"] == {}
    none = http.patch(path, json={"traffic": {}})
    assert none.json()["traffic"] == {}


# -- deployments -----------------------------------------------------------------------------------


def test_deployment_crud_and_all_traffic(
    http: httpx.Client, setup: dict[str, Any], services: Services, server: RunningServer
) -> None:
    endpoint = _endpoint(http, setup)
    blue = _deploy(setup, endpoint, "blue", all_traffic=True)
    assert blue.provisioning_state == "Creating"
    assert blue.model == "azureml:churn:1"
    assert blue.model_type == "custom_model"
    assert blue.environment is not None
    assert blue.environment.startswith("azureml:shipyard-minimal:")
    assert blue.code_configuration is not None
    assert blue.code_configuration["code"].startswith("sha256:")
    assert blue.request_settings == {
        "request_timeout_ms": 5000, "max_concurrent_requests_per_instance": 1,
        "max_queue_wait_ms": None,
    }  # fmt: skip
    assert blue.liveness_probe["failure_threshold"] == 30
    path = f"{_endpoints(setup)}/{endpoint}"
    assert http.get(path).json()["traffic"] == {"blue": 100}
    green = _deploy(setup, endpoint, "green", all_traffic=True)
    assert http.get(path).json()["traffic"] == {"blue": 0, "green": 100}
    listed = http.get(f"{path}/deployments").json()["items"]
    assert [d["name"] for d in listed] == ["blue", "green"]

    # Scaling changes the spec: a new generation for the runtime to roll out.
    scaled = http.patch(f"{path}/deployments/green", json={"instance_count": 3})
    assert scaled.status_code == 200, scaled.text
    assert (scaled.json()["instance_count"], scaled.json()["generation"]) == (
        3,
        green.generation + 1,
    )
    assert scaled.json()["provisioning_state"] == "Updating"
    assert scaled.json()["model"] == "azureml:churn:1"  # the rest of the spec stays
    same = http.patch(f"{path}/deployments/green", json={"tags": {"a": "b"}})
    assert same.json()["generation"] == green.generation + 1  # tags are not the spec

    refused = _problem(http.delete(f"{path}/deployments/green"), 409, "traffic")
    assert refused["code"] == "deployment_takes_traffic"
    assert http.delete(f"{path}/deployments/blue").status_code == 204
    assert http.get(path).json()["traffic"] == {"green": 100}
    _problem(http.get(f"{path}/deployments/blue"), 404, "name")
    _problem(
        http.post(f"{path}/deployments", json=_deployment_spec("green", endpoint)), 409, "name"
    )
    # Deleting the endpoint takes its deployments.
    assert http.delete(path).status_code == 204
    _problem(http.get(f"{path}/deployments/green"), 404, "endpoint_name")


def test_mlflow_model_needs_no_code(http: httpx.Client, setup: dict[str, Any]) -> None:
    endpoint = _endpoint(http, setup)
    body = {"name": "mlflow", "model": "azureml:churn-mlflow@latest", "instance_count": 2}
    made = http.post(f"{_endpoints(setup)}/{endpoint}/deployments", json=body)
    assert made.status_code == 201, made.text
    found = made.json()
    assert found["model"] == "azureml:churn-mlflow:1"
    assert found["model_type"] == "mlflow_model"
    assert (found["code_configuration"], found["environment"]) == (None, None)
    assert found["instance_count"] == 2


def test_deployment_validation(http: httpx.Client, setup: dict[str, Any]) -> None:
    endpoint = _endpoint(http, setup)
    base = f"{_endpoints(setup)}/{endpoint}/deployments"
    code = _code_ref(setup, endpoint)

    def spec(**fields: Any) -> dict[str, Any]:
        made = _deployment_spec("blue", endpoint)
        made["code_configuration"] = {"code": code, "scoring_script": "score.py"}
        made.update(fields)
        return {k: v for k, v in made.items() if v is not None}

    cases: list[tuple[dict[str, Any], int, str]] = [
        (spec(instance_count=0), 400, "instance_count"),
        (spec(name="b"), 400, "name"),
        (spec(endpoint_name="other-endpoint"), 400, "endpoint_name"),
        (spec(model="azureml:nope:1"), 404, "model"),
        (spec(model="azureml:churn:7"), 404, "model"),
        (spec(model="churn:1"), 400, "model"),
        (spec(model="azureml:churn@champion"), 400, "model"),
        (spec(environment="azureml:no-such-env:1"), 404, "environment"),
        (spec(code_configuration=None), 400, "code_configuration"),
        (spec(environment=None), 400, "environment"),
        (spec(code_configuration={"code": code, "scoring_script": "missing.py"}), 400,
         "code_configuration.scoring_script"),
        (spec(code_configuration={"code": code, "scoring_script": "../score.py"}), 400,
         "code_configuration.scoring_script"),
        (spec(code_configuration={"code": "sha256:" + "0" * 64, "scoring_script": "s.py"}), 404,
         "code_configuration.code"),
        (spec(code_configuration={"code": "./src", "scoring_script": "score.py"}), 400,
         "code_configuration.code"),
        (spec(request_settings={"request_timeout_ms": 180_001}), 400,
         "request_settings.request_timeout_ms"),
        (spec(liveness_probe={"period": 0}), 400, "liveness_probe.period"),
        (spec(environment_variables={"K": "${{secrets.nope}}"}), 400, "environment_variables.K"),
        (spec(model={"path": "./model", "type": "custom_model"}), 400, "model.path"),
        (spec(unknown_field=1), 400, "unknown_field"),
    ]  # fmt: skip
    for body, status, field in cases:
        _problem(http.post(base, json=body), status, field)
    assert http.get(base).json()["items"] == []
    body = spec(endpoint_name=None)
    missing = http.post(f"{_endpoints(setup)}/no-such-endpoint/deployments", json=body)
    _problem(missing, 404, "endpoint_name")


def test_runtime_state_and_logs(
    http: httpx.Client, setup: dict[str, Any], services: Services, server: RunningServer
) -> None:
    endpoint = _endpoint(http, setup)
    made = _deploy(setup, endpoint, "blue")
    with server.db.read() as session:
        ws = get_workspace(session, setup["ws"])
        assert ws is not None
        parent = endpoint_store.get_endpoint(session, ws.id, endpoint)
        assert parent is not None
        row = endpoint_store.get_deployment(session, parent.id, "blue")
        assert row is not None
        deployment_id = row.id
    path = f"{_endpoints(setup)}/{endpoint}/deployments/blue"
    assert http.get(f"{path}/logs").json() == {"text": "", "lines": 0}
    instances = [{"id": 0, "state": "Failed", "restarts": 2}]
    reported = services.online_deployments.report_state(
        deployment_id,
        provisioning_state="Failed",
        instances=instances,
        error="Traceback (most recent call last):\nValueError: no model\n",
        generation=made.generation,
    )
    assert reported
    stale = services.online_deployments.report_state(
        deployment_id, provisioning_state="Succeeded", generation=made.generation + 1
    )
    assert not stale  # about a spec that is not the deployment's
    shown = http.get(path).json()
    assert (shown["provisioning_state"], shown["instances"]) == ("Failed", instances)
    assert "ValueError: no model" in shown["error"]
    # No instance wrote a log: the error is the log.
    assert http.get(f"{path}/logs").json()["text"].endswith("ValueError: no model\n")
    folder = server.settings.data_dir / "deployments" / deployment_id
    folder.mkdir(parents=True)
    (folder / "instance-0.log").write_text("".join(f"line {i}\n" for i in range(300)))
    assert http.get(f"{path}/logs", params={"lines": 2}).json() == {
        "text": "line 298\nline 299\n", "lines": 2,
    }  # fmt: skip
    assert http.get(f"{path}/logs").json()["lines"] == 100
    _problem(http.get(f"{path}/logs", params={"lines": 0}), 400, "lines")


# -- credentials -----------------------------------------------------------------------------------


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_keys_regenerate_and_authenticate(
    http: httpx.Client, setup: dict[str, Any], services: Services
) -> None:
    endpoint = _endpoint(http, setup)
    path = f"{_endpoints(setup)}/{endpoint}"
    listed = http.post(f"{path}/listKeys")
    assert listed.status_code == 200, listed.text
    assert listed.headers["cache-control"] == "no-store"
    keys = listed.json()
    primary, secondary = keys["primary_key"], keys["secondary_key"]
    assert primary != secondary
    assert primary.startswith("shk_")
    assert len(primary) > 40
    check = services.endpoint_auth.authenticate
    ws = setup["ws"]
    assert check(ws, endpoint, primary).credential == "primary"  # type: ignore[union-attr]
    assert check(ws, endpoint, secondary).credential == "secondary"  # type: ignore[union-attr]
    assert check(ws, endpoint, "shk_wrong") is None
    assert check(ws, endpoint, "") is None
    other = _endpoint(http, setup)
    assert check(ws, other, primary) is None  # a key of endpoint A on endpoint B

    regenerated = http.post(f"{path}/regenerateKeys", json={"keyType": "Primary"})
    assert regenerated.status_code == 204, regenerated.text
    after = http.post(f"{path}/listKeys").json()
    assert after["primary_key"] != primary
    assert after["secondary_key"] == secondary
    assert check(ws, endpoint, primary) is None  # revoked at once
    assert check(ws, endpoint, after["primary_key"]) is not None
    assert check(ws, endpoint, secondary) is not None
    http.post(f"{path}/regenerateKeys", json={"key_type": "secondary"})
    assert check(ws, endpoint, secondary) is None

    _problem(http.post(f"{path}/regenerateKeys", json={"keyType": "tertiary"}), 400, "key_type")
    _problem(http.post(f"{_endpoints(setup)}/nope-ep/listKeys"), 404, "name")
    # No response shows a key's hash.
    hashes = {_digest(k) for k in (primary, secondary, after["primary_key"])}
    bodies = [
        http.get(path).text,
        http.get(_endpoints(setup)).text,
        http.post(f"{path}/listKeys").text,
        http.get(f"/api/v1/workspaces/{ws}/secrets").text,
    ]
    assert not any(h in body for h in hashes for body in bodies)
    # Tokens belong to aml_token endpoints.
    _problem(http.post(f"{path}/token"), 400, "auth_mode")


def test_aml_token_mode(
    http: httpx.Client, setup: dict[str, Any], services: Services, server: RunningServer
) -> None:
    endpoint = _endpoint(http, setup, auth_mode="aml_token")
    path = f"{_endpoints(setup)}/{endpoint}"
    _problem(http.post(f"{path}/listKeys"), 400, "auth_mode")
    _problem(http.post(f"{path}/regenerateKeys", json={"keyType": "primary"}), 400, "auth_mode")
    before = int(utcnow().timestamp())
    issued = http.post(f"{path}/token")
    assert issued.status_code == 200, issued.text
    token = issued.json()
    assert token["token_type"] == "Bearer"
    assert token["access_token"].startswith("sht_")
    assert before + 3600 - 5 <= token["expiry_time_utc"] <= before + 3600 + 5
    assert before < token["refresh_after_time_utc"] < token["expiry_time_utc"]
    ws, raw = setup["ws"], token["access_token"]
    caller = services.endpoint_auth.authenticate(ws, endpoint, raw)
    assert caller is not None
    assert caller.credential == "aml_token"
    other = _endpoint(http, setup, auth_mode="aml_token")
    assert services.endpoint_auth.authenticate(ws, other, raw) is None
    # An hour later the same token is refused (a checker whose clock is ahead).
    later = EndpointAuthenticator(server.db, clock=lambda: utcnow() + timedelta(hours=1, seconds=5))
    assert later.authenticate(ws, endpoint, raw) is None
    assert EndpointAuthenticator(server.db).authenticate(ws, endpoint, raw) is not None

    # Switching to keys ends every token and makes the keys.
    switched = http.patch(path, json={"auth_mode": "key"})
    assert switched.status_code == 200, switched.text
    assert services.endpoint_auth.authenticate(ws, endpoint, raw) is None
    keys = http.post(f"{path}/listKeys").json()
    assert services.endpoint_auth.authenticate(ws, endpoint, keys["primary_key"]) is not None
    back = http.patch(path, json={"auth_mode": "aml_token"})
    assert back.status_code == 200
    assert services.endpoint_auth.authenticate(ws, endpoint, keys["primary_key"]) is None


def test_a_reader_cannot_list_keys(
    http: httpx.Client, setup: dict[str, Any], server: RunningServer
) -> None:
    endpoint = _endpoint(http, setup)
    reader = unique("reader")
    http.post("/api/v1/users", json={"name": reader}).raise_for_status()
    token = http.post("/api/v1/tokens", json={"name": "t", "user": reader}).json()["token"]
    assignment = {"role": "Reader", "user": reader}
    http.post(f"/api/v1/workspaces/{setup['ws']}/role-assignments", json=assignment)
    as_reader = {"Authorization": f"Bearer {token}"}
    path = f"{_endpoints(setup)}/{endpoint}"
    with httpx.Client(base_url=server.url, headers=as_reader) as client:
        assert client.get(path).status_code == 200
        assert client.get(f"{path}/deployments").status_code == 200
        for call in ("listKeys", "token"):
            assert client.post(f"{path}/{call}").status_code == 403
        regen = client.post(f"{path}/regenerateKeys", json={"keyType": "primary"})
        assert regen.status_code == 403
        assert client.patch(path, json={"description": "x"}).status_code == 403
        assert client.delete(path).status_code == 403


def test_a_deployed_model_version_is_not_deleted(http: httpx.Client, setup: dict[str, Any]) -> None:
    handle, ws = setup["handle"], setup["ws"]
    endpoint = _endpoint(http, setup)
    handle.models.create("served", setup["root"] / "model")
    spec = _deployment_spec("blue", endpoint, model="azureml:served:1")
    handle.online_deployments.create(spec, base_dir=setup["root"])

    version = http.delete(f"/api/v1/workspaces/{ws}/models/served/versions/1")
    assert _problem(version, 409, "version")["code"] == "model_version_in_use"
    assert f"{endpoint}/blue" in version.json()["detail"]
    whole = http.delete(f"/api/v1/workspaces/{ws}/models/served")
    assert _problem(whole, 409, "name")["code"] == "model_in_use"

    handle.online_deployments.delete("blue", endpoint)
    assert http.delete(f"/api/v1/workspaces/{ws}/models/served/versions/1").status_code == 204
