"""Monitoring of online deployments end to end: a real deployment (the cached environment of
test_online_scoring) scored through the real gateway with the endpoint's keys, then read back
from Prometheus' /metrics, the store's per-minute series (REST, SDK) and the CLI's show."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from shipyard.api.deps import Services
from shipyard.domain.errors import NotFoundError
from shipyard.services.scoring_stats import (
    ScoringStats,
    bucket_latency_ms,
    histogram_percentile,
    latency_bucket,
)
from shipyard.store.endpoint_metrics import EndpointMetricRow
from shipyard.store.endpoints import OnlineDeploymentRow
from tests.api.conftest import Api, problem_code
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.api.test_online_scoring import (
    SCORE,
    _deploy,
    _endpoint,
    _headers,
    _score_url,
    _settled,
    _until,
)
from tests.cli.test_cli import as_admin, invoke
from tests.conftest import RunningServer, start_server, unique

BODY = {"data": [1, 2]}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    thread = start_server(
        tmp_path_factory.mktemp("data"),
        module_database_url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        jobs_enabled=False,
        serving_enabled=True,
        # The flush loop itself runs in these tests, not only flushes called by hand.
        endpoint_metrics_interval_seconds=0.5,
    )
    with thread as running:
        yield running


@pytest.fixture(scope="module")
def services(server: RunningServer) -> Services:
    return server.services


@pytest.fixture(scope="module")
def scored(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One deployment ("blue") taking all the traffic, and known requests sent to it: 5
    answered 200 (3 with the primary key, 2 with the secondary), one 400 (malformed JSON)
    and one 500 (run() raises), both with the primary key; refused callers never reach it."""
    name = unique("ws")
    client = server.client()
    client.workspaces.create(name)
    ws = client.workspace(name)
    root = tmp_path_factory.mktemp("files")
    (root / "model").mkdir()
    (root / "model" / "weights.json").write_text(json.dumps({"factor": 3}))
    (root / "src").mkdir()
    (root / "src" / "score.py").write_text(SCORE)
    ws.models.create("triple", root / "model")
    files = {"ws": ws, "name": name, "root": root}
    endpoint, primary = _endpoint(ws)
    secondary = ws.online_endpoints.list_keys(endpoint).secondary_key
    _deploy(files, endpoint, "blue", all_traffic=True)
    shown = _settled(ws, endpoint, "blue")
    assert shown.provisioning_state == "Succeeded", shown.error
    url = _score_url(server, files, endpoint)
    with httpx.Client(timeout=30) as http:
        for _ in range(3):
            assert http.post(url, json=BODY, headers=_headers(primary)).status_code == 200
        for _ in range(2):
            assert http.post(url, json=BODY, headers=_headers(secondary)).status_code == 200
        malformed = _headers(primary, **{"content-type": "application/json"})
        assert http.post(url, content=b"{nope", headers=malformed).status_code == 400
        assert http.post(url, json={"rows": []}, headers=_headers(primary)).status_code == 500
        assert http.post(url, json=BODY, headers=_headers("shk_wrong")).status_code == 401
        assert http.post(url, json=BODY).status_code == 401
    return {**files, "endpoint": endpoint, "keys": (primary, secondary), "client": client}


def _samples(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(f"{server.url}/metrics", headers=server.auth)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _labels(scored: dict[str, Any], **extra: str) -> tuple[tuple[str, str], ...]:
    base = {"workspace": scored["name"], "endpoint": scored["endpoint"], "deployment": "blue"}
    return tuple(sorted({**base, **extra}.items()))


def test_metrics_shows_the_deployments_counters_and_histogram(
    server: RunningServer, scored: dict[str, Any]
) -> None:
    samples = _samples(server)
    prefix = "shipyard_online_deployment"
    requests = f"{prefix}_requests_total"
    assert samples[(requests, _labels(scored, code="200"))] == 5
    assert samples[(requests, _labels(scored, code="400"))] == 1
    assert samples[(requests, _labels(scored, code="500"))] == 1
    assert not any(name == requests and ("code", "401") in labels for name, labels in samples)
    callers = f"{prefix}_requests_by_credential_total"
    assert samples[(callers, _labels(scored, credential="primary"))] == 5
    assert samples[(callers, _labels(scored, credential="secondary"))] == 2
    histogram = f"{prefix}_request_duration_seconds"
    assert samples[(f"{histogram}_count", _labels(scored))] == 7
    assert samples[(f"{histogram}_bucket", _labels(scored, le="+Inf"))] == 7
    assert 0 < samples[(f"{histogram}_sum", _labels(scored))] < 7 * 5
    # Cumulative buckets: never decreasing towards +Inf.
    bounds = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in samples.items()
        if name == f"{histogram}_bucket" and dict(labels)["endpoint"] == scored["endpoint"]
    )
    assert [v for _, v in bounds] == sorted(v for _, v in bounds)
    assert samples[(f"{prefix}_ready_instances", _labels(scored))] == 1
    assert samples[(f"{prefix}_instance_restarts_total", _labels(scored))] == 0
    # A scraper that asks for OpenMetrics gets it.
    open_metrics = httpx.get(
        f"{server.url}/metrics",
        headers={**server.auth, "Accept": "application/openmetrics-text; version=1.0.0"},
    )
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.rstrip().endswith("# EOF")
    # Nothing the callers sent is exported.
    text = httpx.get(f"{server.url}/metrics", headers=server.auth).text
    assert not any(key in text for key in scored["keys"])


def test_metrics_is_refused_to_anonymous_callers_and_workspace_readers(
    server: RunningServer, scored: dict[str, Any]
) -> None:
    anonymous = httpx.get(f"{server.url}/metrics")
    assert anonymous.status_code == 401
    assert problem_code(anonymous) is not None
    # An endpoint key is not a credential of the server's API.
    assert httpx.get(f"{server.url}/metrics", headers=_headers(scored["keys"][0])).status_code == (
        401
    )
    # A Reader of one workspace does not read every workspace's figures, but its own series.
    with httpx.Client() as http:
        reader = Api(server, http).user_with("Reader", workspace=scored["name"])
    assert httpx.get(f"{server.url}/metrics", headers=reader.headers).status_code == 403
    series = f"/api/v1/workspaces/{scored['name']}/onlineEndpoints/{scored['endpoint']}/metrics"
    assert httpx.get(server.url + series, headers=reader.headers).status_code == 200


def _series_has_everything(scored: dict[str, Any]) -> bool:
    ws = scored["client"].workspace(scored["name"])
    return bool(ws.online_deployments.get_metrics("blue", scored["endpoint"]).summary.requests == 7)


def test_the_store_series_carries_the_requests_after_a_flush(
    server: RunningServer, services: Services, scored: dict[str, Any]
) -> None:
    services.endpoint_metrics.flush()  # on demand; the loop (every 0.5 s) adds nothing twice
    _until(lambda: _series_has_everything(scored), timeout=10)
    with server.db.read() as session:
        rows = session.scalars(
            select(EndpointMetricRow)
            .join(OnlineDeploymentRow, OnlineDeploymentRow.id == EndpointMetricRow.deployment_id)
            .where(OnlineDeploymentRow.name == "blue")
        ).all()
        assert rows
        assert sum(row.requests for row in rows) == 7
        assert all(row.minute.second == 0 and row.minute.tzinfo is not None for row in rows)
    ws = scored["client"].workspace(scored["name"])
    found = ws.online_deployments.get_metrics("blue", scored["endpoint"])
    summary = found.summary
    assert (summary.requests, summary.errors_4xx, summary.errors_5xx) == (7, 1, 1)
    assert summary.error_rate == pytest.approx(2 / 7)
    assert summary.by_credential == {"primary": 5, "secondary": 2}
    assert summary.p50_ms is not None
    assert summary.p95_ms is not None
    assert summary.p99_ms is not None
    assert 0 < summary.p50_ms <= summary.p95_ms <= summary.p99_ms < 30_000
    assert sum(p.requests for p in found.points) == 7
    statuses: dict[str, int] = {}
    for point in found.points:
        for code, count in point.by_status.items():
            statuses[code] = statuses.get(code, 0) + count
    assert statuses == {"200": 5, "400": 1, "500": 1}
    # A flush with nothing new changes nothing.
    services.endpoint_metrics.flush()
    again = ws.online_deployments.get_metrics("blue", scored["endpoint"]).summary
    assert again.requests == 7
    # The endpoint's series: every deployment by name.
    per_endpoint = ws.online_endpoints.get_metrics(scored["endpoint"])
    assert [d.deployment for d in per_endpoint.deployments] == ["blue"]
    assert per_endpoint.deployments[0].summary.requests == 7


def test_online_endpoint_show_summarises_the_last_hour(
    server: RunningServer, scored: dict[str, Any]
) -> None:
    _until(lambda: _series_has_everything(scored), timeout=10)
    cli = ["online-endpoint", "show", "-n", scored["endpoint"], "-w", scored["name"]]
    shown = json.loads(invoke([*cli, "-o", "json"], as_admin(server)).stdout)
    blue = shown["last_hour"]["blue"]
    assert (blue["requests"], blue["errors_4xx"], blue["errors_5xx"]) == (7, 1, 1)
    assert blue["error_rate"] == pytest.approx(2 / 7)
    assert blue["restarts"] == 0
    assert blue["by_credential"] == {"primary": 5, "secondary": 2}
    assert shown["scoring_uri"].endswith(f"/onlineEndpoints/{scored['endpoint']}/score")
    table = invoke(cli, as_admin(server)).stdout
    assert "last_hour.blue.requests" in table
    assert "last_hour.blue.p99_ms" in table


def test_a_killed_instance_counts_as_a_restart(
    server: RunningServer, scored: dict[str, Any]
) -> None:
    ws = scored["client"].workspace(scored["name"])
    endpoint = scored["endpoint"]
    victim = ws.online_deployments.get("blue", endpoint_name=endpoint).instances[0]
    os.kill(victim["pid"], signal.SIGKILL)

    def restarted() -> bool:
        found = ws.online_deployments.get("blue", endpoint_name=endpoint).instances
        return any(i["restarts"] >= 1 and i["state"] == "Ready" for i in found)

    _until(restarted, timeout=60)
    samples = _samples(server)
    assert samples[("shipyard_online_deployment_instance_restarts_total", _labels(scored))] == 1
    assert samples[("shipyard_online_deployment_ready_instances", _labels(scored))] == 1

    def stored() -> bool:
        return bool(ws.online_deployments.get_metrics("blue", endpoint).summary.restarts == 1)

    _until(stored, timeout=10)


def test_a_range_is_checked(server: RunningServer, scored: dict[str, Any]) -> None:
    base = f"{server.url}/api/v1/workspaces/{scored['name']}/onlineEndpoints/{scored['endpoint']}"
    with httpx.Client(headers=server.auth) as http:
        later = datetime.now(UTC).isoformat()
        earlier = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
        backwards = http.get(f"{base}/metrics", params={"since": later, "until": earlier})
        assert backwards.status_code == 400
        assert (backwards.json()["code"], backwards.json()["field"]) == ("invalid_range", "since")
        too_long = http.get(
            f"{base}/deployments/blue/metrics",
            params={"since": "2020-01-01T00:00:00Z", "until": "2020-03-01T00:00:00Z"},
        )
        assert too_long.status_code == 400
        assert too_long.json()["field"] == "since"
        garbled = http.get(f"{base}/metrics", params={"since": "yesterday"})
        assert 400 <= garbled.status_code < 500
        assert "since" in json.dumps(garbled.json())
        # A range in the past holds nothing; a naive time is UTC.
        past = http.get(
            f"{base}/metrics", params={"since": "2020-01-01T00:00:00", "until": "2020-01-02"}
        )
        assert past.status_code == 200, past.text
        assert past.json()["deployments"][0]["summary"]["requests"] == 0
        assert past.json()["since"].startswith("2020-01-01T00:00:00")
        missing = http.get(f"{base}/deployments/green/metrics")
        assert missing.status_code == 404
        assert missing.json()["code"] == "deployment_not_found"
    ws = scored["client"].workspace(scored["name"])
    with pytest.raises(NotFoundError):
        ws.online_endpoints.get_metrics("nowhere")


def test_rows_past_the_retention_are_purged(
    services: Services, server: RunningServer, scored: dict[str, Any]
) -> None:
    _until(lambda: _series_has_everything(scored), timeout=10)
    assert services.endpoint_metrics.purge() == 0  # all within the retention
    later = datetime.now(UTC) + timedelta(days=services.settings.endpoint_metrics_retention_days)
    assert services.endpoint_metrics.purge(later + timedelta(minutes=2)) >= 1
    ws = scored["client"].workspace(scored["name"])
    assert ws.online_deployments.get_metrics("blue", scored["endpoint"]).points == []


# -- the counting itself (no server) ----------------------------------------------------------


def test_fine_latency_buckets_are_within_five_percent() -> None:
    for seconds in (0.0003, 0.002, 0.0137, 0.25, 3.1, 170.0):
        estimate = bucket_latency_ms(latency_bucket(seconds))
        assert estimate == pytest.approx(seconds * 1000, rel=0.05)
    histogram = Counter(latency_bucket(ms / 1000) for ms in range(1, 101))
    assert histogram_percentile(histogram, 0.5) == pytest.approx(50, rel=0.06)
    assert histogram_percentile(histogram, 0.99) == pytest.approx(99, rel=0.06)
    assert histogram_percentile({}, 0.5) is None


def test_taken_minutes_are_handed_over_once() -> None:
    stats = ScoringStats()
    stats.record("d", 200, 0.01, "primary")
    stats.record("d", 503, 0.02)
    taken = stats.take_minutes()
    assert [sum(m.statuses.values()) for m in taken["d"]] == [2]
    assert taken["d"][0].credentials == {"primary": 1}
    assert stats.take_minutes() == {}
    # The cumulative counts are not taken: Prometheus' counters only grow.
    assert stats.snapshot()["d"].by_status == {200: 1, 503: 1}
    assert stats.snapshot()["d"].bucket_counts[-1] == 2
