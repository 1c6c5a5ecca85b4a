"""The authorizer caches per authorization counter; a change made through one replica is
seen by another on its very next request."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import RunningServer, start_server


def _token_for(server: RunningServer, name: str) -> dict[str, str]:
    httpx.post(f"{server.url}/api/v1/users", json={"name": name}, headers=server.auth)
    token = httpx.post(
        f"{server.url}/api/v1/tokens", json={"name": "t", "user": name}, headers=server.auth
    ).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_changes_through_one_replica_apply_at_once_on_another(
    tmp_path: Path, database_url: str
) -> None:
    with (
        start_server(tmp_path / "a", database_url) as a,
        start_server(tmp_path / "b", database_url) as b,
    ):
        alice = _token_for(a, "alice")
        httpx.post(f"{a.url}/api/v1/workspaces", json={"name": "shared"}, headers=a.auth)
        on_b = f"{b.url}/api/v1/workspaces/shared"
        assert httpx.get(on_b, headers=alice).status_code == 404  # B caches "no grants"

        granted = httpx.post(
            f"{a.url}/api/v1/workspaces/shared/role-assignments",
            json={"role": "Reader", "user": "alice"},
            headers=a.auth,
        ).json()
        assert httpx.get(on_b, headers=alice).status_code == 200

        httpx.delete(
            f"{a.url}/api/v1/workspaces/shared/role-assignments/{granted['id']}", headers=a.auth
        ).raise_for_status()
        assert httpx.get(on_b, headers=alice).status_code == 404

        # Through a group: joining and leaving change access on the other replica at once.
        httpx.post(f"{a.url}/api/v1/groups", json={"name": "readers"}, headers=a.auth)
        httpx.post(
            f"{a.url}/api/v1/workspaces/shared/role-assignments",
            json={"role": "Reader", "group": "readers"},
            headers=a.auth,
        ).raise_for_status()
        assert httpx.get(on_b, headers=alice).status_code == 404
        httpx.post(
            f"{a.url}/api/v1/groups/readers/members", json={"name": "alice"}, headers=a.auth
        ).raise_for_status()
        assert httpx.get(on_b, headers=alice).status_code == 200
        httpx.delete(
            f"{a.url}/api/v1/groups/readers/members/alice", headers=a.auth
        ).raise_for_status()
        assert httpx.get(on_b, headers=alice).status_code == 404

        # A purged workspace's name, reused, does not inherit the old grants.
        httpx.post(
            f"{a.url}/api/v1/workspaces/shared/role-assignments",
            json={"role": "Reader", "user": "alice"},
            headers=a.auth,
        ).raise_for_status()
        assert httpx.get(on_b, headers=alice).status_code == 200
        httpx.delete(
            f"{a.url}/api/v1/workspaces/shared",
            params={"permanently_delete": True},
            headers=a.auth,
        ).raise_for_status()
        httpx.post(f"{a.url}/api/v1/workspaces", json={"name": "shared"}, headers=a.auth)
        assert httpx.get(on_b, headers=alice).status_code == 404
