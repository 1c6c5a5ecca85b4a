"""/api/v1/workspaces over real HTTP: the behaviour and every client mistake."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, start_server, unique


def _create(
    server: RunningServer, body: dict[str, Any], token: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or server.admin_token}"}
    return httpx.post(f"{server.url}/api/v1/workspaces", json=body, headers=headers)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["detail"]
    return body


def test_create_shows_associated_resources(server: RunningServer) -> None:
    name = unique()
    response = _create(
        server,
        {"name": name, "display_name": "Churn", "description": "d", "tags": {"team": "nlp"}},
    )
    assert response.status_code == 201, response.text
    ws = response.json()
    assert (ws["name"], ws["display_name"], ws["description"]) == (name, "Churn", "d")
    assert ws["tags"] == {"team": "nlp"}
    assert ws["created_by"] == "admin"
    assert ws["storage"]["managed"] is True
    assert ws["storage"]["default_datastore"] == "workspaceblobstore"
    assert ws["storage"]["prefix"] == f"workspaces/{ws['id']}"
    folder = Path(ws["storage"]["uri"]) / ws["storage"]["prefix"]
    assert folder.is_dir()
    assert ws["key_vault"]["id"]
    assert ws["environment_registry"] == {"name": "default", "shared": True}
    assert ws["monitoring"] == {"type": "builtin"}
    assert "mlflow_tracking_uri" in ws
    shown = httpx.get(f"{server.url}/api/v1/workspaces/{name}", headers=server.auth).json()
    assert shown == ws


def test_each_workspace_gets_its_own_key_vault_and_a_dedicated_registry_on_request(
    server: RunningServer,
) -> None:
    first = _create(server, {"name": unique()}).json()
    second = _create(server, {"name": unique(), "environment_registry": "dedicated"}).json()
    assert first["key_vault"]["id"] != second["key_vault"]["id"]
    assert second["environment_registry"]["shared"] is False
    assert second["environment_registry"]["name"] != "default"


@pytest.mark.parametrize(
    "name", ["A-upper", "-leading-dash", "x", "has_underscore", "a" * 64, "space name", ""]
)
def test_invalid_names_are_400_naming_the_field(server: RunningServer, name: str) -> None:
    body = _problem(_create(server, {"name": name}), 400, "invalid_field")
    assert body["field"] == "name"


def test_duplicate_name_is_409(server: RunningServer) -> None:
    name = unique()
    assert _create(server, {"name": name}).status_code == 201
    body = _problem(_create(server, {"name": name}), 409, "workspace_exists")
    assert body["field"] == "name"


def test_unknown_fields_are_400_naming_the_field(server: RunningServer) -> None:
    body = _problem(_create(server, {"name": unique(), "colour": "red"}), 400, "unknown_field")
    assert body["field"] == "colour"
    body = _problem(
        _create(server, {"name": unique(), "storage": {"uri": "/x", "kind": 1}}),
        400,
        "unknown_field",
    )
    assert body["field"] == "storage.kind"


def test_missing_and_mistyped_fields_are_400(server: RunningServer) -> None:
    assert _problem(_create(server, {}), 400, "missing_field")["field"] == "name"
    body = _problem(_create(server, {"name": unique(), "tags": ["a"]}), 400, "invalid_field")
    assert body["field"] == "tags"
    _problem(_create(server, ["not", "an", "object"]), 400, "invalid_body")  # type: ignore[arg-type]


def test_malformed_json_is_400_saying_where(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/workspaces",
        content=b'{"name": "abc",\n "tags": }',
        headers={**server.auth, "content-type": "application/json"},
    )
    body = _problem(response, 400, "malformed_json")
    assert "character" in body["detail"]


def test_oversize_bodies_are_413(server: RunningServer) -> None:
    limit = server.settings.max_request_body_bytes
    big = {"name": unique(), "description": "x" * (limit + 10)}
    _problem(_create(server, big), 413, "payload_too_large")

    def chunks() -> Any:  # no Content-Length: the limit holds for streamed bodies too
        yield b'{"name": "chunked", "description": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = httpx.post(
        f"{server.url}/api/v1/workspaces",
        content=chunks(),
        headers={**server.auth, "content-type": "application/json"},
    )
    _problem(response, 413, "payload_too_large")
    assert (
        httpx.get(f"{server.url}/api/v1/workspaces/chunked", headers=server.auth).status_code == 404
    )


def test_unknown_workspace_is_404(server: RunningServer) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = httpx.request(
            method, f"{server.url}/api/v1/workspaces/no-such-ws", headers=server.auth, json={}
        )
        assert _problem(response, 404, "workspace_not_found")["field"] == "workspace"


def test_update_changes_only_what_is_sent(server: RunningServer) -> None:
    name = unique()
    _create(server, {"name": name, "display_name": "A", "description": "B", "tags": {"k": "v"}})
    url = f"{server.url}/api/v1/workspaces/{name}"
    updated = httpx.patch(url, json={"description": "new"}, headers=server.auth).json()
    assert (updated["display_name"], updated["description"], updated["tags"]) == (
        "A",
        "new",
        {"k": "v"},
    )
    assert updated["updated_at"] > updated["created_at"]
    cleared = httpx.patch(url, json={"display_name": None, "tags": None}, headers=server.auth)
    assert (cleared.json()["display_name"], cleared.json()["tags"]) == (None, {})
    body = _problem(
        httpx.patch(url, json={"name": "other"}, headers=server.auth), 400, "unknown_field"
    )
    assert body["field"] == "name"


def test_list_pages_with_a_continuation_token(server: RunningServer) -> None:
    prefix = unique("page")
    names = sorted(f"{prefix}-{i}" for i in range(5))
    for name in names:
        assert _create(server, {"name": name}).status_code == 201
    seen: list[str] = []
    params: dict[str, Any] = {"max_results": 2}
    pages = 0
    while True:
        page = httpx.get(f"{server.url}/api/v1/workspaces", params=params, headers=server.auth)
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [w["name"] for w in body["items"]]
        pages += 1
        if not body["next_page_token"]:
            break
        params["page_token"] = body["next_page_token"]
    assert [n for n in seen if n.startswith(prefix)] == names
    assert seen == sorted(seen)
    assert pages >= 3


def test_bad_paging_parameters_are_400(server: RunningServer) -> None:
    url = f"{server.url}/api/v1/workspaces"
    response = httpx.get(url, params={"page_token": "!!not-a-token"}, headers=server.auth)
    assert _problem(response, 400, "invalid_page_token")["field"] == "page_token"
    response = httpx.get(url, params={"max_results": 100000}, headers=server.auth)
    assert _problem(response, 400, "page_too_large")["field"] == "max_results"
    response = httpx.get(url, params={"max_results": 0}, headers=server.auth)
    assert _problem(response, 400, "invalid_field")["field"] == "max_results"


def test_soft_delete_then_recover(server: RunningServer) -> None:
    name = unique()
    ws = _create(server, {"name": name}).json()
    url = f"{server.url}/api/v1/workspaces/{name}"
    assert httpx.delete(url, headers=server.auth).status_code == 204
    _problem(httpx.get(url, headers=server.auth), 404, "workspace_deleted")
    live = httpx.get(f"{server.url}/api/v1/workspaces", headers=server.auth).json()["items"]
    assert name not in [w["name"] for w in live]
    deleted = httpx.get(
        f"{server.url}/api/v1/workspaces", params={"deleted": True}, headers=server.auth
    ).json()["items"]
    assert name in [w["name"] for w in deleted]
    assert _create(server, {"name": name}).json()["code"] == "workspace_deleted"
    _problem(httpx.delete(url, headers=server.auth), 404, "workspace_deleted")
    recovered = httpx.post(f"{url}/recover", headers=server.auth)
    assert recovered.status_code == 200
    assert recovered.json()["id"] == ws["id"]
    assert recovered.json()["deleted_at"] is None
    _problem(httpx.post(f"{url}/recover", headers=server.auth), 409, "workspace_not_deleted")
    folder = Path(ws["storage"]["uri"]) / ws["storage"]["prefix"]
    assert folder.is_dir(), "a soft delete keeps the files"


def test_permanent_delete_removes_metadata_and_files(server: RunningServer) -> None:
    name = unique()
    ws = _create(server, {"name": name}).json()
    folder = Path(ws["storage"]["uri"]) / ws["storage"]["prefix"]
    (folder / "model.bin").write_bytes(b"weights")
    url = f"{server.url}/api/v1/workspaces/{name}"
    response = httpx.delete(url, params={"permanently_delete": True}, headers=server.auth)
    assert response.status_code == 204
    assert not folder.exists()
    assert folder.parent.is_dir(), "only the workspace's own prefix goes"
    _problem(httpx.get(url, headers=server.auth), 404, "workspace_not_found")
    assert _create(server, {"name": name}).status_code == 201, "the name is free again"


def test_permanent_delete_of_a_soft_deleted_workspace(server: RunningServer) -> None:
    name = unique()
    _create(server, {"name": name})
    url = f"{server.url}/api/v1/workspaces/{name}"
    httpx.delete(url, headers=server.auth)
    response = httpx.delete(url, params={"permanently_delete": True}, headers=server.auth)
    assert response.status_code == 204
    _problem(httpx.post(f"{url}/recover", headers=server.auth), 404, "workspace_not_found")


def test_bring_your_own_storage_shared_by_two_workspaces(tmp_path: Path, database_url: str) -> None:
    shared = tmp_path / "team-bucket"
    shared.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with start_server(tmp_path / "data", database_url, storage_roots=[str(shared)]) as server:
        a = _create(server, {"name": "ws-a", "storage": {"uri": shared.as_uri()}}).json()
        b = _create(server, {"name": "ws-b", "storage": {"uri": str(shared)}}).json()
        assert a["storage"]["uri"] == b["storage"]["uri"] == str(shared)
        assert a["storage"]["managed"] is False
        assert a["storage"]["prefix"] != b["storage"]["prefix"]
        assert (shared / a["storage"]["prefix"]).is_dir()
        assert (shared / b["storage"]["prefix"]).is_dir()

        body = _problem(
            _create(server, {"name": "ws-c", "storage": {"uri": str(outside)}}),
            400,
            "storage_not_allowed",
        )
        assert body["field"] == "storage.uri"
        _problem(
            _create(server, {"name": "ws-c", "storage": {"uri": str(shared / "missing")}}),
            400,
            "storage_not_found",
        )
        _problem(
            _create(server, {"name": "ws-c", "storage": {"uri": f"{shared}/../elsewhere"}}),
            400,
            "storage_not_allowed",
        )
        _problem(
            _create(server, {"name": "ws-c", "storage": {"uri": "gs://bucket/x"}}),
            400,
            "unsupported_storage",
        )
        nested = shared / a["storage"]["prefix"] / "inner"
        nested.mkdir()
        body = _problem(
            _create(server, {"name": "ws-c", "storage": {"uri": str(nested)}}),
            400,
            "storage_not_allowed",
        )
        assert "another workspace" in body["detail"]
        httpx.delete(
            f"{server.url}/api/v1/workspaces/ws-a",
            params={"permanently_delete": True},
            headers=server.auth,
        )
        assert not (shared / a["storage"]["prefix"]).exists()
        assert (shared / b["storage"]["prefix"]).is_dir(), "the other workspace keeps its files"


def test_expired_soft_deletes_are_purged(tmp_path: Path, database_url: str) -> None:
    settings = {"workspace_retention_days": 0, "purge_interval_seconds": 0.2}
    with start_server(tmp_path / "data", database_url, **settings) as server:
        ws = _create(server, {"name": "short-lived"}).json()
        folder = Path(ws["storage"]["uri"]) / ws["storage"]["prefix"]
        url = f"{server.url}/api/v1/workspaces/short-lived"
        assert httpx.delete(url, headers=server.auth).status_code == 204
        deadline = time.monotonic() + 15
        while folder.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not folder.exists()
        _problem(httpx.post(f"{url}/recover", headers=server.auth), 404, "workspace_not_found")


def test_recover_after_retention_is_410(tmp_path: Path, database_url: str) -> None:
    # A purge interval far away: the workspace is expired but not yet purged.
    settings = {"workspace_retention_days": 0, "purge_interval_seconds": 3600}
    with start_server(tmp_path / "data", database_url, **settings) as server:
        _create(server, {"name": "too-late"})
        url = f"{server.url}/api/v1/workspaces/too-late"
        httpx.delete(url, headers=server.auth)
        _problem(httpx.post(f"{url}/recover", headers=server.auth), 410, "retention_expired")


def test_the_managed_area_cannot_be_brought_as_storage(tmp_path: Path, database_url: str) -> None:
    """Even when an allowed root contains it, the artifact root is the server's own."""
    with start_server(tmp_path / "data", database_url, storage_roots=[str(tmp_path)]) as server:
        victim = _create(server, {"name": "victim"}).json()
        victim_folder = Path(victim["storage"]["uri"]) / victim["storage"]["prefix"]
        for uri in (str(victim_folder), victim["storage"]["uri"]):
            body = _problem(
                _create(server, {"name": "intruder", "storage": {"uri": uri}}),
                400,
                "storage_not_allowed",
            )
            assert body["field"] == "storage.uri"


def test_each_workspace_shows_its_mlflow_tracking_uri(server: RunningServer) -> None:
    name = unique()
    created = _create(server, {"name": name}).json()
    assert created["mlflow_tracking_uri"] == f"{server.url}/mlflow/workspaces/{name}"
    shown = httpx.get(f"{server.url}/api/v1/workspaces/{name}", headers=server.auth).json()
    assert shown["mlflow_tracking_uri"] == created["mlflow_tracking_uri"]
    listed = httpx.get(f"{server.url}/api/v1/workspaces", headers=server.auth).json()["items"]
    assert {w["name"]: w["mlflow_tracking_uri"] for w in listed}[name] == shown[
        "mlflow_tracking_uri"
    ]


def test_a_public_url_setting_is_used_for_links(tmp_path: Path, database_url: str) -> None:
    public = "https://ml.example.com/shipyard"
    with start_server(tmp_path, database_url, public_url=public) as server:
        created = _create(server, {"name": "linked"}).json()
    assert created["mlflow_tracking_uri"] == f"{public}/mlflow/workspaces/linked"
