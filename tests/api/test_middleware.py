"""Request ids on every response, and problem documents for routes that do not exist."""

from __future__ import annotations

import re

import httpx

from tests.conftest import RunningServer


def test_every_response_carries_a_request_id(server: RunningServer) -> None:
    responses = [
        httpx.get(f"{server.url}/health"),
        httpx.get(f"{server.url}/api/v1/workspaces"),  # 401
        httpx.get(f"{server.url}/api/v1/workspaces", headers=server.auth),
        httpx.get(f"{server.url}/no/such/route", headers=server.auth),
    ]
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert responses[1].json()["request_id"] == ids[1]


def test_a_clients_request_id_is_kept_when_tame(server: RunningServer) -> None:
    kept = httpx.get(f"{server.url}/health", headers={"X-Request-ID": "trace-42.a_b"})
    assert kept.headers["x-request-id"] == "trace-42.a_b"
    replaced = httpx.get(f"{server.url}/health", headers={"X-Request-ID": "bad id\twith tab"})
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])


def test_unknown_routes_and_methods_are_problems(server: RunningServer) -> None:
    missing = httpx.get(f"{server.url}/api/v1/nothing", headers=server.auth)
    assert (missing.status_code, missing.json()["code"]) == (404, "route_not_found")
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = httpx.put(f"{server.url}/api/v1/workspaces", headers=server.auth)
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
