"""Runs from Python: ``ws.start_run`` (a live run you log to) and ``ws.jobs`` (read, search).

Example::

    ws = client.workspace("churn")
    with ws.start_run(experiment="baseline", name="lr-0.1") as run:
        run.log_params({"lr": 0.1, "optimizer": "adam"})
        for step in range(1000):
            run.log_metric("loss", loss, step=step)
    # the run is now Completed (Failed if the block raised, Canceled on Ctrl-C)

    best = ws.jobs.search(filter="metrics.loss < 0.2", order_by=["metrics.loss ASC"])
    best.to_pandas()
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TextIO
from urllib.parse import quote

from shipyard.domain.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.schemas.common import Page
from shipyard.schemas.jobs import JobRead
from shipyard.schemas.tracking import MetricHistory, MetricPoint, RunRead
from shipyard.sdk import run_logger
from shipyard.sdk.artifacts import ArtifactWritten, RunArtifacts
from shipyard.sdk.http import HttpSession
from shipyard.sdk.jobs import JobDefinition, JobSubmissions
from shipyard.sdk.run_logger import DEFAULT_MAX_QUEUE, RunLogger
from shipyard.sdk.uploads import UploadProgress

if TYPE_CHECKING:
    from pandas import DataFrame  # type: ignore[import-untyped, import-not-found, unused-ignore]

__all__ = ["JobOperations", "Run", "RunList", "RunRead"]

MAX_KEY_LENGTH, MAX_VALUE_LENGTH = 250, 8000
EndStatus = Literal["Completed", "Failed", "Canceled"]
Points = list[MetricPoint]


def _runs_path(workspace: str) -> str:
    return f"/api/v1/workspaces/{quote(workspace, safe='')}/runs"


def _history(http: HttpSession, base: str, run_id: str, key: str, max_points: int | None) -> Points:
    path = f"{base}/{quote(run_id, safe='')}/metrics/{quote(key, safe='')}"
    params = {"max_points": max_points} if max_points is not None else None
    return http.get_model(path, MetricHistory, params=params).points


class Run:
    """A live run: log metrics, params and tags to it, then end it.

    Logging is asynchronous and batched: ``log_*`` and ``set_tag*`` put the values on a
    bounded in-memory queue (``max_queue`` items, 100,000 by default) and return at once; a
    background thread sends them in ``log-batch`` calls, at least every second. When the queue
    is full the ``log_*`` call **blocks** until there is room: nothing is ever dropped while
    the server answers. ``flush()`` waits until everything logged so far is stored and raises
    the first error the server reported (e.g. ``InvalidInputError`` with code
    ``param_changed``); the run also flushes when it ends and at interpreter exit (waiting at
    most 10 s there, so a server that is gone cannot hold the exit).

    Use it as a context manager (``with ws.start_run(...) as run:``): at the end of the block
    the run is flushed and marked ``Completed``; if the block raises, ``Failed`` (``Canceled``
    for ``KeyboardInterrupt``) and the exception goes on. If flushing fails at the end of a
    block that succeeded, the run is marked ``Failed`` and the error is raised. A run that is
    never ended is ended at interpreter exit like MLflow's: ``Completed``, or ``Failed`` after
    an uncaught exception.
    """

    def __init__(
        self,
        http: HttpSession,
        workspace: str,
        info: RunRead,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        self._http = http
        self._info = info
        self.workspace = workspace
        self._base = _runs_path(workspace)
        self._path = f"{self._base}/{quote(info.id, safe='')}"
        self._logger = RunLogger(http, self._path + "/log-batch", max_queue=max_queue)
        self._ended = False
        self._keys: set[str] = set()  # metric keys already checked
        _open_runs.add(self)

    # -- identity ----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def experiment(self) -> str:
        return self._info.experiment

    @property
    def info(self) -> RunRead:
        """The run as last read from the server (``refresh()`` reads it again)."""
        return self._info

    def refresh(self) -> RunRead:
        """Read the run again (flushing first, so what was logged is in it)."""
        if not self._ended:
            self.flush()
        self._info = self._http.get_model(self._path, RunRead)
        return self._info

    # -- logging -----------------------------------------------------------------------------

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Queue one metric point. ``value`` goes through ``float()`` (NaN and ±inf are kept);
        ``step`` defaults to 0 (as in MLflow); ``timestamp`` (ms since the epoch) to now, the
        time of this call. Blocks while the queue is full; errors come at ``flush()``."""
        if key not in self._keys:
            self._check_key(key)
            self._keys.add(key)
        self._logger.put(
            (
                "m",
                key,
                float(value),
                0 if step is None else int(step),
                int(time.time() * 1000) if timestamp is None else int(timestamp),
            )
        )

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Queue several metrics at the same step and time (see ``log_metric``)."""
        now = int(time.time() * 1000) if timestamp is None else int(timestamp)
        for key, value in metrics.items():
            self.log_metric(key, value, step, now)

    def log_param(self, key: str, value: object) -> None:
        """Queue a param (``str(value)``). Params are write-once: logging another value for a
        key makes the next ``flush()`` raise ``InvalidInputError`` (code ``param_changed``)."""
        self._logger.put(("p", self._check_key(key), self._check_value(key, value)))

    def log_params(self, params: Mapping[str, object]) -> None:
        for key, value in params.items():
            self.log_param(key, value)

    def set_tag(self, key: str, value: object) -> None:
        """Queue a tag (``str(value)``); a later value for the same key replaces it."""
        self._logger.put(("t", self._check_key(key), self._check_value(key, value)))

    def set_tags(self, tags: Mapping[str, object]) -> None:
        for key, value in tags.items():
            self.set_tag(key, value)

    # -- files -------------------------------------------------------------------------------

    @property
    def artifacts(self) -> RunArtifacts:
        """The run's files: list, download, delete (``log_artifact(s)`` upload)."""
        return RunArtifacts(self._http, self._path)

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactWritten:
        """Upload a file now (streamed from disk) as ``<artifact_path>/<its name>``."""
        return self.artifacts.upload(local_path, artifact_path)

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactWritten]:
        """Upload every file below a folder now, several at once, keeping the folder's layout
        under ``artifact_path``."""
        return self.artifacts.upload_folder(local_dir, artifact_path)

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything logged so far is stored; raise the first error kept
        (``UnavailableError`` if the server could not be reached, or after ``timeout`` s)."""
        self._logger.flush(timeout)

    @staticmethod
    def _check_key(key: str) -> str:
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            raise InvalidInputError(
                f"key {key!r} must be a non-empty string of at most {MAX_KEY_LENGTH} characters",
                code="invalid_key",
                field="key",
            )
        return key

    @staticmethod
    def _check_value(key: str, value: object) -> str:
        text = str(value)
        if len(text) > MAX_VALUE_LENGTH:
            raise InvalidInputError(
                f"the value of {key!r} has {len(text)} characters; at most {MAX_VALUE_LENGTH}",
                code="value_too_long",
                field="value",
            )
        return text

    # -- reading -----------------------------------------------------------------------------

    def get_metric_history(self, key: str, max_points: int | None = None) -> Points:
        """Every point of a metric, by step (flushing first). ``max_points`` thins a long
        history for a chart, keeping its shape (the first and last points, peaks and dips)."""
        if not self._ended:
            self.flush()
        return _history(self._http, self._base, self.id, key, max_points)

    # -- ending ------------------------------------------------------------------------------

    def end(self, status: EndStatus = "Completed", *, timeout: float | None = None) -> RunRead:
        """Flush, then set the final status. If the flush fails, the run is marked ``Failed``
        (when ``Completed`` was asked) and the flush error is raised. Ending twice does
        nothing more."""
        if self._ended:
            return self._info
        self._ended = True
        _open_runs.discard(self)
        flush_error: ShipyardError | None = None
        try:
            self._logger.close(timeout)
        except ShipyardError as error:
            flush_error = error
            if status == "Completed":
                status = "Failed"
        try:
            self._info = self._http.send_model("PATCH", self._path, RunRead, {"status": status})
        except ShipyardError:
            if flush_error is None:
                raise
        if flush_error is not None:
            raise flush_error
        return self._info

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end("Completed")
            return
        status: EndStatus = "Canceled" if isinstance(exc, KeyboardInterrupt) else "Failed"
        try:
            self.end(status)
        except ShipyardError as error:  # the block's own exception matters more
            exc.add_note(f"Shipyard: while ending run {self.id} as {status}: {error}")

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, name={self.name!r}, experiment={self.experiment!r})"


class RunList(list[RunRead]):
    """Runs, as a list; ``to_pandas()`` makes a table like ``mlflow.search_runs``."""

    def to_pandas(self) -> DataFrame:
        """One row per run: run_id, name, experiment, parent_run_id, status, start_time,
        end_time, then ``params.<key>``, ``metrics.<key>`` (latest value) and ``tags.<key>``.
        Needs pandas (``pip install pandas``)."""
        try:
            import pandas as pd  # type: ignore[import-untyped, import-not-found, unused-ignore]
        except ImportError as error:
            raise ImportError(
                "RunList.to_pandas() needs pandas, which is not installed: pip install pandas"
            ) from error
        base = ["run_id", "name", "experiment", "parent_run_id", "status"]
        base += ["start_time", "end_time"]
        params = sorted({k for run in self for k in run.params})
        metrics = sorted({k for run in self for k in run.metrics})
        tags = sorted({k for run in self for k in run.tags})
        rows: list[dict[str, Any]] = []
        for run in self:
            row: dict[str, Any] = {
                "run_id": run.id,
                "name": run.name,
                "experiment": run.experiment,
                "parent_run_id": run.parent_run_id,
                "status": run.status,
                "start_time": run.start_time,
                "end_time": run.end_time,
            }
            row.update({f"params.{k}": run.params.get(k) for k in params})
            row.update(
                {
                    f"metrics.{k}": run.metrics[k].value if k in run.metrics else float("nan")
                    for k in metrics
                }
            )
            row.update({f"tags.{k}": run.tags.get(k) for k in tags})
            rows.append(row)
        columns = base + [f"params.{k}" for k in params]
        columns += [f"metrics.{k}" for k in metrics] + [f"tags.{k}" for k in tags]
        frame = pd.DataFrame(rows, columns=columns)
        for column in ("start_time", "end_time"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame


class JobOperations:
    """A workspace's runs: read, list, search, rename, delete and restore.

    Example::

        run = ws.jobs.get(run_id)
        for r in ws.jobs.list(experiment="baseline"):
            print(r.name, r.status, r.metrics.get("loss"))
        top = ws.jobs.search(
            filter="metrics.accuracy > 0.9 AND (params.optimizer = 'adam' OR tags.team = 'nlp')",
            order_by=["metrics.accuracy DESC"],
            max_results=10,
        )
        top.to_pandas()
    """

    def __init__(self, http: HttpSession, workspace: str) -> None:
        self._http = http
        self._base = _runs_path(workspace)
        self._submitted = JobSubmissions(http, workspace)

    def _path(self, run_id: str) -> str:
        return f"{self._base}/{quote(run_id, safe='')}"

    def get(self, name: str) -> JobRead | RunRead:
        """A submitted job by name (its spec, status, outputs, cost), or a run by id (what it
        logged)."""
        try:
            return self._submitted.get(name)
        except NotFoundError:
            return self.get_run(name)

    def get_job(self, name: str) -> JobRead:
        """A submitted job by name (NotFoundError for a run no one submitted)."""
        return self._submitted.get(name)

    def get_run(self, run_id: str) -> RunRead:
        """What a run or job logged (params, tags, latest metrics), by run id."""
        return self._http.get_model(self._path(run_id), RunRead)

    def create(
        self,
        job: JobDefinition | Mapping[str, Any],
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> JobRead:
        """Submit a job: ``command(...)``, a ``@pipeline`` function's result, ``sweep(...)``,
        or a mapping loaded from a job YAML; local code and inputs are uploaded first (paths
        relative to ``base_dir``)."""
        return self._submitted.create(job, base_dir=base_dir, progress=progress)

    def stream(
        self,
        name: str,
        out: TextIO | None = None,
        *,
        on_status: Callable[[str], None] | None = None,
    ) -> JobRead:
        """Print the job's output as it comes until the job ends (``on_status`` hears the
        status with each answer); returns the ended job."""
        return self._submitted.stream(name, out, on_status=on_status)

    def cancel(self, name: str) -> JobRead:
        return self._submitted.cancel(name)

    def archive(self, name: str) -> None:
        """Hide a submitted job from lists (``get`` still finds it; ``restore`` undoes it)."""
        self._submitted.archive(name)

    def restore_job(self, name: str) -> None:
        self._submitted.restore(name)

    def download(
        self, name: str, *, output_name: str = "artifacts", download_path: str | Path = "."
    ) -> Path:
        """A job's output (``artifacts`` or a named one) into ``download_path/<output_name>``."""
        return self._submitted.download(name, output_name=output_name, download_path=download_path)

    def list_jobs(
        self, *, parent_job_name: str | None = None, status: str | None = None
    ) -> Iterator[JobRead]:
        """Submitted jobs (of one parent, or in one status), page after page."""
        return self._submitted.list(parent_job_name=parent_job_name, status=status)

    def artifacts(self, run_id: str) -> RunArtifacts:
        """A run's files: ``ws.jobs.artifacts(run_id).download("model", "out/")``."""
        return RunArtifacts(self._http, self._path(run_id))

    def list(
        self,
        *,
        experiment: str | None = None,
        parent_run_id: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[RunRead]:
        """Every run (of one experiment, or one run's children), page after page."""
        params = {
            "experiment": experiment,
            "parent_run_id": parent_run_id,
            "max_results": page_size,
        }
        return self._http.iterate(self._base, RunRead, params)

    def search(
        self,
        filter: str | None = None,
        order_by: str | Sequence[str] | None = None,
        experiments: str | Sequence[str] | None = None,
        max_results: int | None = None,
        *,
        include_deleted: bool = False,
        page_size: int = 1000,
    ) -> RunList:
        """Runs matching ``filter`` (MLflow's grammar plus OR and parentheses: ``metrics.x``,
        ``params.x``, ``tags.x``, ``attributes.status``...), sorted by ``order_by`` (e.g.
        ``"metrics.loss ASC"``), in ``experiments`` (names; all when None). Returns at most
        ``max_results`` runs (all when None), fetched page after page."""
        orders = [order_by] if isinstance(order_by, str) else list(order_by or [])
        names = [experiments] if isinstance(experiments, str) else experiments
        names = None if names is None else [*names]
        found = RunList()
        token: str | None = None
        while max_results is None or len(found) < max_results:
            wanted = page_size if max_results is None else min(page_size, max_results - len(found))
            body = {
                "filter": filter,
                "order_by": orders,
                "experiments": names,
                "include_deleted": include_deleted,
                "max_results": wanted,
                "page_token": token,
            }
            response = self._http.request("POST", self._base + "/search", json=body)
            page = Page[RunRead].model_validate(response.json())
            found.extend(page.items)
            token = page.next_page_token
            if not token:
                break
        return found

    def get_metric_history(self, run_id: str, key: str, max_points: int | None = None) -> Points:
        """A metric's points by step (``max_points``: thinned for a chart, keeping its shape)."""
        return _history(self._http, self._base, run_id, key, max_points)

    def update(self, run_id: str, *, name: str | None = None, status: str | None = None) -> RunRead:
        """Rename a run or set its status (e.g. ``"Canceled"``); what is not given is kept."""
        return self._http.send_model(
            "PATCH", self._path(run_id), RunRead, {"name": name, "status": status}
        )

    def delete(self, run_id: str) -> None:
        """Hide the run (it is kept; ``restore`` brings it back)."""
        self._http.request("DELETE", self._path(run_id))

    def restore(self, run_id: str) -> RunRead:
        self._http.request("POST", self._path(run_id) + "/restore")
        return self.get_run(run_id)


def start_run(
    http: HttpSession,
    workspace: str,
    *,
    experiment: str = "Default",
    name: str | None = None,
    tags: Mapping[str, object] | None = None,
    parent_run: Run | RunRead | str | None = None,
    max_queue: int = DEFAULT_MAX_QUEUE,
) -> Run:
    """Create a run (status ``Running``) and return it ready to log to."""
    parent_id = parent_run if isinstance(parent_run, str | None) else parent_run.id
    body = {
        "experiment": experiment,
        "name": name,
        "parent_run_id": parent_id,
        "tags": {k: str(v) for k, v in (tags or {}).items()},
    }
    info = http.send_model("POST", _runs_path(workspace), RunRead, body)
    return Run(http, workspace, info, max_queue=max_queue)


_open_runs: weakref.WeakSet[Run] = weakref.WeakSet()


def _end_open_runs(deadline: float) -> None:
    """At interpreter exit: end the runs nobody ended, as MLflow does."""
    crashed = getattr(sys, "last_value", None)
    status: EndStatus = "Completed"
    if isinstance(crashed, KeyboardInterrupt):
        status = "Canceled"
    elif crashed is not None:
        status = "Failed"
    for run in list(_open_runs):
        try:
            run.end(status, timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # noqa: S112 - exit must go on
            continue


run_logger.on_exit(_end_open_runs)
