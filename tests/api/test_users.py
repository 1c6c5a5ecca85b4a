"""Users, and this issue's simple policy: admins do everything, users own what they create."""

from __future__ import annotations

import httpx

from tests.conftest import RunningServer, unique


def _user_with_token(server: RunningServer) -> tuple[str, dict[str, str]]:
    name = unique("user")
    httpx.post(f"{server.url}/api/v1/users", json={"name": name}, headers=server.auth)
    token = httpx.post(
        f"{server.url}/api/v1/tokens", json={"name": "t", "user": name}, headers=server.auth
    ).json()["token"]
    return name, {"Authorization": f"Bearer {token}"}


def test_admin_creates_lists_and_shows_users(server: RunningServer) -> None:
    name = unique("user")
    body = {"name": name, "display_name": "Alice", "email": "alice@example.com"}
    created = httpx.post(f"{server.url}/api/v1/users", json=body, headers=server.auth)
    assert created.status_code == 201
    assert created.json()["is_admin"] is False
    shown = httpx.get(f"{server.url}/api/v1/users/{name}", headers=server.auth).json()
    assert shown["email"] == "alice@example.com"
    names = [
        u["name"]
        for u in httpx.get(f"{server.url}/api/v1/users", headers=server.auth).json()["items"]
    ]
    assert {"admin", name} <= set(names)
    again = httpx.post(f"{server.url}/api/v1/users", json=body, headers=server.auth)
    assert (again.status_code, again.json()["code"]) == (409, "user_exists")
    bad = httpx.post(f"{server.url}/api/v1/users", json={"name": "Bad Name"}, headers=server.auth)
    assert (bad.status_code, bad.json()["field"]) == (400, "name")
    missing = httpx.get(f"{server.url}/api/v1/users/nobody-here", headers=server.auth)
    assert (missing.status_code, missing.json()["code"]) == (404, "user_not_found")


def test_users_cannot_manage_users(server: RunningServer) -> None:
    _, auth = _user_with_token(server)
    assert httpx.get(f"{server.url}/api/v1/users", headers=auth).status_code == 403
    response = httpx.post(f"{server.url}/api/v1/users", json={"name": unique("u")}, headers=auth)
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")
    assert (
        httpx.patch(
            f"{server.url}/api/v1/users/admin", json={"disabled": True}, headers=auth
        ).status_code
        == 403
    )


def test_users_own_the_workspaces_they_create(server: RunningServer) -> None:
    alice, alice_auth = _user_with_token(server)
    _, bob_auth = _user_with_token(server)
    name = unique()
    url = f"{server.url}/api/v1/workspaces"
    created = httpx.post(url, json={"name": name}, headers=alice_auth)
    assert created.status_code == 201
    assert created.json()["created_by"] == alice
    assert (
        httpx.patch(f"{url}/{name}", json={"description": "x"}, headers=alice_auth).status_code
        == 200
    )

    for method in ("GET", "PATCH", "DELETE"):
        response = httpx.request(method, f"{url}/{name}", json={}, headers=bob_auth)
        # Another's workspace is hidden: 404, as if it did not exist.
        assert (response.status_code, response.json()["code"]) == (404, "workspace_not_found")
    bob_sees = [w["name"] for w in httpx.get(url, headers=bob_auth).json()["items"]]
    assert name not in bob_sees
    alice_sees = [w["name"] for w in httpx.get(url, headers=alice_auth).json()["items"]]
    assert alice_sees == [name]
    admin_sees = [w["name"] for w in httpx.get(url, headers=server.auth).json()["items"]]
    assert name in admin_sees
    assert httpx.get(f"{url}/{name}", headers=server.auth).status_code == 200
    assert httpx.delete(f"{url}/{name}", headers=alice_auth).status_code == 204
    assert httpx.post(f"{url}/{name}/recover", headers=bob_auth).status_code == 404
    assert httpx.post(f"{url}/{name}/recover", headers=alice_auth).status_code == 200


def test_the_last_enabled_admin_cannot_be_disabled(server: RunningServer) -> None:
    url = f"{server.url}/api/v1/users"
    response = httpx.patch(f"{url}/admin", json={"disabled": True}, headers=server.auth)
    assert (response.status_code, response.json()["code"]) == (409, "last_admin")
    assert httpx.get(f"{url}/me", headers=server.auth).status_code == 200
    second = unique("admin")
    httpx.post(url, json={"name": second, "is_admin": True}, headers=server.auth)
    response = httpx.patch(f"{url}/{second}", json={"disabled": True}, headers=server.auth)
    assert response.status_code == 200, "another enabled admin remains"
