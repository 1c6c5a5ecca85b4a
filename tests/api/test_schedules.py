"""Schedules end to end: REST create/read/enable/disable/delete with bad input as 400s naming
the field, a fire that submits a job which runs to Completed with its trigger time, exactly
one fire with two servers on one store, and the missed-fire policy."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from shipyard.store.database import Database
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.schedules import ScheduleFireRow, ScheduleRow
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.conftest import RunningServer, start_server, unique


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    with start_server(
        tmp_path_factory.mktemp("data"),
        module_database_url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        local_compute_cpus=2,
    ) as running:
        yield running


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=30) as client:
        yield client


@pytest.fixture
def ws(http: httpx.Client) -> str:
    name = unique()
    assert http.post("/api/v1/workspaces", json={"name": name}).status_code == 201
    return name


ECHO = {
    "command": "echo WHEN=${{inputs.when}}",
    "environment": "azureml:shipyard-minimal:1",
    "inputs": {"when": "${{creation_context.trigger_time}}"},
}
EVERY_MINUTE = {"type": "cron", "expression": "* * * * *"}


def create(http: httpx.Client, ws: str, **body: Any) -> httpx.Response:
    return http.post(f"/api/v1/workspaces/{ws}/schedules", json={"name": unique("s"), **body})


def make_due(db: Database, ws_schedule: str, when: datetime) -> None:
    """The schedule's next fire moved to ``when`` (in the past: due now)."""
    with db.write() as session:
        session.execute(
            update(ScheduleRow).where(ScheduleRow.name == ws_schedule).values(next_fire_at=when)
        )


def wait_for_fires(http: httpx.Client, ws: str, name: str, count: int = 1) -> list[Any]:
    deadline = time.monotonic() + 20
    while True:
        fires = http.get(f"/api/v1/workspaces/{ws}/schedules/{name}/fires").json()["items"]
        if len(fires) >= count and all(f["job_name"] or f["error"] for f in fires):
            return list(fires)
        assert time.monotonic() < deadline, f"schedule {name} fired {fires}"
        time.sleep(0.1)


def minute_floor(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def test_a_schedule_shows_its_next_five_fires_and_can_be_disabled_enabled_and_deleted(
    http: httpx.Client, ws: str
) -> None:
    daily = {"hours": [2], "minutes": [30]}
    trigger = {"type": "recurrence", "frequency": "day", "schedule": daily,
               "time_zone": "Europe/Paris"}  # fmt: skip
    made = create(http, ws, trigger=trigger, create_job=ECHO, tags={"team": "ml"})
    assert made.status_code == 201, made.text
    name = made.json()["name"]
    shown = http.get(f"/api/v1/workspaces/{ws}/schedules/{name}").json()
    upcoming = [datetime.fromisoformat(t) for t in shown["upcoming_fire_times"]]
    assert len(upcoming) == 5
    gaps = {b - a for a, b in itertools.pairwise(upcoming)}
    assert gaps <= {timedelta(days=1), timedelta(hours=23), timedelta(hours=25)}
    assert {t.astimezone(UTC).hour for t in upcoming} <= {0, 1}  # 02:30 Paris, CET or CEST
    assert shown["is_enabled"]
    assert shown["tags"] == {"team": "ml"}
    assert "name" not in shown["create_job"]
    listed = http.get(f"/api/v1/workspaces/{ws}/schedules").json()["items"]
    assert [s["name"] for s in listed] == [name]

    off = http.post(f"/api/v1/workspaces/{ws}/schedules/{name}/disable").json()
    assert not off["is_enabled"]
    assert off["next_fire_time"] is None
    on = http.post(f"/api/v1/workspaces/{ws}/schedules/{name}/enable").json()
    assert on["is_enabled"]
    assert on["next_fire_time"] is not None
    assert http.delete(f"/api/v1/workspaces/{ws}/schedules/{name}").status_code == 204
    missing = http.get(f"/api/v1/workspaces/{ws}/schedules/{name}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "schedule_not_found"


@pytest.mark.parametrize(
    ("trigger", "create_job", "field"),
    [
        ({"type": "cron", "expression": "0 25 * * *"}, ECHO, "trigger.expression"),
        ({"type": "cron", "expression": "0 2 * *"}, ECHO, "trigger.expression"),
        ({**EVERY_MINUTE, "time_zone": "Atlantis/Lost"}, ECHO, "trigger.time_zone"),
        (
            {"type": "recurrence", "frequency": "day", "time_zone": "Nowhere"},
            ECHO,
            "trigger.time_zone",
        ),
        (EVERY_MINUTE, {**ECHO, "inputs": {"bad name!": 1}}, "create_job.inputs"),
        (EVERY_MINUTE, {**ECHO, "no_such_key": 1}, "create_job.no_such_key"),
        (EVERY_MINUTE, "./job.yml", "create_job"),  # a local file is the CLI's and SDK's
        (EVERY_MINUTE, {"job": "./job.yml", "inputs": {}}, "create_job.job"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    http: httpx.Client, ws: str, trigger: Any, create_job: Any, field: str
) -> None:
    response = create(http, ws, trigger=trigger, create_job=create_job)
    assert response.status_code == 400, response.text
    assert response.json()["field"].startswith(field), response.json()


def wait_for_job(http: httpx.Client, ws: str, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        job: dict[str, Any] = http.get(f"/api/v1/workspaces/{ws}/jobs/{name}").json()
        if job["status"] in ("Completed", "Failed", "Canceled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def test_an_existing_job_is_a_template_submitted_again_with_changes(
    server: RunningServer, http: httpx.Client, ws: str
) -> None:
    jobs = f"/api/v1/workspaces/{ws}/jobs"
    command = {"command": "echo LR=${{inputs.lr}}", "inputs": {"lr": 0.1},
               "experiment_name": "templates"}  # fmt: skip
    original = http.post(jobs, json=command).json()["name"]
    say = {"command": "echo N=${{inputs.n}}", "inputs": {"n": "${{parent.inputs.n}}"}}
    pipeline = {"type": "pipeline", "inputs": {"n": 1}, "jobs": {"say": say}}
    made_pipeline = http.post(jobs, json=pipeline)
    assert made_pipeline.status_code == 201, made_pipeline.text
    by_name = create(http, ws, trigger=EVERY_MINUTE, create_job=f"azureml:{original}",
                     overrides={"inputs.lr": 0.7})  # fmt: skip
    assert by_name.status_code == 201, by_name.text
    assert by_name.json()["create_job"]["command"] == command["command"]
    assert by_name.json()["create_job"]["inputs"] == {"lr": 0.7}
    with_changes = create(
        http, ws, trigger=EVERY_MINUTE,
        create_job={"type": "pipeline", "job": f"azureml:{made_pipeline.json()['name']}",
                    "inputs": {"n": 5}, "tags": {"made_by": "schedule"}},
    )  # fmt: skip
    assert with_changes.status_code == 201, with_changes.text
    due = minute_floor(datetime.now(UTC))
    for made in (by_name, with_changes):
        make_due(server.db, made.json()["name"], due)
    [command_fire] = wait_for_fires(http, ws, by_name.json()["name"])
    [pipeline_fire] = wait_for_fires(http, ws, with_changes.json()["name"])
    assert command_fire["error"] is None
    assert pipeline_fire["error"] is None
    fired = wait_for_job(http, ws, command_fire["job_name"])
    assert fired["status"] == "Completed", fired
    assert fired["experiment_name"] == "templates"
    assert "LR=0.7" in http.get(f"{jobs}/{fired['name']}/logs").text
    fired_pipeline = wait_for_job(http, ws, pipeline_fire["job_name"])
    assert fired_pipeline["status"] == "Completed", fired_pipeline
    assert fired_pipeline["tags"] == {"made_by": "schedule"}
    step = fired_pipeline["steps"]["say"]
    assert "N=5" in http.get(f"{jobs}/{step}/logs").text


def test_templates_that_cannot_be_used_are_refused_naming_the_field(
    http: httpx.Client, ws: str
) -> None:
    jobs = f"/api/v1/workspaces/{ws}/jobs"
    pipeline = {"type": "pipeline", "jobs": {"only": {"command": "true"}}}
    made = http.post(jobs, json=pipeline).json()
    step = made["steps"]["only"]
    cases = [
        (f"azureml:{step}", 400, "create_job", "template_unavailable"),
        ("azureml:no-such-job", 404, "create_job", "job_not_found"),
        ({"type": "command", "job": f"azureml:{made['name']}"}, 400, "create_job.type",
         "type_mismatch"),
        ({"job": f"azureml:{made['name']}", "jobs": {"only": {"inputs": 5}}}, 400,
         "create_job.jobs.only.inputs", "invalid_create_job"),
    ]  # fmt: skip
    for create_job, status, field, code in cases:
        refused = create(http, ws, trigger=EVERY_MINUTE, create_job=create_job)
        assert refused.status_code == status, (create_job, refused.text)
        assert (refused.json()["field"], refused.json()["code"]) == (field, code), refused.json()


def test_a_schedule_submits_a_sweep(server: RunningServer, http: httpx.Client, ws: str) -> None:
    sweep = {
        "type": "sweep",
        "trial": {"command": "echo lr=${{search_space.lr}}"},
        "search_space": {"lr": {"type": "choice", "values": [0.1, 0.2]}},
        "objective": {"goal": "maximize", "primary_metric": "acc"},
        "limits": {"max_total_trials": 1},
    }
    made = create(http, ws, trigger=EVERY_MINUTE, create_job=sweep)
    assert made.status_code == 201, made.text
    make_due(server.db, made.json()["name"], minute_floor(datetime.now(UTC)))
    [fire] = wait_for_fires(http, ws, made.json()["name"])
    assert fire["error"] is None, fire
    job = wait_for_job(http, ws, fire["job_name"])
    assert job["type"] == "sweep"
    assert job["sweep"]["search_space"] == sweep["search_space"]
    # No trial logs acc: the sweep ends Failed, having run its one trial.
    trials = http.get(f"/api/v1/workspaces/{ws}/jobs", params={"parent_job_name": job["name"]})
    assert [t["status"] for t in trials.json()["items"]] == ["Completed"]


def test_a_bad_trigger_shape_and_a_taken_name_are_refused(http: httpx.Client, ws: str) -> None:
    bad = create(http, ws, trigger={"type": "recurrence", "frequency": "fortnight"},
                 create_job=ECHO)  # fmt: skip
    assert bad.status_code in (400, 422)
    assert "frequency" in bad.text
    made = create(http, ws, trigger=EVERY_MINUTE, create_job=ECHO).json()
    again = http.post(
        f"/api/v1/workspaces/{ws}/schedules",
        json={"name": made["name"], "trigger": EVERY_MINUTE, "create_job": ECHO},
    )
    assert again.status_code == 409


def test_a_fire_submits_a_job_that_completes_with_its_trigger_time(
    server: RunningServer, http: httpx.Client, ws: str
) -> None:
    made = create(http, ws, trigger=EVERY_MINUTE, create_job=ECHO,
                  overrides={"display_name": "nightly"}).json()  # fmt: skip
    fire_time = minute_floor(datetime.now(UTC))
    make_due(server.db, made["name"], fire_time)
    [fire] = wait_for_fires(http, ws, made["name"])
    assert fire["error"] is None
    assert fire["skipped"] == 0
    assert datetime.fromisoformat(fire["fire_time"]) == fire_time
    stamp = fire_time.isoformat().replace("+00:00", "Z")
    deadline = time.monotonic() + 120
    while True:
        job = http.get(f"/api/v1/workspaces/{ws}/jobs/{fire['job_name']}").json()
        if job["status"] in ("Completed", "Failed", "Canceled"):
            break
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "Completed", job
    assert job["display_name"] == "nightly"
    log = http.get(f"/api/v1/workspaces/{ws}/jobs/{fire['job_name']}/logs").text
    assert f"WHEN={stamp}" in log
    shown = http.get(f"/api/v1/workspaces/{ws}/schedules/{made['name']}").json()
    assert datetime.fromisoformat(shown["last_fire_time"]) == fire_time
    assert datetime.fromisoformat(shown["next_fire_time"]) > fire_time


def test_missed_fires_fire_once_for_the_most_recent_and_count_the_others(
    server: RunningServer, http: httpx.Client, ws: str
) -> None:
    now = minute_floor(datetime.now(UTC))
    trigger = {**EVERY_MINUTE, "start_time": (now - timedelta(hours=2)).isoformat()}
    made = create(http, ws, trigger=trigger, create_job={"command": "true"}).json()
    make_due(server.db, made["name"], now - timedelta(minutes=30))
    [fire] = wait_for_fires(http, ws, made["name"])
    latest = datetime.fromisoformat(fire["fire_time"])
    # The most recent missed minute (the clock may have turned one minute meanwhile).
    assert latest - now in (timedelta(0), timedelta(minutes=1))
    assert fire["skipped"] == 30 + (latest - now) // timedelta(minutes=1)
    assert fire["job_name"] is not None


def test_a_job_that_cannot_be_submitted_is_recorded_on_the_fire(
    server: RunningServer, http: httpx.Client, ws: str
) -> None:
    spec = {"command": "true", "compute": "azureml:no-such-compute"}
    made = create(http, ws, trigger=EVERY_MINUTE, create_job=spec).json()
    make_due(server.db, made["name"], minute_floor(datetime.now(UTC)))
    [fire] = wait_for_fires(http, ws, made["name"])
    assert fire["job_name"] is None
    assert "no-such-compute" in fire["error"]


def test_two_servers_on_one_store_fire_each_due_fire_once(
    tmp_path: Path, database_url: str
) -> None:
    first, second = start_server(tmp_path / "a", database_url, jobs_enabled=False), None
    with first as one:
        second = start_server(tmp_path / "b", database_url, jobs_enabled=False)
        with second as two, httpx.Client(base_url=one.url, headers=one.auth) as http:
            ws = unique()
            http.post("/api/v1/workspaces", json={"name": ws}).raise_for_status()
            names = [
                create(http, ws, trigger=EVERY_MINUTE, create_job={"command": "true"}).json()[
                    "name"
                ]
                for _ in range(8)
            ]
            due = minute_floor(datetime.now(UTC))
            for name in names:
                make_due(one.db, name, due)
            # Besides both servers' loops, both services fire at once from several threads.
            services = [first.app.state.services, second.app.state.services]
            threads = [
                threading.Thread(target=s.schedules.fire_due) for s in services for _ in range(3)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for name in names:
                wait_for_fires(http, ws, name)
            time.sleep(1.5)  # a late duplicate from either loop would show by now
            with one.db.read() as session:
                times = list(session.scalars(select(ScheduleFireRow.fire_time)))
                jobs = session.scalar(select(func.count()).select_from(JobSubmissionRow))
            # Each schedule fired the due minute once. On a slow machine the test can outlast
            # that minute, and the loops then fire the next one too (every minute, once):
            # what must never happen is a fire starting two jobs.
            assert sum(t == due for t in times) == len(names)
            assert all(t >= due for t in times)
            assert jobs == len(times)
            assert two.url != one.url
