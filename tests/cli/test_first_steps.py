"""The README's first steps, as a new user takes them: all real processes, no shortcuts.

Start the server with no admin token, log in with the token it wrote, create a workspace from
a YAML file, then see it through the SDK and through REST. Runs on PostgreSQL as well when
SHIPYARD_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from shipyard import Client
from tests.cli.test_server_process import environment, server_process, shipyard

WORKSPACE_YAML = """\
name: churn
display_name: Churn prediction
description: Models that predict which customers leave.
tags:
  team: growth
"""


def test_readme_first_steps(tmp_path: Path, database_url: str) -> None:
    env = environment(database_url, XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.pop("SHIPYARD_ADMIN_TOKEN", None)
    with server_process(tmp_path / "home", env) as server:
        token = (tmp_path / "home" / "admin-token").read_text().strip()

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run(
                shipyard(*args), env=env, capture_output=True, text=True, timeout=60, check=False
            )
            assert done.returncode == 0, done.stderr
            return done

        cli("login", "--url", server.url, "--token", token)
        (tmp_path / "ws.yml").write_text(WORKSPACE_YAML)
        cli("workspace", "create", "-f", str(tmp_path / "ws.yml"))
        assert "churn" in cli("workspace", "list").stdout

        with Client(server.url, token) as client:
            ws = client.workspaces.get("churn")
        assert (ws.display_name, ws.tags) == ("Churn prediction", {"team": "growth"})
        assert ws.storage.uri == str(tmp_path / "home" / "artifacts")

        rest = httpx.get(
            f"{server.url}/api/v1/workspaces", headers={"Authorization": f"Bearer {token}"}
        )
        assert [w["name"] for w in rest.json()["items"]] == ["churn"]
        assert server.stop() == 0
