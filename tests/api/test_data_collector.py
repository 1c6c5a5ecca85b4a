"""data_collector end to end: a real server routes scoring requests to a deployment's real
instance, the gateway samples them, and the collector writes JSON Lines files into the
datastore (the workspace's own storage, a local datastore, an S3 bucket on SeaweedFS)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.api.deps import Services
from shipyard.domain.errors import InvalidInputError
from shipyard.sdk.client import Client
from shipyard.sdk.workspaces import WorkspaceHandle
from shipyard.storage.base import Storage
from shipyard.store import endpoints as endpoint_store
from shipyard.store import workspaces as workspace_store
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.conftest import RunningServer, start_server, unique
from tests.s3server import S3Server

MINIMAL = "azureml:shipyard-minimal@latest"
FLUSH_SECONDS = 0.2
SCORE = """\
import json


def init():
    pass


def run(raw_data):
    body = json.loads(raw_data)
    return {"echo": body, "count": len(body["data"])}
"""


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datastores").resolve()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str, roots: Path
) -> Iterator[RunningServer]:
    thread = start_server(
        tmp_path_factory.mktemp("data"),
        module_database_url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        jobs_enabled=False,
        serving_enabled=True,
        datastore_roots=[str(roots)],
        data_collector_flush_seconds=FLUSH_SECONDS,
    )
    with thread as running:
        yield running


@pytest.fixture(scope="module")
def services(server: RunningServer) -> Services:
    return server.services


@pytest.fixture(scope="module")
def sdk(server: RunningServer) -> Iterator[Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def site(sdk: Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace with the scoring code and a model (the script needs none: a
    deployment has one), and an endpoint with its key."""
    name = unique("ws")
    sdk.workspaces.create(name)
    root = tmp_path_factory.mktemp("files")
    (root / "src").mkdir()
    (root / "src" / "score.py").write_text(SCORE)
    (root / "model").mkdir()
    (root / "model" / "unused.json").write_text("{}")
    ws = sdk.workspace(name)
    ws.models.create("tiny", root / "model")
    endpoint = unique("ep")
    ws.online_endpoints.create({"name": endpoint, "auth_mode": "key"})
    key = ws.online_endpoints.list_keys(endpoint).primary_key
    return {"ws": ws, "name": name, "root": root, "endpoint": endpoint, "key": key}


def _spec(site: dict[str, Any], name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "endpoint_name": site["endpoint"],
        "model": "azureml:tiny:1",
        "code_configuration": {"code": "./src", "scoring_script": "score.py"},
        "environment": MINIMAL,
        "instance_count": 1,
        **fields,
    }


@pytest.fixture(scope="module")
def blue(site: dict[str, Any]) -> str:
    """A deployment taking all the endpoint's traffic, collecting both ways at rate 1.0;
    requests also registered as a data asset."""
    ws: WorkspaceHandle = site["ws"]
    collector = {
        "collections": {
            "request": {"enabled": "True", "data": {"name": "blue-requests"}},
            "response": {"enabled": True},
        }
    }
    spec = _spec(site, "blue", data_collector=collector)
    ws.online_deployments.create(spec, base_dir=site["root"], all_traffic=True)
    deadline = time.monotonic() + 600  # the first build of the environment takes a while
    while True:
        shown = ws.online_deployments.get("blue", endpoint_name=site["endpoint"])
        if shown.provisioning_state in ("Succeeded", "Failed"):
            break
        assert time.monotonic() < deadline, shown.provisioning_state
        time.sleep(0.2)
    assert shown.provisioning_state == "Succeeded", shown.error
    return "blue"


def _score(
    http: httpx.Client,
    server: RunningServer,
    site: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> httpx.Response:
    url = f"{server.url}/api/v1/workspaces/{site['name']}/onlineEndpoints/{site['endpoint']}/score"
    sent = {"Authorization": f"Bearer {site['key']}", **(headers or {})}
    return http.post(url, headers=sent, **kw)


def _storage_rows(storage: Storage, folder: str) -> dict[str, list[dict[str, Any]]]:
    """Every JSON Lines file under the folder of the storage, with its rows."""
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in storage.list(folder, recursive=True):
        text = b"".join(storage.read(entry.path)).decode()
        found[entry.path] = [json.loads(line) for line in text.splitlines()]
    return found


Rows = dict[str, list[dict[str, Any]]]


def _wait_for(read: Callable[[], Rows], rows: int) -> Rows:
    deadline = time.monotonic() + 60
    while True:
        found = read()
        if sum(len(r) for r in found.values()) >= rows:
            return found
        assert time.monotonic() < deadline, f"{sum(len(r) for r in found.values())} rows"
        time.sleep(FLUSH_SECONDS)


def _collecting(services: Services, site: dict[str, Any], name: str, rate: float | None) -> None:
    """Wait until the server's collector took the deployment's new data_collector (it reads
    the store when woken by the update): ``rate`` None, not collecting."""
    with services.db.read() as session:
        ws = workspace_store.get_workspace(session, site["name"])
        assert ws is not None
        endpoint = endpoint_store.get_endpoint(session, ws.id, site["endpoint"])
        assert endpoint is not None
        row = endpoint_store.get_deployment(session, endpoint.id, name)
        assert row is not None
        deployment_id = row.id
    collector = services.data_collector
    assert collector is not None
    deadline = time.monotonic() + 30
    while collector.rates.get(deployment_id) != rate:
        assert time.monotonic() < deadline, collector.rates
        time.sleep(0.05)


def _settled(read: Callable[[], int]) -> int:
    """The count once it stopped growing over several flushes."""
    last, same = -1, 0
    deadline = time.monotonic() + 60
    while same < 4:
        assert time.monotonic() < deadline
        time.sleep(FLUSH_SECONDS * 2)
        now = read()
        same = same + 1 if now == last else 0
        last = now
    return last


def test_requests_and_responses_land_in_the_default_datastore_linked(
    server: RunningServer,
    services: Services,
    site: dict[str, Any],
    blue: str,
    tmp_path: Path,
) -> None:
    bodies: list[dict[str, Any]] = [{"data": list(range(i)), "n": i} for i in range(1, 21)]
    binary = b"\x00\xff not json \xfe"
    with httpx.Client(timeout=30) as http:
        for body in bodies:
            scored = _score(http, server, site, json=body)
            assert scored.status_code == 200, scored.text
            assert scored.json() == {"echo": body, "count": len(body["data"])}
        kind = {"content-type": "application/octet-stream"}
        odd_status = _score(http, server, site, content=binary, headers=kind).status_code
    storage = services.datastores.open(site["name"], "workspaceblobstore").storage
    base = f"modelDataCollector/{site['endpoint']}/{blue}"
    requests = _wait_for(lambda: _storage_rows(storage, f"{base}/request"), len(bodies) + 1)
    responses = _wait_for(lambda: _storage_rows(storage, f"{base}/response"), len(bodies) + 1)

    # <path>/<yyyy>/<mm>/<dd>/<hh>/<file>.jsonl: Hour, the default rolling rate.
    layout = re.compile(rf"^{base}/(request|response)/\d{{4}}/\d\d/\d\d/\d\d/[\w.-]+\.jsonl$")
    for path in [*requests, *responses]:
        assert layout.match(path), path
    request_rows = [row for rows in requests.values() for row in rows]
    response_rows = [row for rows in responses.values() for row in rows]
    assert len(request_rows) == len(response_rows) == len(bodies) + 1
    assert {row["type"] for row in request_rows} == {"azureml.inference.request"}
    assert {row["type"] for row in response_rows} == {"azureml.inference.response"}

    # Linked by correlation id: each request has exactly its answer.
    answers = {row["correlationid"]: row for row in response_rows}
    assert len(answers) == len(response_rows)
    json_requests = [row for row in request_rows if "dataencoding" not in row]
    assert sorted(json.dumps(r["data"]) for r in json_requests) == sorted(
        json.dumps(b) for b in bodies
    )
    for row in json_requests:
        answer = answers[row["correlationid"]]
        assert answer["statuscode"] == 200
        assert answer["data"] == {"echo": row["data"], "count": len(row["data"]["data"])}
        assert answer["latencyms"] > 0
        assert (row["endpoint"], row["deployment"]) == (site["endpoint"], blue)
        assert row["xrequestid"] == answer["xrequestid"]
    # A body that is not UTF-8 JSON is kept as base64, flagged.
    (odd_row,) = [row for row in request_rows if "dataencoding" in row]
    assert odd_row["dataencoding"] == "base64"
    assert base64.b64decode(odd_row["data"]) == binary
    assert odd_row["datacontenttype"] == "application/octet-stream"
    assert answers[odd_row["correlationid"]]["statuscode"] == odd_status

    # No key, token or Authorization header reaches the datastore.
    everything = b"".join(b"".join(storage.read(path)) for path in [*requests, *responses]).lower()
    assert site["key"].lower().encode() not in everything
    assert b"authorization" not in everything
    assert b"bearer" not in everything

    # The data asset named for the requests points at their folder, and downloads.
    ws: WorkspaceHandle = site["ws"]
    asset = ws.data.get("blue-requests", label="latest")
    assert asset.type == "uri_folder"
    assert asset.path == f"azureml://datastores/workspaceblobstore/paths/{base}/request"
    downloaded = ws.data.download("blue-requests", asset.version, download_path=tmp_path / "dl")
    lines = [
        json.loads(line)
        for file in downloaded.rglob("*.jsonl")
        for line in file.read_text().splitlines()
    ]
    assert len(lines) >= len(bodies) + 1
    assert {row["correlationid"] for row in lines} >= {r["correlationid"] for r in json_requests}

    # Prometheus counts what was collected.
    metrics = httpx.get(f"{server.url}/metrics", headers=server.auth).text
    labels = f'deployment="{blue}",endpoint="{site["endpoint"]}",workspace="{site["name"]}"'
    counted = re.search(
        rf"^shipyard_online_deployment_collected_requests_total\{{{labels}\}} ([\d.e+]+)$",
        metrics,
        re.MULTILINE,
    )
    assert counted is not None, metrics
    assert int(float(counted.group(1))) >= len(bodies) + 1


def test_a_sampling_rate_keeps_a_share_in_a_named_datastore_without_a_restart(
    server: RunningServer, services: Services, site: dict[str, Any], blue: str, roots: Path
) -> None:
    ws: WorkspaceHandle = site["ws"]
    folder = roots / unique("collected")
    folder.mkdir()
    ws.datastores.create("sampled", type="local", path=str(folder))
    before = ws.online_deployments.get(blue, endpoint_name=site["endpoint"])
    collector = {
        "sampling_rate": 0.5,
        "rolling_rate": "minute",
        "collections": {
            "request": {
                "enabled": "true",
                "data": {"path": "azureml://datastores/sampled/paths/half"},
            },
            "response": {"enabled": "False"},
        },
    }
    after = ws.online_deployments.update(
        {"name": blue, "data_collector": collector}, endpoint_name=site["endpoint"]
    )
    # Collection is the gateway's business: the instances are not replaced for it.
    assert after.generation == before.generation
    assert after.provisioning_state == "Succeeded"
    # Shown as resolved: the rate, the time folders, where the one enabled collection goes.
    assert after.data_collector is not None
    assert after.data_collector["sampling_rate"] == 0.5
    assert set(after.data_collector["collections"]) == {"request"}
    assert after.data_collector["collections"]["request"]["path"].endswith("half")
    _collecting(services, site, blue, 0.5)

    total = 400
    with httpx.Client(timeout=30) as http:
        for i in range(total):
            answer = _score(http, server, site, json={"data": [i]})
            assert answer.status_code == 200, answer.text

    def count() -> int:
        return sum(len(f.read_text().splitlines()) for f in (folder / "half").rglob("*.jsonl"))

    kept = _settled(count)
    assert 120 <= kept <= 280, kept
    files = list((folder / "half").rglob("*.jsonl"))
    # Minute folders: <yyyy>/<mm>/<dd>/<hh>/<MM>/<file>.
    for file in files:
        assert len(file.relative_to(folder / "half").parts) == 6, file
    assert [p.name for p in folder.iterdir()] == ["half"]  # the response collection is off
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert {row["type"] for row in rows} == {"azureml.inference.request"}
    assert len({row["data"]["data"][0] for row in rows}) == kept


def test_collected_data_goes_to_an_s3_datastore(
    server: RunningServer,
    services: Services,
    site: dict[str, Any],
    blue: str,
    s3_server: S3Server,
) -> None:
    ws: WorkspaceHandle = site["ws"]
    bucket = s3_server.new_bucket("collect")
    ws.datastores.create_from_spec(
        {
            "name": "bucket",
            "type": "s3",
            "bucket": bucket,
            "endpoint_url": s3_server.endpoint_url,
            "region": "us-east-1",
            "credentials": {
                "access_key_id": s3_server.access_key_id,
                "secret_access_key": s3_server.secret_access_key,
            },
        }
    )
    collector = {
        "rolling_rate": "Day",
        "collections": {
            "request": {"enabled": True, "data": {"path": "azureml://datastores/bucket/paths/c"}},
            "response": {"enabled": True, "data": {"path": "azureml://datastores/bucket/paths/r"}},
        },
    }
    ws.online_deployments.update(
        {"name": blue, "data_collector": collector}, endpoint_name=site["endpoint"]
    )
    _collecting(services, site, blue, 1.0)
    with httpx.Client(timeout=30) as http:
        for i in range(5):
            assert _score(http, server, site, json={"data": [i, i]}).status_code == 200
    s3 = s3_server.filesystem()

    def read() -> dict[str, list[dict[str, Any]]]:
        s3.invalidate_cache()
        return {
            key: [json.loads(line) for line in s3.cat_file(key).decode().splitlines()]
            for key in s3.find(bucket)
            if key.endswith(".jsonl")
        }

    found = _wait_for(read, 10)
    # <bucket>/<c|r>/<yyyy>/<mm>/<dd>/<file>.jsonl: Day folders, one object per flush.
    for key in found:
        assert re.match(rf"^{bucket}/[cr]/\d{{4}}/\d\d/\d\d/[\w.-]+\.jsonl$", key), key
    requests = [
        row for key, rows in found.items() if key.startswith(f"{bucket}/c/") for row in rows
    ]
    responses = [
        row for key, rows in found.items() if key.startswith(f"{bucket}/r/") for row in rows
    ]
    assert sorted(r["data"]["data"][0] for r in requests) == [0, 1, 2, 3, 4]
    linked = {r["correlationid"]: r for r in responses}
    for row in requests:
        assert linked[row["correlationid"]]["data"]["echo"] == row["data"]


@pytest.mark.parametrize(
    ("collector", "code", "field"),
    [
        ({"sampling_rate": 0}, "invalid_sampling_rate", "data_collector.sampling_rate"),
        ({"sampling_rate": 2}, "invalid_sampling_rate", "data_collector.sampling_rate"),
        ({"sampling_rate": "half"}, "invalid_sampling_rate", "data_collector.sampling_rate"),
        ({"rolling_rate": "Weekly"}, "invalid_rolling_rate", "data_collector.rolling_rate"),
        (
            {"collections": {"model_inputs": {"enabled": "True"}}},
            "unsupported_collection",
            "data_collector.collections.model_inputs",
        ),
        (
            {"collections": {"request": {"enabled": "maybe"}}},
            "invalid_field",
            "data_collector.collections.request.enabled",
        ),
        (
            {
                "collections": {
                    "request": {
                        "enabled": True,
                        "data": {"path": "azureml://datastores/nowhere/paths/x"},
                    }
                }
            },
            "datastore_not_found",
            "data_collector.collections.request.data.path",
        ),
        (
            {
                "collections": {
                    "response": {
                        "enabled": True,
                        "data": {"path": "azureml://datastores/frozen/paths/x"},
                    }
                }
            },
            "datastore_read_only",
            "data_collector.collections.response.data.path",
        ),
        (
            {"collections": {"request": {"enabled": True, "data": {"path": "./local/x"}}}},
            "invalid_field",
            "data_collector.collections.request.data.path",
        ),
        (
            {
                "collections": {
                    "request": {
                        "enabled": True,
                        "data": {
                            "path": "azureml://datastores/workspaceblobstore/paths/LocalUpload/x"
                        },
                    }
                }
            },
            "invalid_field",
            "data_collector.collections.request.data.path",
        ),
        (
            {"collections": {"request": {"enabled": True, "data": {"name": "bad name"}}}},
            "invalid_field",
            "data_collector.collections.request.data.name",
        ),
        (
            {"collections": {"request": {"enabled": True, "data": {"version": "1"}}}},
            "invalid_field",
            "data_collector.collections.request.data.version",
        ),
        ({"sampling-rate": 1}, "unknown_field", "data_collector.sampling-rate"),
    ],
)
def test_a_bad_data_collector_is_a_400_naming_the_field(
    site: dict[str, Any], roots: Path, collector: dict[str, Any], code: str, field: str
) -> None:
    ws: WorkspaceHandle = site["ws"]
    if "frozen" in json.dumps(collector) and not any(
        d.name == "frozen" for d in ws.datastores.list()
    ):
        folder = roots / unique("frozen")
        folder.mkdir()
        ws.datastores.create("frozen", type="local", path=str(folder), read_only=True)
    spec = _spec(site, unique("bad"), data_collector=collector)
    with pytest.raises(InvalidInputError) as caught:
        ws.online_deployments.create(spec, base_dir=site["root"])
    assert (caught.value.code, caught.value.field) == (code, field), caught.value
    with pytest.raises(Exception, match="does not exist"):
        ws.online_deployments.get(spec["name"], endpoint_name=site["endpoint"])


def _collected(server: RunningServer, site: dict[str, Any], blue: str) -> tuple[float, float]:
    """(requests, collected) of the deployment, from Prometheus."""
    metrics = httpx.get(f"{server.url}/metrics", headers=server.auth).text
    labels = f'deployment="{blue}",endpoint="{site["endpoint"]}",workspace="{site["name"]}"'

    def total(name: str, extra: str = "") -> float:
        pattern = rf"^shipyard_online_deployment_{name}_total\{{{extra}{labels}\}} ([\d.e+]+)$"
        return sum(float(m) for m in re.findall(pattern, metrics, re.MULTILINE))

    return total("requests", r'code="\d+",'), total("collected_requests")


def test_with_every_collection_disabled_nothing_is_collected(
    server: RunningServer, services: Services, site: dict[str, Any], blue: str
) -> None:
    ws: WorkspaceHandle = site["ws"]
    off = {"sampling_rate": 1, "collections": {"request": {"enabled": "False"}}}
    ws.online_deployments.update(
        {"name": blue, "data_collector": off}, endpoint_name=site["endpoint"]
    )
    _collecting(services, site, blue, None)
    requests_before, collected_before = _collected(server, site, blue)
    with httpx.Client(timeout=30) as http:
        for i in range(10):
            assert _score(http, server, site, json={"data": [i]}).status_code == 200
    time.sleep(FLUSH_SECONDS * 5)
    requests_after, collected_after = _collected(server, site, blue)
    assert requests_after == requests_before + 10
    assert collected_after == collected_before
