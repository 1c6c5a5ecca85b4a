"""Studio login: passwords, the session cookie, CSRF, rate limiting and lockout."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import RunningServer, start_server, unique

PASSWORD = "correct horse battery staple"


def _user_with_password(server: RunningServer, password: str = PASSWORD) -> str:
    name = unique("user")
    response = httpx.post(
        f"{server.url}/api/v1/users",
        json={"name": name, "password": password},
        headers=server.auth,
    )
    assert response.status_code == 201, response.text
    assert response.json()["has_password"] is True
    assert password not in response.text
    return name


def _login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/v1/sessions", json={"name": name, "password": password})


def test_login_sets_a_protected_cookie_and_needs_csrf_for_changes(server: RunningServer) -> None:
    name = _user_with_password(server)
    with httpx.Client(base_url=server.url) as browser:
        response = _login(browser, name)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["user"]["name"] == name
        cookie = response.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookie if c.startswith("shipyard_session="))
        assert "HttpOnly" in session_cookie
        assert "SameSite=strict" in session_cookie or "samesite=strict" in session_cookie.lower()
        assert "Secure" not in session_cookie, "plain HTTP on loopback: no Secure flag"

        assert browser.get("/api/v1/sessions/current").json()["name"] == name
        created = browser.post("/api/v1/workspaces", json={"name": unique()})
        assert (created.status_code, created.json()["code"]) == (401, "csrf_failed")
        forged = browser.post(
            "/api/v1/workspaces", json={"name": unique()}, headers={"X-CSRF-Token": "guess"}
        )
        assert forged.json()["code"] == "csrf_failed"
        ok = browser.post(
            "/api/v1/workspaces",
            json={"name": unique()},
            headers={"X-CSRF-Token": body["csrf_token"]},
        )
        assert ok.status_code == 201, ok.text

        logout = browser.delete(
            "/api/v1/sessions/current", headers={"X-CSRF-Token": body["csrf_token"]}
        )
        assert logout.status_code == 204
        stolen = httpx.get(
            f"{server.url}/api/v1/sessions/current",
            cookies={"shipyard_session": response.cookies["shipyard_session"]},
        )
        assert (stolen.status_code, stolen.json()["code"]) == (401, "session_expired")


def test_wrong_password_and_unknown_user_look_the_same(server: RunningServer) -> None:
    name = _user_with_password(server)
    with httpx.Client(base_url=server.url) as browser:
        wrong = _login(browser, name, "not the password at all")
        unknown = _login(browser, unique("nobody"), PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "login_failed"
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_short_passwords_are_refused(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/users",
        json={"name": unique("user"), "password": "short"},
        headers=server.auth,
    )
    assert (response.status_code, response.json()["field"]) == (400, "password")
    assert "short" not in response.text.replace("password_too_short", "")


def test_users_without_a_password_cannot_log_in(server: RunningServer) -> None:
    name = unique("user")
    httpx.post(f"{server.url}/api/v1/users", json={"name": name}, headers=server.auth)
    with httpx.Client(base_url=server.url) as browser:
        assert _login(browser, name, "").status_code == 400
        assert _login(browser, name, "anything at all here").json()["code"] == "login_failed"
        assert _login(browser, "admin", "anything at all here").json()["code"] == "login_failed"


def test_repeated_failures_lock_the_account(tmp_path: Path, database_url: str) -> None:
    settings = {"login_max_failures": 3, "login_lockout_minutes": 60}
    with start_server(tmp_path, database_url, **settings) as server:
        name = _user_with_password(server)
        with httpx.Client(base_url=server.url) as browser:
            for _ in range(3):
                assert _login(browser, name, "wrong password guess").json()["code"] == (
                    "login_failed"
                )
            locked = _login(browser, name)  # even the right password is refused now
            assert (locked.status_code, locked.json()["code"]) == (401, "account_locked")
        # An admin setting a new password unlocks the account.
        httpx.patch(
            f"{server.url}/api/v1/users/{name}",
            json={"password": "a brand new passphrase"},
            headers=server.auth,
        ).raise_for_status()
        with httpx.Client(base_url=server.url) as browser:
            assert _login(browser, name, "a brand new passphrase").status_code == 201


def test_login_attempts_are_rate_limited_per_address(tmp_path: Path, database_url: str) -> None:
    with start_server(tmp_path, database_url, login_rate_per_minute=4) as server:
        name = _user_with_password(server)
        with httpx.Client(base_url=server.url) as browser:
            codes = [_login(browser, unique("x"), "whatever it is").status_code for _ in range(4)]
            assert codes == [401] * 4
            limited = _login(browser, name)
        assert (limited.status_code, limited.json()["code"]) == (429, "too_many_attempts")


def test_a_disabled_users_session_stops_working(server: RunningServer) -> None:
    name = _user_with_password(server)
    with httpx.Client(base_url=server.url) as browser:
        assert _login(browser, name).status_code == 201
        assert browser.get("/api/v1/sessions/current").status_code == 200
        httpx.patch(
            f"{server.url}/api/v1/users/{name}", json={"disabled": True}, headers=server.auth
        ).raise_for_status()
        response = browser.get("/api/v1/sessions/current")
        assert (response.status_code, response.json()["code"]) == (401, "disabled_user")


def test_logins_are_audited_without_the_password(server: RunningServer) -> None:
    name = _user_with_password(server)
    with httpx.Client(base_url=server.url) as browser:
        failed = _login(browser, name, "wrong password guess")
        ok = _login(browser, name)
    events = httpx.get(
        f"{server.url}/api/v1/audit",
        params={"action": "sessions/create", "principal": name},
        headers=server.auth,
    ).json()["items"]
    by_request = {e["request_id"]: e for e in events}
    assert by_request[failed.headers["x-request-id"]]["outcome"] == "denied"
    assert by_request[ok.headers["x-request-id"]]["outcome"] == "succeeded"
    assert PASSWORD not in str(events)


def test_users_change_their_own_password(server: RunningServer) -> None:
    name = _user_with_password(server)
    token = httpx.post(
        f"{server.url}/api/v1/tokens", json={"name": "t", "user": name}, headers=server.auth
    ).json()["token"]
    mine = {"Authorization": f"Bearer {token}"}
    url = f"{server.url}/api/v1/users/me/password"
    wrong = httpx.post(
        url,
        json={"current_password": "not it at all", "new_password": "a new long passphrase"},
        headers=mine,
    )
    assert (wrong.status_code, wrong.json()["code"]) == (403, "wrong_password")
    missing = httpx.post(url, json={"new_password": "a new long passphrase"}, headers=mine)
    assert missing.status_code == 403
    short = httpx.post(
        url, json={"current_password": PASSWORD, "new_password": "tiny"}, headers=mine
    )
    assert (short.status_code, short.json()["field"]) == (400, "new_password")
    changed = httpx.post(
        url,
        json={"current_password": PASSWORD, "new_password": "a new long passphrase"},
        headers=mine,
    )
    assert changed.status_code == 200, changed.text
    with httpx.Client(base_url=server.url) as browser:
        assert _login(browser, name).status_code == 401
        assert _login(browser, name, "a new long passphrase").status_code == 201
