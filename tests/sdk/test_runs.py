"""Logging runs from Python against a real server: statuses, batching, errors, reading back."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard import Client
from shipyard.domain.errors import InvalidInputError, ShipyardError, UnavailableError
from shipyard.sdk.runs import Run, RunList
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.conftest import ADMIN_TOKEN, RunningServer, start_server, unique

# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture
def ws(admin: Client) -> WorkspaceHandle:
    name = unique()
    admin.workspaces.create(name=name)
    return admin.workspace(name)


def rest_run(server: RunningServer, ws: WorkspaceHandle, run_id: str) -> dict[str, Any]:
    """The run as the REST API shows it (not through the SDK under test)."""
    response = httpx.get(
        f"{server.url}/api/v1/workspaces/{ws.name}/runs/{run_id}", headers=server.auth
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def rest_history(
    server: RunningServer, ws: WorkspaceHandle, run_id: str, key: str
) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/api/v1/workspaces/{ws.name}/runs/{run_id}/metrics/{key}",
        headers=server.auth,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


# ---------------------------------------------------------------------------------------------
# The run's life: the context manager sets the final status


def test_a_run_that_ends_normally_is_completed(server: RunningServer, ws: WorkspaceHandle) -> None:
    with ws.start_run(experiment="life", name="ok", tags={"team": "nlp"}) as run:
        assert run.info.status == "Running"
        assert run.name == "ok"
        assert run.experiment == "life"
        run.log_metric("loss", 0.5)
    stored = rest_run(server, ws, run.id)
    assert stored["status"] == "Completed"
    assert stored["end_time"] is not None
    assert stored["tags"] == {"team": "nlp"}
    assert stored["metrics"]["loss"]["value"] == 0.5
    assert run.info.status == "Completed"


def test_a_run_whose_block_raises_is_failed_and_the_error_goes_on(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    started: list[Run] = []

    def train() -> None:
        with ws.start_run(experiment="life") as run:
            started.append(run)
            run.log_metric("loss", math.inf, step=3)
            raise ValueError("diverged")

    with pytest.raises(ValueError, match="diverged"):
        train()
    stored = rest_run(server, ws, started[0].id)
    assert stored["status"] == "Failed"
    assert stored["metrics"]["loss"]["value"] == "Infinity"  # flushed before failing


def test_a_keyboard_interrupt_cancels_the_run(server: RunningServer, ws: WorkspaceHandle) -> None:
    with pytest.raises(KeyboardInterrupt), ws.start_run(experiment="life") as run:
        raise KeyboardInterrupt
    assert rest_run(server, ws, run.id)["status"] == "Canceled"


def test_end_sets_the_status_once_and_logging_afterwards_is_refused(ws: WorkspaceHandle) -> None:
    run = ws.start_run(experiment="life")
    run.log_param("a", 1)
    assert run.end("Canceled").status == "Canceled"
    assert run.end("Completed").status == "Canceled"  # ending twice does nothing more
    with pytest.raises(ShipyardError) as caught:
        run.log_metric("late", 1.0)
    assert caught.value.code == "run_ended"


def test_refresh_flushes_and_reads_the_run_again(ws: WorkspaceHandle) -> None:
    with ws.start_run(experiment="life") as run:
        run.set_tag("phase", "train")
        assert run.refresh().tags == {"phase": "train"}
        assert run.info.tags == {"phase": "train"}


# ---------------------------------------------------------------------------------------------
# What is logged arrives


def test_metrics_params_and_tags_arrive_after_flush(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    with ws.start_run(experiment="logging") as run:
        before = int(time.time() * 1000)
        run.log_metric("acc", 1)  # an int goes through float()
        after = int(time.time() * 1000)
        run.log_metric("acc", 0.75, step=2, timestamp=1_700_000_000_000)
        run.log_metrics({"p": 0.1, "r": 0.2}, step=5)
        run.log_param("lr", 0.01)
        run.log_params({"optimizer": "adam", "layers": 3, "dropout": None})
        run.set_tag("team", "nlp")
        run.set_tags({"stage": "dev", "version": 2})
        run.set_tag("stage", "prod")  # a later value wins
        run.flush()
        stored = rest_run(server, ws, run.id)
        assert stored["params"] == {
            "lr": "0.01",
            "optimizer": "adam",
            "layers": "3",
            "dropout": "None",
        }
        assert stored["tags"] == {"team": "nlp", "stage": "prod", "version": "2"}
        assert stored["metrics"]["acc"] == {
            "value": 0.75,
            "step": 2,
            "timestamp": 1_700_000_000_000,
        }
        assert stored["metrics"]["p"]["step"] == stored["metrics"]["r"]["step"] == 5
        points = rest_history(server, ws, run.id, "acc")["points"]
        assert [(p["step"], p["value"]) for p in points] == [(0, 1.0), (2, 0.75)]
        # Step 0 by default (as MLflow), and the time of the call, not of the send.
        assert before <= points[0]["timestamp"] <= after


def test_nan_and_infinities_round_trip(server: RunningServer, ws: WorkspaceHandle) -> None:
    with ws.start_run(experiment="logging") as run:
        run.log_metric("x", math.nan, step=0)
        run.log_metric("x", math.inf, step=1)
        run.log_metric("x", -math.inf, step=2)
        run.log_metric("x", 1.5, step=3)
        run.log_metric("last", math.nan)
        values = [p.value for p in run.get_metric_history("x")]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf, 1.5]
    info = ws.jobs.get(run.id)
    assert math.isnan(info.metrics["last"].value)
    assert rest_history(server, ws, run.id, "x")["points"][0]["value"] == "NaN"


def test_more_than_a_thousand_metrics_in_one_flush_are_sent_in_chunks(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    with ws.start_run(experiment="logging") as run:
        for step in range(2500):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_params({f"p{i}": i for i in range(250)})  # over the 100-params limit too
        run.set_tags({f"t{i}": i for i in range(250)})
        run.flush()
        history = rest_history(server, ws, run.id, "loss")
        assert history["total_points"] == 2500
        assert [p["step"] for p in history["points"]] == list(range(2500))
        stored = rest_run(server, ws, run.id)
        assert len(stored["params"]) == 250
        assert len(stored["tags"]) == 250


def test_a_full_queue_blocks_the_caller_and_drops_nothing(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    with ws.start_run(experiment="logging", max_queue=10) as run:
        for step in range(3000):
            run.log_metric("m", step, step=step)
    assert rest_history(server, ws, run.id, "m")["total_points"] == 3000


def test_many_keys_interleaved_with_params_and_tags(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    with ws.start_run(experiment="logging") as run:
        for step in range(1500):
            run.log_metrics({"a": step, "b": -step}, step=step)
            if step % 500 == 0:
                run.log_param(f"at{step}", step)
                run.set_tag("last", step)
    assert rest_history(server, ws, run.id, "a")["total_points"] == 1500
    assert rest_history(server, ws, run.id, "b")["total_points"] == 1500
    stored = rest_run(server, ws, run.id)
    assert stored["params"] == {"at0": "0", "at500": "500", "at1000": "1000"}
    assert stored["tags"] == {"last": "1000"}


def test_a_bad_key_is_refused_at_the_call(ws: WorkspaceHandle) -> None:
    with ws.start_run(experiment="logging") as run:
        with pytest.raises(InvalidInputError):
            run.log_metric("", 1.0)
        with pytest.raises(InvalidInputError):
            run.log_param("k" * 251, 1)
        with pytest.raises(InvalidInputError):
            run.set_tag("big", "v" * 8001)
        with pytest.raises(ValueError, match="could not convert"):
            run.log_metric("m", "not a number")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Errors from the background thread are raised, never lost


def test_a_changed_param_is_raised_on_flush_as_the_typed_error(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    with ws.start_run(experiment="errors") as run:
        run.log_param("lr", 0.1)
        run.flush()
        run.log_param("lr", 0.1)  # the same value again is fine
        run.log_param("lr", 0.2)
        run.log_metric("still", 1.0)  # metrics around it are not lost
        with pytest.raises(InvalidInputError) as caught:
            run.flush()
        assert caught.value.code == "param_changed"
        run.flush()  # the error was reported once
    stored = rest_run(server, ws, run.id)
    assert stored["params"] == {"lr": "0.1"}
    assert stored["metrics"]["still"]["value"] == 1.0
    assert stored["status"] == "Completed"


def test_a_param_changed_within_one_batch_is_refused_too(ws: WorkspaceHandle) -> None:
    run = ws.start_run(experiment="errors")
    run.log_param("seed", 1)
    run.log_param("seed", 2)  # queued together: must not collapse to the last value
    with pytest.raises(InvalidInputError) as caught:
        run.flush()
    assert caught.value.code == "param_changed"
    run.end()
    assert ws.jobs.get(run.id).params == {"seed": "1"}


def test_an_error_not_flushed_is_raised_when_the_block_ends_and_fails_the_run(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    started: list[Run] = []

    def train() -> None:
        with ws.start_run(experiment="errors") as run:
            started.append(run)
            run.log_param("seed", 1)
            run.flush()
            run.log_param("seed", 2)

    with pytest.raises(InvalidInputError) as caught:
        train()
    assert caught.value.code == "param_changed"
    assert rest_run(server, ws, started[0].id)["status"] == "Failed"


def test_logging_to_a_deleted_run_is_a_conflict_on_flush(ws: WorkspaceHandle) -> None:
    run = ws.start_run(experiment="errors")
    ws.jobs.delete(run.id)
    run.log_metric("m", 1.0)
    with pytest.raises(ShipyardError) as caught:
        run.flush()
    assert caught.value.code == "run_deleted"
    assert ws.jobs.restore(run.id).lifecycle_stage == "active"
    run.end()


def test_flush_after_the_server_stopped_raises_unavailable(
    tmp_path: Path, database_url: str
) -> None:
    with start_server(tmp_path, database_url) as running:
        client = running.client()
        client.workspaces.create(name="gone")
        run = client.workspace("gone").start_run(experiment="e")
        run.log_metric("m", 1.0)
        run.flush()
    for step in range(2500):
        run.log_metric("m", 2.0, step=step)
    with pytest.raises(UnavailableError) as caught:
        run.flush()  # returns after a few quick connection retries, not a long wait
    assert caught.value.code == "unreachable"
    assert "not sent" in caught.value.detail
    with pytest.raises(UnavailableError):
        run.end()
    client.close()


def test_flush_with_a_timeout_gives_up(tmp_path: Path, database_url: str) -> None:
    with start_server(tmp_path, database_url) as running:
        client = running.client()
        client.workspaces.create(name="slow")
        run = client.workspace("slow").start_run(experiment="e")
    run.log_metric("m", 1.0)
    with pytest.raises(UnavailableError) as caught:
        run.flush(timeout=0.01)
    assert caught.value.code in {"flush_timeout", "unreachable"}
    client.close()


# ---------------------------------------------------------------------------------------------
# Interpreter exit: queued values are sent, unended runs are ended, a dead server cannot hang it


def _python(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def test_at_exit_the_queue_is_sent_and_the_run_completed(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    script = f"""
        import sys
        from shipyard import Client
        run = Client({server.url!r}, {ADMIN_TOKEN!r}).workspace({ws.name!r}).start_run("exit")
        for step in range(1500):
            run.log_metric("m", step, step=step)
        run.log_param("p", 1)
        print(run.id)
    """
    done = _python(script)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    stored = rest_run(server, ws, run_id)
    assert stored["status"] == "Completed"
    assert stored["params"] == {"p": "1"}
    assert rest_history(server, ws, run_id, "m")["total_points"] == 1500


def test_at_exit_after_an_uncaught_error_the_run_is_failed(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    script = f"""
        from shipyard import Client
        run = Client({server.url!r}, {ADMIN_TOKEN!r}).workspace({ws.name!r}).start_run("exit")
        print(run.id, flush=True)
        run.log_metric("m", 1.0)
        raise SystemError("boom")
    """
    done = _python(script)
    assert done.returncode == 1
    run_id = done.stdout.strip()
    stored = rest_run(server, ws, run_id)
    assert stored["status"] == "Failed"
    assert stored["metrics"]["m"]["value"] == 1.0


def test_exit_does_not_hang_when_the_server_is_gone(tmp_path: Path, database_url: str) -> None:
    with start_server(tmp_path, database_url) as running:
        with running.client() as client:
            client.workspaces.create(name="gone")
        script = f"""
            import time
            from shipyard import Client
            run = Client({running.url!r}, {ADMIN_TOKEN!r}).workspace("gone").start_run("e")
            print(run.id, flush=True)
            time.sleep(3)  # the server stops meanwhile
            for step in range(5000):
                run.log_metric("m", step, step=step)
        """
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        process.stdout.readline()
    # The server is gone now; the child must still exit on its own.
    process.communicate(timeout=120)
    assert process.returncode == 0


# ---------------------------------------------------------------------------------------------
# Nesting and reading back


def test_nested_runs(ws: WorkspaceHandle) -> None:
    with ws.start_run(experiment="nested", name="sweep") as parent:
        for i in range(3):
            with ws.start_run(experiment="nested", name=f"trial-{i}", parent_run=parent) as child:
                child.log_metric("score", i)
                assert child.info.parent_run_id == parent.id
        with ws.start_run(experiment="nested", parent_run=parent.id) as by_id:
            assert by_id.info.parent_run_id == parent.id
    children = list(ws.jobs.list(parent_run_id=parent.id))
    assert len(children) == 4
    assert {c.status for c in children} == {"Completed"}


def test_get_metric_history_thins_with_max_points(ws: WorkspaceHandle) -> None:
    with ws.start_run(experiment="history") as run:
        for step in range(1000):
            run.log_metric("wave", math.sin(step / 50), step=step)
        everything = run.get_metric_history("wave")
        thinned = run.get_metric_history("wave", max_points=50)
    assert len(everything) == 1000
    assert 3 <= len(thinned) <= 50
    assert thinned[0].step == 0
    assert thinned[-1].step == 999
    assert ws.jobs.get_metric_history(run.id, "wave", max_points=50) == thinned
    assert ws.jobs.get_metric_history(run.id, "missing") == []


def test_jobs_list_iterates_every_page(ws: WorkspaceHandle) -> None:
    ids = set()
    for i in range(5):
        with ws.start_run(experiment="paged", name=f"r{i}") as run:
            ids.add(run.id)
    with ws.start_run(experiment="other"):
        pass
    listed = list(ws.jobs.list(experiment="paged", page_size=2))
    assert {r.id for r in listed} == ids
    assert len(listed) == 5
    assert len(list(ws.jobs.list(page_size=2))) == 6


def test_jobs_get_update_delete_restore(ws: WorkspaceHandle) -> None:
    run = ws.start_run(experiment="ops", name="before")
    assert ws.jobs.get(run.id).name == "before"
    assert ws.jobs.update(run.id, name="after").name == "after"
    ws.jobs.delete(run.id)
    assert ws.jobs.get(run.id).lifecycle_stage == "deleted"
    assert ws.jobs.restore(run.id).lifecycle_stage == "active"
    run.end()
    assert ws.jobs.get(run.id).status == "Completed"


# ---------------------------------------------------------------------------------------------
# Search and tables


@pytest.fixture
def searchable(ws: WorkspaceHandle) -> WorkspaceHandle:
    for i, (optimizer, team) in enumerate(
        [("adam", "nlp"), ("sgd", "nlp"), ("adam", "vision"), ("sgd", "vision")]
    ):
        with ws.start_run(experiment="search", name=f"r{i}", tags={"team": team}) as run:
            run.log_param("optimizer", optimizer)
            run.log_metric("accuracy", 0.6 + i / 10)
    with ws.start_run(experiment="elsewhere", name="x") as run:
        run.log_metric("accuracy", 0.99)
    return ws


def test_search_filters_orders_and_limits(searchable: WorkspaceHandle) -> None:
    ws = searchable
    found = ws.jobs.search(
        filter="metrics.accuracy > 0.65 AND (params.optimizer = 'adam' OR tags.team = 'nlp')",
        order_by=["metrics.accuracy DESC"],
        experiments=["search"],
    )
    assert isinstance(found, RunList)
    assert [r.name for r in found] == ["r2", "r1"]
    assert [r.name for r in ws.jobs.search(order_by="metrics.accuracy DESC", max_results=2)] == [
        "x",
        "r3",
    ]
    assert len(ws.jobs.search(experiments="search")) == 4
    assert len(ws.jobs.search(experiments="search", page_size=1)) == 4  # pages are followed
    assert len(ws.jobs.search(max_results=3, page_size=2)) == 3
    with pytest.raises(InvalidInputError):
        ws.jobs.search(filter="metrics.accuracy >>> 1")


def test_to_pandas_has_mlflow_like_columns(searchable: WorkspaceHandle) -> None:
    pytest.importorskip("pandas")
    frame = searchable.jobs.search(experiments=["search"], order_by=["attributes.run_name"])
    table = frame.to_pandas()
    assert list(table.columns) == [
        "run_id",
        "name",
        "experiment",
        "parent_run_id",
        "status",
        "start_time",
        "end_time",
        "params.optimizer",
        "metrics.accuracy",
        "tags.team",
    ]
    assert list(table["name"]) == ["r0", "r1", "r2", "r3"]
    assert list(table["params.optimizer"]) == ["adam", "sgd", "adam", "sgd"]
    assert list(table["metrics.accuracy"]) == pytest.approx([0.6, 0.7, 0.8, 0.9])
    assert str(table["start_time"].dtype).startswith("datetime64")
    assert list(RunList().to_pandas().columns)[:3] == ["run_id", "name", "experiment"]


def test_to_pandas_without_pandas_says_what_to_install(
    searchable: WorkspaceHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = searchable.jobs.search(experiments=["search"])
    monkeypatch.setitem(sys.modules, "pandas", None)  # importing it now fails
    with pytest.raises(ImportError, match="pip install pandas"):
        found.to_pandas()


# ---------------------------------------------------------------------------------------------
# Experiments


def test_experiments_create_get_list_update_delete_restore(ws: WorkspaceHandle) -> None:
    created = ws.experiments.create("exp-a", tags={"team": "nlp"})
    assert created.name == "exp-a"
    assert ws.experiments.get("exp-a").tags == {"team": "nlp"}
    ws.experiments.create("exp-b")
    assert {"exp-a", "exp-b"} <= {e.name for e in ws.experiments.list(page_size=1)}
    renamed = ws.experiments.update("exp-a", new_name="exp-c", tags={"team": "cv"})
    assert (renamed.name, renamed.tags) == ("exp-c", {"team": "cv"})
    assert ws.experiments.update("exp-c").tags == {"team": "cv"}  # nothing given, nothing lost
    ws.experiments.delete("exp-c")
    assert "exp-c" not in {e.name for e in ws.experiments.list()}
    assert "exp-c" in {e.name for e in ws.experiments.list(deleted=True)}
    assert ws.experiments.restore("exp-c").lifecycle_stage == "active"


def test_start_run_creates_its_experiment(ws: WorkspaceHandle) -> None:
    with ws.start_run(experiment="made-by-run"):
        pass
    assert ws.experiments.get("made-by-run").lifecycle_stage == "active"
    with ws.start_run() as run:
        assert run.experiment == "Default"


def test_an_unknown_parent_is_not_found(ws: WorkspaceHandle) -> None:
    with pytest.raises(ShipyardError) as caught:
        ws.start_run(parent_run="0" * 32)
    assert caught.value.code == "run_not_found"
