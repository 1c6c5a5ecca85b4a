"""``shipyard online-endpoint ...`` and ``shipyard online-deployment ...`` against a real
server, from Azure-shaped YAML files."""

from __future__ import annotations

import json
from pathlib import Path

from shipyard.sdk.client import Client
from tests.cli.test_cli import as_admin, invoke, key_values, run, table_rows
from tests.conftest import RunningServer, unique

ENDPOINT = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json
name: {name}
auth_mode: key
description: churn scoring
tags:
  team: ml
"""

DEPLOYMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: {name}
endpoint_name: {endpoint}
model:
  path: ./model
  type: custom_model
code_configuration:
  code: ./src
  scoring_script: score.py
environment: azureml:shipyard-minimal@latest
instance_type: Standard_DS3_v2
instance_count: 1
request_settings:
  request_timeout_ms: 3000
"""


def files(tmp_path: Path, endpoint: str) -> dict[str, str]:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.txt").write_text("1 2 3\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text(
        "def init():\n    pass\n\n\ndef run(raw):\n    return raw\n"
    )
    (tmp_path / "endpoint.yml").write_text(ENDPOINT.format(name=endpoint))
    for name in ("blue", "green"):
        text = DEPLOYMENT.format(name=name, endpoint=endpoint)
        (tmp_path / f"{name}.yml").write_text(text)
    return {p.stem: str(p) for p in tmp_path.glob("*.yml")}


def test_endpoint_and_deployment_round_trip(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    endpoint = unique("ep")
    paths = files(tmp_path, endpoint)
    ep_args = ["-n", endpoint, "-w", ws]

    made = json.loads(invoke(["online-endpoint", "create", "-f", paths["endpoint"], "-w", ws,
                              "-o", "json"], env).stdout)  # fmt: skip
    assert made["name"] == endpoint
    assert made["scoring_uri"].endswith(f"/onlineEndpoints/{endpoint}/score")
    shown = json.loads(invoke(["online-endpoint", "show", *ep_args, "-o", "json"], env).stdout)
    assert shown == admin.workspace(ws).online_endpoints.get(endpoint).model_dump(mode="json")
    rows = table_rows(invoke(["online-endpoint", "list", "-w", ws], env).stdout)
    assert [r["name"] for r in rows] == [endpoint]

    # A local model folder is registered, the code folder uploaded; all traffic to blue.
    dep_args = ["-e", endpoint, "-w", ws]
    blue = json.loads(invoke(["online-deployment", "create", "-f", paths["blue"], "-w", ws,
                              "--all-traffic", "-o", "json"], env).stdout)  # fmt: skip
    assert blue["model"] == f"azureml:{endpoint}-blue:1"
    assert blue["code_configuration"]["code"].startswith("sha256:")
    assert blue["request_settings"]["request_timeout_ms"] == 3000
    green = invoke(["online-deployment", "create", "-f", paths["green"], "-w", ws,
                    "--set", "instance_count=2", "-o", "json"], env)  # fmt: skip
    assert json.loads(green.stdout)["instance_count"] == 2
    listed = table_rows(invoke(["online-deployment", "list", *dep_args], env).stdout)
    assert [r["name"] for r in listed] == ["blue", "green"]
    traffic = json.loads(invoke(["online-endpoint", "show", *ep_args, "-o", "json"], env).stdout)
    assert traffic["traffic"] == {"blue": 100}

    split = invoke(["online-endpoint", "update", *ep_args, "--traffic", "blue=90 green=10",
                    "-o", "json"], env)  # fmt: skip
    assert json.loads(split.stdout)["traffic"] == {"blue": 90, "green": 10}
    mirror = invoke(["online-endpoint", "update", *ep_args, "--traffic", "blue=100 green=0",
                     "--mirror-traffic", "green=10", "-o", "json"], env)  # fmt: skip
    assert json.loads(mirror.stdout)["mirror_traffic"] == {"green": 10}
    # A bad split fails with the field named, and changes nothing.
    bad = run(["online-endpoint", "update", *ep_args, "--traffic", "blue=90 green=20"], env)
    assert bad.returncode == 1
    assert "100" in bad.stderr
    assert "traffic" in bad.stderr

    scaled = invoke(["online-deployment", "update", "-n", "green", *dep_args,
                     "--instance-count", "3"], env)  # fmt: skip
    assert key_values(scaled.stdout)["instance_count"] == "3"
    shown_green = invoke(["online-deployment", "show", "-n", "green", *dep_args, "-o", "json"], env)
    assert json.loads(shown_green.stdout)["generation"] == 2
    # The runtime may have started green's instances by now: at most the lines asked for.
    logs = invoke(["online-deployment", "get-logs", "-n", "green", *dep_args, "--lines", "5"], env)
    assert len(logs.stdout.splitlines()) <= 5

    # Keys: shown as JSON, the primary replaced on its own.
    creds = json.loads(invoke(["online-endpoint", "get-credentials", *ep_args, "-o", "json"],
                              env).stdout)  # fmt: skip
    assert set(creds) == {"primary_key", "secondary_key"}
    invoke(["online-endpoint", "regenerate-keys", *ep_args, "--key-type", "primary"], env)
    again = json.loads(invoke(["online-endpoint", "get-credentials", *ep_args, "-o", "json"],
                              env).stdout)  # fmt: skip
    assert again["primary_key"] != creds["primary_key"]
    assert again["secondary_key"] == creds["secondary_key"]

    # A deployment that takes traffic cannot go; one that takes none can.
    refused = run(["online-deployment", "delete", "-n", "blue", *dep_args, "--yes"], env)
    assert refused.returncode == 1
    assert "traffic" in refused.stderr
    invoke(["online-endpoint", "update", *ep_args, "--traffic", "blue=0 green=100",
            "--mirror-traffic", "blue=0"], env)  # fmt: skip
    invoke(["online-deployment", "delete", "-n", "blue", *dep_args, "--yes"], env)
    remaining = table_rows(invoke(["online-deployment", "list", *dep_args], env).stdout)
    assert [r["name"] for r in remaining] == ["green"]
    invoke(["online-endpoint", "delete", *ep_args, "--yes"], env)
    assert table_rows(invoke(["online-endpoint", "list", "-w", ws], env).stdout) == []


def test_token_endpoint_credentials(server: RunningServer, admin: Client, tmp_path: Path) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    endpoint = unique("ep")
    file = tmp_path / "ep.yml"
    file.write_text(
        ENDPOINT.format(name=endpoint).replace("auth_mode: key", "auth_mode: aml_token")
    )
    invoke(["online-endpoint", "create", "-f", str(file), "-w", ws], env)
    creds = json.loads(invoke(["online-endpoint", "get-credentials", "-n", endpoint, "-w", ws,
                               "-o", "json"], env).stdout)  # fmt: skip
    assert creds["access_token"].startswith("sht_")
    assert creds["expiry_time_utc"] > 0
    refused = run(["online-endpoint", "regenerate-keys", "-n", endpoint, "-w", ws], env)
    assert refused.returncode == 1
    assert "auth_mode" in refused.stderr


def test_file_errors_name_the_line(server: RunningServer, admin: Client, tmp_path: Path) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    file = tmp_path / "ep.yml"
    file.write_text(ENDPOINT.format(name="9-starts-with-a-digit"))
    result = run(["online-endpoint", "create", "-f", str(file), "-w", ws], env)
    assert result.returncode == 1
    assert "ep.yml:2: field 'name'" in result.stderr, result.stderr
