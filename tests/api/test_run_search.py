"""Searching runs: MLflow's grammar plus OR, parentheses and ordering by metrics, params, tags."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.conftest import RunningServer, unique


@pytest.fixture(scope="module")
def searchable(server: RunningServer) -> str:
    """A workspace with 12 runs: lr, optimizer, team and accuracy vary in known ways."""
    name = unique()
    httpx.post(
        f"{server.url}/api/v1/workspaces", json={"name": name}, headers=server.auth
    ).raise_for_status()
    ws = f"{server.url}/api/v1/workspaces/{name}"
    for i in range(12):
        run = httpx.post(
            f"{ws}/runs",
            json={"experiment": "even" if i % 2 == 0 else "odd", "name": f"run-{i:02d}"},
            headers=server.auth,
        ).json()
        batch = {
            "metrics": [{"key": "accuracy", "value": i / 10, "step": 0}],
            "params": [
                {"key": "lr", "value": str(0.001 * (i + 1))},
                {"key": "optimizer", "value": "adam" if i < 6 else "sgd"},
            ],
            "tags": [{"key": "team", "value": "nlp" if i % 3 == 0 else "vision"}],
        }
        if i == 11:
            batch["metrics"] = []  # one run has no accuracy at all
        httpx.post(
            f"{ws}/runs/{run['id']}/log-batch", json=batch, headers=server.auth
        ).raise_for_status()
        if i in (0, 1):
            httpx.patch(
                f"{ws}/runs/{run['id']}", json={"status": "Completed"}, headers=server.auth
            ).raise_for_status()
    return ws


def _search(server: RunningServer, ws: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{ws}/runs/search", json=body, headers=server.auth)


def _names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["name"] for r in response.json()["items"]]


def test_filters_on_metrics_params_tags_and_attributes(
    server: RunningServer, searchable: str
) -> None:
    got = _names(_search(server, searchable, filter="metrics.accuracy >= 0.8"))
    assert sorted(got) == ["run-08", "run-09", "run-10"]
    got = _names(
        _search(server, searchable, filter="params.optimizer = 'sgd' AND tags.team = 'nlp'")
    )
    assert sorted(got) == ["run-06", "run-09"]
    got = _names(_search(server, searchable, filter="attributes.status = 'FINISHED'"))
    assert sorted(got) == ["run-00", "run-01"]
    got = _names(_search(server, searchable, filter="run_name LIKE 'run-1%'"))
    assert sorted(got) == ["run-10", "run-11"]
    got = _names(_search(server, searchable, filter="run_name LIKE 'RUN-1%'"))
    assert got == [], "LIKE is case-sensitive on every store"
    got = _names(_search(server, searchable, filter="run_name ILIKE 'RUN-1%'"))
    assert sorted(got) == ["run-10", "run-11"]
    got = _names(_search(server, searchable, filter="tags.team IN ('nlp')"))
    assert sorted(got) == ["run-00", "run-03", "run-06", "run-09"]
    got = _names(
        _search(server, searchable, filter="params.missing IS NULL AND run_name = 'run-01'")
    )
    assert got == ["run-01"]


def test_or_and_parentheses(server: RunningServer, searchable: str) -> None:
    got = _names(
        _search(
            server,
            searchable,
            filter="(metrics.accuracy < 0.2 OR metrics.accuracy > 0.95) AND tags.team = 'nlp'",
        )
    )
    assert sorted(got) == ["run-00"]
    got = _names(
        _search(
            server,
            searchable,
            filter="params.optimizer = 'adam' AND tags.team = 'nlp' OR run_name = 'run-11'",
        )
    )
    assert sorted(got) == ["run-00", "run-03", "run-11"]


def test_order_by_metrics_params_and_missing_values_last(
    server: RunningServer, searchable: str
) -> None:
    got = _names(_search(server, searchable, order_by=["metrics.accuracy DESC"]))
    assert got[:3] == ["run-10", "run-09", "run-08"]
    assert got[-1] == "run-11", "a run without the metric sorts last"
    got = _names(_search(server, searchable, order_by=["params.optimizer", "run_name DESC"]))
    assert got[:2] == ["run-05", "run-04"]
    assert got[-1] == "run-06"


def test_experiments_and_paging(server: RunningServer, searchable: str) -> None:
    even = _names(_search(server, searchable, experiments=["even"], order_by=["run_name"]))
    assert even == [f"run-{i:02d}" for i in range(0, 12, 2)]
    seen: list[str] = []
    token = None
    while True:
        page = _search(server, searchable, order_by=["run_name"], max_results=5, page_token=token)
        seen += _names(page)
        token = page.json()["next_page_token"]
        if not token:
            break
    assert seen == [f"run-{i:02d}" for i in range(12)]


def test_a_search_in_an_experiment_reads_that_experiments_runs_only(
    server: RunningServer, searchable: str
) -> None:
    """Through the (workspace, experiment) index, not every run of the workspace: the plan
    SQLite makes for the statement the search sent (PostgreSQL plans by its statistics)."""
    if server.db.engine.dialect.name != "sqlite":
        pytest.skip("the plan checked is SQLite's")
    sent: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if statement.startswith("SELECT jobs.id") and "EXISTS" in statement:
            sent.append((statement, parameters))

    event.listen(server.db.engine, "before_cursor_execute", keep)
    try:
        found = _names(
            _search(server, searchable, experiments=["even"], filter="metrics.accuracy > 0.1")
        )
    finally:
        event.remove(server.db.engine, "before_cursor_execute", keep)
    assert found == ["run-10", "run-08", "run-06", "run-04", "run-02"]
    statement, parameters = sent[-1]
    with server.db.engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    steps = " | ".join(str(row[-1]) for row in plan)
    assert "USING INDEX ix_jobs_workspace_experiment (workspace_id=? AND experiment_id=?)" in steps


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filter": "metrics.accuracy >"}, "filter"),
        ({"filter": "params.lr = 0.1"}, "filter"),
        ({"filter": "colour = 'red'"}, "filter"),
        ({"order_by": ["metrics.accuracy; DROP TABLE jobs"]}, "order_by.0"),
        ({"order_by": ["(SELECT 1)"]}, "order_by.0"),
        ({"filter": "metrics.x > 1; DROP TABLE jobs"}, "filter"),
        ({"page_token": "bogus"}, "page_token"),
    ],
)
def test_bad_searches_are_400_with_a_position(
    server: RunningServer, searchable: str, body: dict[str, Any], field: str
) -> None:
    response = _search(server, searchable, **body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    if field == "filter":
        assert "position" in response.json()["detail"]


def test_injection_attempts_stay_literal_values(server: RunningServer, searchable: str) -> None:
    for hostile in (
        "tags.team = ''' OR ''1''=''1'",
        "tags.team = \"' OR '1'='1\"",
        "run_name = 'x''; DROP TABLE jobs; --'",
    ):
        response = _search(server, searchable, filter=hostile)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:
            assert response.json()["items"] == []
    assert len(_names(_search(server, searchable))) == 12, "nothing was dropped"
