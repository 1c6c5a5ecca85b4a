"""MLflow's hottest methods, served without FastAPI's routing (``shipyard.mlflow.hot_routes``),
answer exactly what FastAPI answers.

Two real servers play the same script of requests, good and bad: one as the app factory
makes it, one with the hot-route middleware taken out before it starts (so every request
goes through FastAPI's routing and dependencies). Statuses, bodies (ids and server times
aside), the 401 challenge header, what the runs hold afterwards and the audit log must be
the same.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shipyard.mlflow import HotRoutes
from shipyard.mlflow.hot_routes import HOT_METHODS, hot_routes
from tests.conftest import ADMIN_TOKEN, RunningServer, fresh_database_url, start_server

WORKSPACE = "hot"
API = f"/mlflow/workspaces/{WORKSPACE}/api/2.0/mlflow/"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MISSING_RUN = "f" * 32


@dataclass
class Server:
    running: RunningServer
    app: FastAPI


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    with ExitStack() as stack:
        found = []
        for name in ("hot", "plain"):
            url = stack.enter_context(
                contextmanager(fresh_database_url)(tmp_path_factory.mktemp(f"db-{name}"))
            )
            thread = start_server(tmp_path_factory.mktemp(name), url)
            if name == "plain":
                middleware = thread.app.user_middleware
                thread.app.user_middleware = [m for m in middleware if m.cls is not HotRoutes]
            found.append(Server(stack.enter_context(thread), thread.app))
        yield found


def test_the_app_serves_every_hot_method_on_the_lean_path(servers: list[Server]) -> None:
    """If an endpoint's signature changes so that the lean path cannot call it (a query
    parameter, a model as the answer), it silently goes back to FastAPI: this catches that."""
    served = hot_routes(servers[0].app.routes)
    assert {path.split("/mlflow/", 1)[1] for path in served} == HOT_METHODS


def test_lean_and_fastapi_paths_answer_the_same(servers: list[Server]) -> None:
    hot, plain = (_play(server.running) for server in servers)
    assert _layer(servers[0].app, HotRoutes) is not None
    assert _layer(servers[1].app, HotRoutes) is None
    assert len(hot.answers) == len(plain.answers) > 30
    for (label, mine), (_, theirs) in zip(hot.answers, plain.answers, strict=True):
        assert mine == theirs, label
    assert hot.runs == plain.runs
    assert hot.audit == plain.audit
    # Run creation writes its event in the run's own transaction: exactly one per attempt,
    # as for any request (two stored runs, two refused by the service, one denied).
    creations = [
        (event["outcome"], event["status"])
        for event in hot.audit
        if event["resource"].endswith("/runs/create")
    ]
    assert sorted(creations) == [
        ("denied", 403),
        ("failed", 400),
        ("failed", 404),
        ("succeeded", 200),
        ("succeeded", 200),
    ]


def _layer(app: FastAPI, kind: type) -> Any:
    """The middleware of type ``kind`` in the app's built stack, if there is one."""
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, kind):
        layer = getattr(layer, "app", None)
    return layer


class _Script:
    """A server's answers to the script, with what differs between servers by nature (ids it
    made, its clock, request ids) replaced by stable names."""

    def __init__(self, server: RunningServer) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=30)
        self.names: dict[str, str] = {}
        self.raw: list[tuple[str, Any]] = []
        self.runs: list[Any] = []
        self.audit: list[Any] = []

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body, headers=ADMIN)
        assert response.status_code < 300, response.text
        return response.json()

    def user(self, name: str, role: str | None) -> dict[str, str]:
        self.admin("POST", "/api/v1/users", {"name": name})
        if role is not None:
            body = {"role": role, "user": name}
            self.admin("POST", f"/api/v1/workspaces/{WORKSPACE}/role-assignments", body)
        token = self.admin("POST", "/api/v1/tokens", {"name": f"{name}-t", "user": name})
        return {"Authorization": f"Bearer {token['token']}"}

    def call(
        self,
        label: str,
        method: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        path: str | None = None,
    ) -> Any:
        sent = {"Content-Type": "application/json", **ADMIN, **(headers or {})}
        if content is None:
            content = json.dumps(body).encode()
        url = path or API + method
        response = self.http.post(url, content=content, headers=sent)
        answer = response.json() if response.content else None
        headers = response.headers
        seen = (response.status_code, headers["content-type"], headers.get("www-authenticate"))
        self.raw.append((label, (*seen, answer)))
        return answer

    @property
    def answers(self) -> list[tuple[str, Any]]:
        return [(label, self.stable(answer)) for label, answer in self.raw]

    def name(self, value: str, kind: str) -> str:
        """Call an id this server made by the order it was made in."""
        return self.names.setdefault(value, f"<{kind}-{len(self.names)}>")

    def stable(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: "<time>" if k in _SERVER_TIMES and v is not None else self.stable(v)
                for k, v in value.items()
                if k != "request_id"
            }
        if isinstance(value, list | tuple):
            return [self.stable(v) for v in value]
        if isinstance(value, str):
            value = _GENERATED_NAME.sub("<generated name>", value)  # made from the clock
            return _ID.sub(lambda found: self.names.get(found[0], found[0]), value)
        return value


_SERVER_TIMES = {"start_time", "end_time", "at", "timestamp_server"}
_ID = re.compile(r"[0-9a-f]{32}")
_GENERATED_NAME = re.compile(r"^run-[0-9]+$")


def _play(server: RunningServer) -> _Script:
    s = _Script(server)
    s.admin("POST", "/api/v1/workspaces", {"name": WORKSPACE})
    reader, outsider = s.user("reader", "Reader"), s.user("outsider", None)
    basic = base64.b64encode(f"me:{ADMIN_TOKEN}".encode()).decode()
    experiment = s.admin("POST", API + "experiments/create", {"name": "e"})["experiment_id"]
    gone = s.admin("POST", API + "experiments/create", {"name": "gone"})["experiment_id"]
    s.admin("POST", API + "experiments/delete", {"experiment_id": gone})
    s.name(experiment, "experiment"), s.name(gone, "experiment")

    made = s.call("create", "runs/create", {"experiment_id": experiment, "run_name": "r"})
    run = s.name(made["run"]["info"]["run_id"], "run") and made["run"]["info"]["run_id"]
    tags = [{"key": "k", "value": "v"}, {"key": "mlflow.user", "value": "someone"}]
    body = {"experiment_id": experiment, "tags": tags, "start_time": 5}
    tagged = s.call("create with tags", "runs/create", body)
    other = s.name(tagged["run"]["info"]["run_id"], "run") and tagged["run"]["info"]["run_id"]
    s.call("create in a deleted experiment", "runs/create", {"experiment_id": gone})
    s.call("create in no experiment", "runs/create", {"experiment_id": "nope"})
    s.call("create by a reader", "runs/create", {"experiment_id": experiment}, headers=reader)

    point = {"run_id": run, "key": "m", "value": 0.5, "timestamp": 1000, "step": 1}
    s.call("metric", "runs/log-metric", point)
    s.call("metric NaN", "runs/log-metric", {**point, "value": "NaN", "step": 2})
    s.call("metric infinity", "runs/log-metric", {**point, "value": "-Infinity", "step": 3})
    s.call("metric, run_uuid", "runs/log-metric", {**point, "run_id": None, "run_uuid": run})
    s.call(
        "metric, basic auth", "runs/log-metric", point, headers={"Authorization": f"Basic {basic}"}
    )
    s.call(
        "metric, charset",
        "runs/log-metric",
        point,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    s.call("metric by a reader", "runs/log-metric", point, headers=reader)
    s.call("metric by an outsider", "runs/log-metric", point, headers=outsider)
    s.call("metric, no token", "runs/log-metric", point, headers={"Authorization": ""})
    s.call("metric, bad token", "runs/log-metric", point, headers={"Authorization": "Bearer shp_x"})
    s.call("metric, unknown run", "runs/log-metric", {**point, "run_id": MISSING_RUN})
    s.call(
        "metric, unknown workspace",
        "runs/log-metric",
        point,
        path="/mlflow/workspaces/nowhere/api/2.0/mlflow/runs/log-metric",
    )
    s.call("metric, not JSON", "runs/log-metric", content=b'{"run_id": ')
    s.call("metric, text body", "runs/log-metric", point, headers={"Content-Type": "text/plain"})
    s.call("metric, no key", "runs/log-metric", {"run_id": run, "value": 1})
    s.call("metric, no run", "runs/log-metric", {"key": "m", "value": 1})
    s.call("metric, long key", "runs/log-metric", {**point, "key": "k" * 251})
    s.call("metric, blank key", "runs/log-metric", {**point, "key": "  "})
    s.call("metric, bad timestamp", "runs/log-metric", {**point, "timestamp": -1})
    s.call("metric, bad value", "runs/log-metric", {**point, "value": "lots"})
    s.call("metric, array body", "runs/log-metric", [point])
    s.call("metric, huge body", "runs/log-metric", content=b"{" + b" " * 1_100_000 + b"}")

    batch = {
        "run_id": run,
        "metrics": [{"key": f"b{i}", "value": i, "timestamp": 7, "step": i} for i in range(3)],
        "params": [{"key": "p", "value": "1"}],
        "tags": [{"key": "t", "value": "x"}, {"key": "mlflow.runName", "value": "renamed"}],
    }
    s.call("batch", "runs/log-batch", batch)
    s.call(
        "batch, param changed", "runs/log-batch", {**batch, "params": [{"key": "p", "value": "2"}]}
    )
    s.call("batch, too many", "runs/log-batch", {"run_id": run, "metrics": [point] * 1001})
    s.call("batch, bad tag", "runs/log-batch", {"run_id": run, "tags": [{"key": "", "value": "x"}]})
    s.call("param", "runs/log-parameter", {"run_id": run, "key": "q", "value": "v"})
    s.call(
        "param, too long", "runs/log-parameter", {"run_id": run, "key": "q2", "value": "v" * 6001}
    )
    s.call("tag", "runs/set-tag", {"run_id": run, "key": "t2", "value": "y"})
    s.call(
        "tag renames", "runs/set-tag", {"run_id": run, "key": "mlflow.runName", "value": "again"}
    )
    search = {"experiment_ids": [experiment], "filter": "metrics.b1 > 0", "max_results": 1}
    s.call("search", "runs/search", search)
    s.call("search, ordered", "runs/search", {**search, "filter": "", "order_by": ["params.p"]})
    s.call("search, bad filter", "runs/search", {**search, "filter": "metrics.b1 >> 0"})
    s.call("search, bad token", "runs/search", {**search, "page_token": "nope"})
    s.call("search by an outsider", "runs/search", search, headers=outsider)
    s.call("search, too many", "runs/search", {**search, "max_results": 50001})
    s.admin("POST", API + "runs/delete", {"run_id": other})
    s.call("search, deleted only", "runs/search", {**search, "run_view_type": "DELETED_ONLY"})
    s.call("metric, deleted run", "runs/log-metric", {**point, "run_id": other})
    s.call("tag, deleted run", "runs/set-tag", {"run_id": other, "key": "t", "value": "y"})

    for run_id in (run, other):
        found = s.http.get(API + "runs/get", params={"run_id": run_id}, headers=ADMIN).json()
        s.runs.append(s.stable(found))
    events = s.admin("GET", f"/api/v1/workspaces/{WORKSPACE}/audit?max_results=1000")["items"]
    keep = ("principal", "action", "method", "resource", "outcome", "status")
    s.audit = [s.stable({k: event[k] for k in keep}) for event in reversed(events)]
    return s
