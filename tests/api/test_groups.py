"""Groups: owners manage them; joining a group cannot hand out more than the adder holds."""

from __future__ import annotations

import httpx

from tests.conftest import RunningServer, unique


def _user(server: RunningServer) -> tuple[str, dict[str, str]]:
    name = unique("user")
    httpx.post(f"{server.url}/api/v1/users", json={"name": name}, headers=server.auth)
    token = httpx.post(
        f"{server.url}/api/v1/tokens", json={"name": "t", "user": name}, headers=server.auth
    ).json()["token"]
    return name, {"Authorization": f"Bearer {token}"}


def _assign(server: RunningServer, role: str, **principal: str) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/role-assignments",
        json={"role": role, **principal},
        headers=server.auth,
    )
    assert response.status_code == 201, response.text


def test_a_contributor_cannot_join_a_group_that_holds_owner(server: RunningServer) -> None:
    carl, carl_auth = _user(server)
    _assign(server, "Contributor", user=carl)
    group = unique("owners")
    httpx.post(f"{server.url}/api/v1/groups", json={"name": group}, headers=server.auth)
    _assign(server, "Owner", group=group)

    joined = httpx.post(
        f"{server.url}/api/v1/groups/{group}/members", json={"name": carl}, headers=carl_auth
    )
    assert (joined.status_code, joined.json()["code"]) == (403, "escalation")
    members = httpx.get(f"{server.url}/api/v1/groups/{group}", headers=server.auth).json()
    assert carl not in [m["name"] for m in members["members"]]
    grant = httpx.post(
        f"{server.url}/api/v1/role-assignments",
        json={"role": "Owner", "user": carl},
        headers=carl_auth,
    )
    assert grant.status_code == 403


def test_a_group_owner_manages_members_within_what_they_hold(server: RunningServer) -> None:
    bob, bob_auth = _user(server)
    alice, _ = _user(server)
    group = unique("team")
    httpx.post(f"{server.url}/api/v1/groups", json={"name": group}, headers=server.auth)
    owner = httpx.post(
        f"{server.url}/api/v1/groups/{group}/members",
        json={"name": bob, "relation": "owner"},
        headers=server.auth,
    )
    assert owner.status_code == 200
    # The group holds nothing yet: its owner may add anyone.
    added = httpx.post(
        f"{server.url}/api/v1/groups/{group}/members", json={"name": alice}, headers=bob_auth
    )
    assert added.status_code == 200, added.text
    # Once the group holds Owner at global scope, its (non-admin) owner can no longer add
    # members, not even themselves.
    _assign(server, "Owner", group=group)
    again = httpx.post(
        f"{server.url}/api/v1/groups/{group}/members", json={"name": bob}, headers=bob_auth
    )
    assert (again.status_code, again.json()["code"]) == (403, "escalation")
    removed = httpx.delete(f"{server.url}/api/v1/groups/{group}/members/{alice}", headers=bob_auth)
    assert removed.status_code == 200, "removing members is never an escalation"


def test_a_stranger_cannot_change_a_group(server: RunningServer) -> None:
    _, stranger = _user(server)
    member, _ = _user(server)
    group = unique("team")
    httpx.post(f"{server.url}/api/v1/groups", json={"name": group}, headers=server.auth)
    response = httpx.post(
        f"{server.url}/api/v1/groups/{group}/members", json={"name": member}, headers=stranger
    )
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")
