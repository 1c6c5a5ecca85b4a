"""The batch scoring driver a batch deployment's job runs (standard library only: it runs under
the deployment's environment, as ``scoring_server.py`` does):

    python _shipyard_batch_driver.py --data DATA --model MODEL --output SCORE

Azure's contract (docs/batch-endpoints.md): the input files are listed (a folder's files,
recursively and in name order, or the one file), split into mini-batches of
``mini_batch_size`` files; each of ``max_concurrency`` worker processes imports the scoring
script, calls ``init()`` once and then ``run(mini_batch)`` with a list of file paths. A
mini-batch that raises, or runs past ``timeout`` seconds (its worker is killed and replaced),
is tried again up to ``max_retries`` times; then its files count as failed, and more failed
files than ``error_threshold`` (unless it is -1) fail the job. With ``append_row`` what
``run`` returns (a list, one row per element, or a pandas DataFrame) is appended to
``<output>/<output_file_name>``; with ``summary_only`` the script writes its own files to
``AZUREML_BI_OUTPUT_PATH``. Without a scoring script the model is an MLflow model: each file
is read as CSV and each of its rows predicted, written as ``<prediction>,<file name>``.

Progress (mini-batches total, done and failed; files failed) and, on failure, the reason are
set as the job's tags through the tracking API with the job's own token, so ``job show`` and
the REST job view show them while the job runs; they are logged as metrics too.

The configuration comes as JSON in ``SHIPYARD_BATCH_CONFIG`` (written by the server).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import multiprocessing
import os
import sys
import time
import traceback
import urllib.request
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Any

CONFIG_VARIABLE = "SHIPYARD_BATCH_CONFIG"
_LEVELS = {"debug": 10, "info": 20, "warning": 30}
_PROGRESS_EVERY_S = 1.0


class _Log:
    def __init__(self, level: str) -> None:
        self.level = _LEVELS.get(level, 20)

    def __call__(self, level: str, message: str) -> None:
        if _LEVELS[level] >= self.level:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            print(f"{stamp} {level.upper()} batch: {message}", flush=True)


# -- worker side ---------------------------------------------------------------------------------


def _load_script(path: str) -> Any:
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("score", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load scoring script {path!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("init", "run"):
        if not callable(getattr(module, name, None)):
            raise AttributeError(f"the scoring script {path!r} defines no {name}() function")
    return module


class _MlflowScorer:
    """The scoring of an MLflow model without code: CSV files in, one row per prediction."""

    def init(self) -> None:
        pyfunc = importlib.import_module("mlflow.pyfunc")  # the environment's
        # The model input is a link into storage: MLflow refuses a path that resolves
        # outside the one it was given.
        folder = os.path.realpath(_mlflow_model_folder(os.environ["AZUREML_MODEL_DIR"]))
        self.model = pyfunc.load_model(folder)
        self.pandas = importlib.import_module("pandas")

    def run(self, mini_batch: list[str]) -> list[list[Any]]:
        rows: list[list[Any]] = []
        for path in mini_batch:
            frame = self.pandas.read_csv(path)
            predictions = self.model.predict(frame)
            values = predictions.values.tolist() if hasattr(predictions, "values") else predictions
            for value in list(values):
                cells = list(value) if isinstance(value, list | tuple) else [value]
                rows.append([*cells, os.path.basename(path)])
        return rows


def _mlflow_model_folder(model_dir: str) -> str:
    """The folder holding ``MLmodel``: the model folder or its only subfolder that has one
    (as ``scoring_server.py`` finds it)."""
    if os.path.isfile(os.path.join(model_dir, "MLmodel")):
        return model_dir
    found = sorted(
        entry.path
        for entry in os.scandir(model_dir)
        if entry.is_dir() and os.path.isfile(os.path.join(entry.path, "MLmodel"))
    )
    if len(found) != 1:
        raise FileNotFoundError(f"no MLmodel file in {model_dir} (or one subfolder)")
    return found[0]


def _rows(result: Any) -> tuple[list[str], int]:
    """What ``run`` returned as CSV lines, and how many items it counts as."""
    if hasattr(result, "to_csv") and hasattr(result, "__len__"):
        text = result.to_csv(header=False, index=False)
        return [line for line in text.splitlines() if line], len(result)
    if isinstance(result, list | tuple):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for item in result:
            if isinstance(item, list | tuple):
                writer.writerow(item)
            elif isinstance(item, dict):
                writer.writerow([json.dumps(item)])
            else:
                writer.writerow([item])
        return out.getvalue().splitlines(), len(result)
    raise TypeError(f"run() must return a list or a pandas DataFrame, not {type(result).__name__}")


def _worker(conn: Connection, script: str | None) -> None:
    try:
        scorer = _load_script(script) if script else _MlflowScorer()
        scorer.init()
    except Exception:  # init's failure is reported, whatever it is
        conn.send(("init_failed", traceback.format_exc()))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        try:
            lines, count = _rows(scorer.run(list(message)))
        except Exception:  # a failed mini-batch is reported, then retried
            conn.send(("error", traceback.format_exc()))
        else:
            conn.send(("done", (lines, count)))


# -- driver side ---------------------------------------------------------------------------------


class _Worker:
    def __init__(self, context: Any, script: str | None) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, script), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.batch: tuple[int, list[str], int] | None = None  # (index, files, attempt)
        self.deadline = 0.0

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class _Progress:
    """The job's tags and metrics: mini-batches total, done, failed; files failed."""

    def __init__(self, total: int, log: _Log) -> None:
        self.total, self.done, self.failed, self.files_failed = total, 0, 0, 0
        self.log = log
        self.sent = 0.0
        self.url = os.environ.get("MLFLOW_TRACKING_URI", "")
        self.token = os.environ.get("MLFLOW_TRACKING_TOKEN", "")
        self.run_id = os.environ.get("MLFLOW_RUN_ID", "")

    def report(self, *, force: bool = False, error: str | None = None) -> None:
        now = time.monotonic()
        if not force and now - self.sent < _PROGRESS_EVERY_S:
            return
        self.sent = now
        values = {
            "batch.mini_batches_total": self.total,
            "batch.mini_batches_done": self.done,
            "batch.mini_batches_failed": self.failed,
            "batch.files_failed": self.files_failed,
        }
        tags = [{"key": k, "value": str(v)} for k, v in values.items()]
        if error is not None:
            tags.append({"key": "batch.error", "value": error[:4000]})
        stamp = int(time.time() * 1000)
        metrics = [{"key": k, "value": v, "timestamp": stamp, "step": 0} for k, v in values.items()]
        self._post({"run_id": self.run_id, "tags": tags, "metrics": metrics})

    def _post(self, body: dict[str, Any]) -> None:
        if not (self.url.startswith(("http://", "https://")) and self.run_id):
            return
        request = urllib.request.Request(  # noqa: S310 - the server's own URL
            f"{self.url}/api/2.0/mlflow/runs/log-batch",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                response.read()
        except OSError as exc:  # progress is best effort: scoring goes on
            self.log("warning", f"could not report progress: {exc}")


def list_files(data: str) -> list[str]:
    if os.path.isfile(data):
        return [data]
    found: list[str] = []
    for root, folders, files in os.walk(data):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        found.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
    return found


class _BatchFailedError(Exception):
    pass


class Driver:
    def __init__(self, config: dict[str, Any], data: str, output: str) -> None:
        self.config = config
        self.log = _Log(str(config.get("logging_level", "info")))
        self.script = config.get("scoring_script")
        self.size = int(config.get("mini_batch_size", 10))
        self.concurrency = int(config.get("max_concurrency", 1))
        self.threshold = int(config.get("error_threshold", -1))
        self.retries = int(config.get("max_retries", 3))
        self.timeout = float(config.get("timeout", 30))
        self.append = config.get("output_action", "append_row") == "append_row"
        self.output_file = os.path.join(output, str(config.get("output_file_name")))
        files = list_files(data)
        self.batches = [files[i : i + self.size] for i in range(0, len(files), self.size)]
        self.progress = _Progress(len(self.batches), self.log)
        self.context = multiprocessing.get_context("fork")

    def run(self) -> int:
        self.log("info", f"{sum(map(len, self.batches))} files in {len(self.batches)} mini-batches")
        if self.append:
            open(self.output_file, "a", encoding="utf-8").close()
        self.progress.report(force=True)
        workers: list[_Worker] = []
        try:
            self._score(workers)
        except _BatchFailedError as exc:
            self.log("warning", str(exc))
            self.progress.report(force=True, error=str(exc))
            print(f"batch scoring failed: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            for worker in workers:
                worker.stop()
        self.progress.report(force=True)
        p = self.progress
        self.log("info", f"done: {p.done} mini-batches scored, {p.failed} failed")
        return 0

    def _score(self, workers: list[_Worker]) -> None:
        pending: deque[tuple[int, list[str], int]] = deque(
            (i, batch, 0) for i, batch in enumerate(self.batches)
        )
        count = min(self.concurrency, len(self.batches))
        workers.extend(_Worker(self.context, self.script) for _ in range(count))
        while pending or any(w.batch for w in workers):
            for worker in workers:
                if worker.ready and worker.batch is None and pending:
                    worker.batch = pending.popleft()
                    worker.deadline = time.monotonic() + self.timeout
                    worker.conn.send(worker.batch[1])
            busy = [w.deadline for w in workers if w.batch is not None]
            wait_s = max(0.0, min(busy) - time.monotonic()) if busy else 1.0
            ready = wait([w.conn for w in workers], timeout=wait_s)
            for index, worker in enumerate(list(workers)):
                if worker.conn in ready:
                    workers[index] = self._receive(worker, pending)
                elif worker.batch is not None and time.monotonic() > worker.deadline:
                    self.log("warning", f"mini-batch {worker.batch[0]} timed out")
                    self._retry(worker.batch, pending, f"timed out after {self.timeout:g}s")
                    worker.stop()
                    workers[index] = _Worker(self.context, self.script)
            self.progress.report()

    def _receive(self, worker: _Worker, pending: deque[tuple[int, list[str], int]]) -> _Worker:
        try:
            kind, value = worker.conn.recv()
        except (EOFError, OSError):
            if worker.batch is not None:
                self._retry(worker.batch, pending, "its worker process died")
            elif not worker.ready:
                raise _BatchFailedError("a worker process died before init() finished") from None
            worker.stop()
            return _Worker(self.context, self.script)
        if kind == "init_failed":
            raise _BatchFailedError(f"init() failed:\n{value}")
        if kind == "ready":
            worker.ready = True
            return worker
        batch, worker.batch = worker.batch, None
        assert batch is not None
        if kind == "error":
            self.log("warning", f"mini-batch {batch[0]} failed:\n{value}")
            self._retry(batch, pending, str(value).strip().splitlines()[-1])
            return worker
        lines, count = value
        if self.append and lines:
            with open(self.output_file, "a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
        self.progress.done += 1
        self.log("debug", f"mini-batch {batch[0]}: {count} items")
        return worker

    def _retry(
        self,
        batch: tuple[int, list[str], int],
        pending: deque[tuple[int, list[str], int]],
        why: str,
    ) -> None:
        index, files, attempt = batch
        if attempt < self.retries:
            pending.append((index, files, attempt + 1))
            return
        self.progress.failed += 1
        self.progress.files_failed += len(files)
        self.log("warning", f"mini-batch {index} failed {attempt + 1} times ({why}); giving up")
        if 0 <= self.threshold < self.progress.files_failed:
            raise _BatchFailedError(
                f"error_threshold exceeded: {self.progress.files_failed} files failed "
                f"(error_threshold {self.threshold}); last error: {why}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    config = json.loads(os.environ.get(CONFIG_VARIABLE) or "{}")
    os.environ["AZUREML_MODEL_DIR"] = args.model
    os.environ["AZUREML_BI_OUTPUT_PATH"] = args.output
    os.makedirs(args.output, exist_ok=True)
    return Driver(config, args.data, args.output).run()


if __name__ == "__main__":
    sys.exit(main())
