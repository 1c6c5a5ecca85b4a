"""Authentication: every way a token can be wrong is a 401; tokens are shown once."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from shipyard.store.base import utcnow
from shipyard.store.tokens import TokenRow
from tests.conftest import RunningServer, unique


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _new_user_token(server: RunningServer, **token_fields: object) -> tuple[str, dict[str, object]]:
    name = unique("user")
    created = httpx.post(f"{server.url}/api/v1/users", json={"name": name}, headers=server.auth)
    assert created.status_code == 201, created.text
    body = {"name": "t", "user": name, **token_fields}
    response = httpx.post(f"{server.url}/api/v1/tokens", json=body, headers=server.auth)
    assert response.status_code == 201, response.text
    return name, response.json()


def _me(server: RunningServer, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/v1/users/me", headers=_auth(token))


def _code(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    return str(response.json()["code"])


def test_missing_and_malformed_credentials(server: RunningServer) -> None:
    url = f"{server.url}/api/v1/users/me"
    assert _code(httpx.get(url)) == "missing_token"
    # Basic auth carries a token as its password (MLflow's client): admin:admin has none.
    assert _code(httpx.get(url, headers={"Authorization": "Basic YWRtaW46YWRtaW4="})) == (
        "invalid_token"
    )
    assert _code(httpx.get(url, headers={"Authorization": "Basic YWRtaW46"})) == "missing_token"
    assert _code(httpx.get(url, headers=_auth("shp_not-a-real-token"))) == "invalid_token"


def test_a_token_is_shown_once_then_listed_by_prefix(server: RunningServer) -> None:
    user, created = _new_user_token(server, expires_in_days=7)
    token = str(created["token"])
    assert token.startswith("shp_")
    assert len(token) > 40
    assert token.startswith(str(created["prefix"]))
    assert _me(server, token).json()["name"] == user
    listed = httpx.get(f"{server.url}/api/v1/tokens", headers=_auth(token)).json()["items"]
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]
    assert token not in httpx.get(f"{server.url}/api/v1/tokens", headers=_auth(token)).text
    lifetime = created["expires_at"]
    assert isinstance(lifetime, str)
    assert lifetime > str(created["created_at"])


def test_revoked_tokens_stop_working_at_once(server: RunningServer) -> None:
    _, created = _new_user_token(server)
    token = str(created["token"])
    assert _me(server, token).status_code == 200
    revoked = httpx.delete(f"{server.url}/api/v1/tokens/{created['id']}", headers=_auth(token))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert _code(_me(server, token)) == "revoked_token"


def test_expired_tokens_are_refused(server: RunningServer) -> None:
    _, created = _new_user_token(server)
    token = str(created["token"])
    with server.db.write() as session:
        session.execute(
            update(TokenRow)
            .where(TokenRow.id == created["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert _code(_me(server, token)) == "expired_token"


def test_disabling_a_user_revokes_access_at_once(server: RunningServer) -> None:
    user, created = _new_user_token(server)
    token = str(created["token"])
    assert _me(server, token).status_code == 200
    url = f"{server.url}/api/v1/users/{user}"
    assert httpx.patch(url, json={"disabled": True}, headers=server.auth).json()["disabled"]
    assert _code(_me(server, token)) == "disabled_user"
    assert httpx.patch(url, json={"disabled": False}, headers=server.auth).status_code == 200
    assert _me(server, token).status_code == 200


def test_token_lifetime_is_bounded(server: RunningServer) -> None:
    too_long = server.settings.token_max_ttl_days + 1
    response = httpx.post(
        f"{server.url}/api/v1/tokens",
        json={"name": "long", "expires_in_days": too_long},
        headers=server.auth,
    )
    assert response.status_code == 400
    assert response.json()["field"] == "expires_in_days"
    response = httpx.post(
        f"{server.url}/api/v1/tokens",
        json={"name": "neg", "expires_in_days": 0},
        headers=server.auth,
    )
    assert response.status_code == 400
    assert response.json()["field"] == "expires_in_days"


def test_users_manage_only_their_own_tokens(server: RunningServer) -> None:
    _, mine = _new_user_token(server)
    other_user, theirs = _new_user_token(server)
    my_token = str(mine["token"])
    url = f"{server.url}/api/v1/tokens"
    forbidden = httpx.get(url, params={"user": other_user}, headers=_auth(my_token))
    assert forbidden.status_code == 403
    create = httpx.post(url, json={"name": "x", "user": other_user}, headers=_auth(my_token))
    assert create.status_code == 403
    revoke = httpx.delete(f"{url}/{theirs['id']}", headers=_auth(my_token))
    assert revoke.status_code == 404, "another user's token id is not revealed"
    assert _me(server, str(theirs["token"])).status_code == 200
    as_admin = httpx.get(url, params={"user": other_user}, headers=server.auth).json()["items"]
    assert [t["id"] for t in as_admin] == [theirs["id"]]
