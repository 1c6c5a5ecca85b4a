"""The scoring server one deployment instance runs: ``python scoring_server.py --config FILE``.

It runs under the deployment's own environment (a venv built from the user's requirements),
which has neither Shipyard nor any web framework, so this module is self-contained and uses
the standard library only (uvloop is used when the environment happens to have it).

The contract is Azure ML's: ``init()`` once, with ``AZUREML_MODEL_DIR`` pointing at the model
folder and the code folder as working directory and first on ``sys.path``; then
``run(raw_data: str)`` per request, returning something JSON-serialisable. An ``mlflow_model``
deployment without code is loaded with ``mlflow.pyfunc.load_model`` and accepts MLflow's
scoring formats (``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``).

HTTP/1.1 with keep-alive on an asyncio Protocol: the event loop only parses and answers; the
model runs in a pool of ``max_concurrent_requests`` threads, so a slow call never blocks the
loop. A request beyond that many in flight gets 429 at once; one past the timeout gets 504 (its
thread may run on and keeps its slot until it ends); a body over the limit gets 413 before it
is read. The status file tells the supervisor the port, then readiness or the traceback of a
failed ``init()`` (after which the process exits with status 3).

Config (JSON): host, port (0 picks one), model_dir, code_dir, scoring_script, mlflow_model
(true: no code, pyfunc), request_timeout_ms, max_concurrent_requests, max_body_bytes,
status_file, parent_pid (exit when that process is gone).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

# Run by path, Python puts this folder first on sys.path: drop it, so a user module that shares
# a name with one of ours (``instances``) is not shadowed.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

INIT_FAILED_EXIT = 3
MAX_HEAD_BYTES = 65536
LINGER_SECONDS = 2.0  # a refused body is read and dropped this long so the client sees the 413
JSON_TYPES = ("application/json", "text/json")
MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")

REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

Result = tuple[int, bytes]


class PayloadError(Exception):
    """The request body is not something the model can take: a 400 with this message."""


# ---------------------------------------------------------------------------------------------
# Scorers: what runs in the worker threads


def _jsonable(value: Any) -> Any:
    """numpy arrays and scalars, pandas objects and dates, for ``json.dumps``."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return value.to_dict(orient="records")
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, default=_jsonable, separators=(",", ":")).encode()


def _error(message: str, **extra: str) -> bytes:
    return _dumps({"error": message, **extra})


def _failure(what: str) -> Result:
    """A 500 for an exception in user code: an id in the body, the traceback (with the id)
    on stderr, the message itself kept out of the response."""
    error_id = uuid.uuid4().hex[:16]
    sys.stderr.write(f"error {error_id}: {what}\n{traceback.format_exc()}")
    sys.stderr.flush()
    detail = f"{what}; see the deployment's logs for error {error_id}"
    return 500, _error(detail, error_id=error_id)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or media.endswith("+json")


class ScriptScorer:
    """A scoring script with Azure's ``init()`` / ``run(raw_data)`` contract."""

    def __init__(self, code_dir: str, scoring_script: str) -> None:
        root = os.path.realpath(code_dir)
        path = os.path.realpath(os.path.join(root, scoring_script))
        if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
            raise FileNotFoundError(f"scoring script {scoring_script!r} is not a file in {root}")
        name = os.path.splitext(os.path.basename(path))[0]
        if name in sys.modules:  # e.g. a script called json.py: keep ours working
            name = "_scoring_script"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        # Registered before it runs, so pickles and dataclasses that name it resolve.
        sys.modules[name] = module
        spec.loader.exec_module(module)
        self._init: Callable[[], Any] | None = getattr(module, "init", None)
        run = getattr(module, "run", None)
        if not callable(run):
            raise AttributeError(f"{scoring_script} defines no run(raw_data) function")
        self._run: Callable[[str], Any] = run

    def init(self) -> None:
        if callable(self._init):
            self._init()

    def score(self, body: bytes, content_type: str) -> Result:
        try:
            raw = body.decode("utf-8")
        except UnicodeDecodeError as error:
            return 400, _error(f"the request body is not UTF-8 text: {error}")
        if _is_json(content_type):
            try:
                json.loads(raw)
            except ValueError as error:
                return 400, _error(f"malformed JSON: {error}")
        try:
            result = self._run(raw)
        except Exception:
            return _failure("run() raised an exception")
        try:
            return 200, _dumps(result)
        except (TypeError, ValueError):
            return _failure("run() returned a value that is not JSON-serialisable")


class MlflowScorer:
    """An MLflow model served through pyfunc, with MLflow's JSON (and CSV) request formats."""

    def __init__(self, model_dir: str) -> None:
        self.path = _mlflow_model_folder(model_dir)
        self.model: Any = None

    def init(self) -> None:
        import mlflow.pyfunc  # the environment must have mlflow: an ImportError fails init()

        self.model = mlflow.pyfunc.load_model(self.path)

    def score(self, body: bytes, content_type: str) -> Result:
        media = content_type.split(";", 1)[0].strip().lower()
        try:
            if media == "text/csv":
                data, params = _csv_frame(body), None
            elif not media or _is_json(content_type):
                data, params = _mlflow_input(body)
            else:
                return 415, _error(
                    f"content type {content_type!r} is not supported: send application/json "
                    "(or text/csv)"
                )
        except PayloadError as error:
            return 400, _error(str(error))
        try:
            if params is not None:
                predictions = self.model.predict(data, params=params)
            else:
                predictions = self.model.predict(data)
        except Exception as error:
            # As MLflow's own server: the model refusing its input (schema enforcement, a
            # wrong number of features) is the caller's to fix, so it is a 400 with the
            # model's message; the traceback goes to the log under an id.
            error_id = uuid.uuid4().hex[:16]
            sys.stderr.write(f"error {error_id}: predict() raised\n{traceback.format_exc()}")
            sys.stderr.flush()
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            return 400, _error(f"the model could not score the input: {message}", error_id=error_id)
        try:
            return 200, _dumps({"predictions": _jsonable_predictions(predictions)})
        except (TypeError, ValueError):
            return _failure("the model returned predictions that are not JSON-serialisable")


def _mlflow_model_folder(model_dir: str) -> str:
    """The folder holding ``MLmodel``: the model folder itself or its only subfolder that has
    one (a model registered from a folder keeps that folder's name under the model dir)."""
    if os.path.isfile(os.path.join(model_dir, "MLmodel")):
        return model_dir
    found = sorted(
        entry.path
        for entry in os.scandir(model_dir)
        if entry.is_dir() and os.path.isfile(os.path.join(entry.path, "MLmodel"))
    )
    if len(found) != 1:
        where = f"{len(found)} subfolders have one" if found else "no subfolder has one"
        raise FileNotFoundError(f"no MLmodel file in {model_dir} ({where})")
    return found[0]


def _mlflow_input(body: bytes) -> tuple[Any, dict[str, Any] | None]:
    """The model input and params of an MLflow JSON request."""
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise PayloadError(f"malformed JSON: {error}") from None
    if not isinstance(payload, dict):
        raise PayloadError(
            f"the body must be a JSON object with one of {', '.join(MLFLOW_FORMATS)}; "
            f"got a JSON {type(payload).__name__}"
        )
    given = [key for key in MLFLOW_FORMATS if key in payload]
    unknown = sorted(set(payload) - set(MLFLOW_FORMATS) - {"params"})
    if len(given) != 1 or unknown:
        raise PayloadError(
            f"the body must have exactly one of {', '.join(MLFLOW_FORMATS)} (and optionally "
            f"params); got the keys {sorted(payload)}"
        )
    params = payload.get("params")
    if params is not None and not isinstance(params, dict):
        raise PayloadError("params must be a JSON object")
    key = given[0]
    value = payload[key]
    try:
        if key == "dataframe_split":
            return _split_frame(value), params
        if key == "dataframe_records":
            return _records_frame(value), params
        return _tensor_input(key, value), params
    except PayloadError:
        raise
    except Exception as error:
        raise PayloadError(f"{key} is not a valid input: {error}") from None


def _split_frame(value: Any) -> Any:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    if not isinstance(value, dict) or "data" not in value:
        raise PayloadError("dataframe_split must be an object with data (and columns, index)")
    extra = sorted(set(value) - {"columns", "data", "index"})
    if extra:
        raise PayloadError(f"dataframe_split has unknown keys {extra}")
    return pd.DataFrame(data=value["data"], columns=value.get("columns"), index=value.get("index"))


def _records_frame(value: Any) -> Any:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    if not isinstance(value, list):
        raise PayloadError("dataframe_records must be a list of records")
    return pd.DataFrame(data=value)


def _tensor_input(key: str, value: Any) -> Any:
    """``instances`` (rows) and ``inputs`` (columns), as TF Serving's REST API has them:
    named inputs become a dict of arrays, unnamed ones one array."""
    import numpy as np

    if key == "instances" and isinstance(value, list) and value and isinstance(value[0], dict):
        columns: dict[str, list[Any]] = {}
        for row in value:
            if not isinstance(row, dict):
                raise PayloadError("instances mixes objects and other values")
            for name, item in row.items():
                columns.setdefault(name, []).append(item)
        if len({len(items) for items in columns.values()}) > 1:
            raise PayloadError("the instances do not all have the same inputs")
        return {name: np.array(items) for name, items in columns.items()}
    if isinstance(value, dict):
        return {name: np.array(item) for name, item in value.items()}
    if key == "inputs" and isinstance(value, list) and value and isinstance(value[0], dict):
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]

        return pd.DataFrame(data=value)
    return np.array(value)


def _csv_frame(body: bytes) -> Any:
    import io

    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    try:
        return pd.read_csv(io.BytesIO(body))
    except Exception as error:
        raise PayloadError(f"the body is not CSV a DataFrame can be read from: {error}") from None


def _jsonable_predictions(predictions: Any) -> Any:
    if hasattr(predictions, "to_frame") and hasattr(predictions, "name"):  # a pandas Series
        predictions = predictions.to_frame()
    if hasattr(predictions, "to_dict") and hasattr(predictions, "columns"):
        return predictions.to_dict(orient="records")
    if hasattr(predictions, "tolist"):
        return predictions.tolist()
    return predictions


# ---------------------------------------------------------------------------------------------
# HTTP


class Request:
    __slots__ = ("body", "close", "content_type", "method", "path")

    def __init__(self, method: str, path: str, content_type: str, close: bool) -> None:
        self.method = method
        self.path = path
        self.content_type = content_type
        self.close = close
        self.body = b""


def _response(status: int, body: bytes, *, close: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
    )
    if close:
        head += "connection: close\r\n"
    return head.encode("latin-1") + b"\r\n" + body


class Connection(asyncio.Protocol):
    """One client connection: requests are answered in order, one at a time (a pipelined
    request waits in the buffer until the one before it is answered)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.request: Request | None = None  # headers read, body still coming
        self.remaining = 0  # body bytes still to come (Content-Length)
        self.chunked = False
        self.chunk_left = -1  # bytes left in the current chunk; -1 before a chunk size line
        self.chunks = bytearray()  # the chunked body read so far
        self.busy = False  # a request is being answered
        self.processing = False
        self.discard_until = 0.0  # after a 413: drop what arrives until then, then close
        self.reading = True

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the interface without subclassing asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None
        self.server.answered()  # a stopping server may have waited for this one

    def data_received(self, data: bytes) -> None:
        if self.discard_until:
            if time.monotonic() > self.discard_until and self.transport is not None:
                self.transport.close()
            return
        self.buffer += data
        if not self.busy:
            self.process()
        elif len(self.buffer) > MAX_HEAD_BYTES and self.reading and self.transport is not None:
            # A client pipelining far ahead: let TCP hold the rest until we catch up.
            self.transport.pause_reading()
            self.reading = False

    def eof_received(self) -> bool | None:
        # A half-closed client may still be waiting for the answer in flight.
        return bool(self.busy)

    # parsing

    def process(self) -> None:
        if self.processing:
            return
        self.processing = True
        try:
            while not self.busy and self.transport is not None and not self.discard_until:
                request = self._parse()
                if request is None:
                    break
                self.busy = True
                self.server.dispatch(self, request)
        finally:
            self.processing = False
        if not self.reading and not self.busy and self.transport is not None:
            self.transport.resume_reading()
            self.reading = True

    def _parse(self) -> Request | None:
        if self.request is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end > MAX_HEAD_BYTES or (end < 0 and len(self.buffer) > MAX_HEAD_BYTES):
                self._refuse(431, "the request head is too large")
                return None
            if end < 0:
                return None
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            if not self._start(head):
                return None
        request = self.request
        assert request is not None
        done = self._read_chunked() if self.chunked else self._read_sized()
        if not done:
            return None
        self.request = None
        return request

    def _start(self, head: bytes) -> bool:
        """Read the request line and headers; False when the request was refused."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._refuse(400, "malformed request line")
            return False
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                self._refuse(400, "malformed header line")
                return False
            key = name.strip().lower()
            if key in headers and key == "content-length" and headers[key] != value.strip():
                self._refuse(400, "conflicting Content-Length headers")
                return False
            headers[key] = value.strip()
        connection = headers.get("connection", "").lower()
        close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
        request = Request(method, target.split("?", 1)[0], headers.get("content-type", ""), close)
        encoding = headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if encoding:
            if encoding != "chunked" or length is not None:
                self._refuse(501 if length is None else 400, "unsupported Transfer-Encoding")
                return False
            self.chunked, self.chunk_left, self.chunks = True, -1, bytearray()
        else:
            if length is not None and not length.isdigit():
                self._refuse(400, "Content-Length is not a number")
                return False
            self.chunked, self.remaining = False, int(length or 0)
            if self.remaining > self.server.max_body_bytes:
                self._refuse(413, self.server.too_large)
                return False
        if headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.request = request
        return True

    def _read_sized(self) -> bool:
        if len(self.buffer) < self.remaining:
            return False
        assert self.request is not None
        self.request.body = bytes(self.buffer[: self.remaining])
        del self.buffer[: self.remaining]
        return True

    def _read_chunked(self) -> bool:
        buffer = self.buffer
        while True:
            if self.chunk_left == 0:  # after the last chunk: optional trailers, a blank line
                if buffer[:2] == b"\r\n":
                    del buffer[:2]
                    break
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD_BYTES:
                        self._refuse(431, "the chunked trailers are too large")
                    return False
                del buffer[: end + 4]
                break
            if self.chunk_left < 0:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD_BYTES:
                        self._refuse(400, "malformed chunk size")
                    return False
                try:
                    size = int(bytes(buffer[:end]).split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self._refuse(400, "malformed chunk size")
                    return False
                del buffer[: end + 2]
                if len(self.chunks) + size > self.server.max_body_bytes:
                    self._refuse(413, self.server.too_large)
                    return False
                self.chunk_left = size
                continue
            if len(buffer) < self.chunk_left + 2:
                return False
            self.chunks += buffer[: self.chunk_left]
            del buffer[: self.chunk_left + 2]
            self.chunk_left = -1
        assert self.request is not None
        self.request.body = bytes(self.chunks)
        self.chunks = bytearray()
        return True

    # answering

    def respond(self, status: int, body: bytes, close: bool = False) -> None:
        transport = self.transport
        if transport is None:
            return
        close = close or self.server.stopping
        transport.write(_response(status, body, close=close))
        self.busy = False
        if close:
            transport.close()
        elif self.buffer and not self.processing:
            self.process()
        elif not self.reading:
            transport.resume_reading()
            self.reading = True
        self.server.answered()

    def _refuse(self, status: int, message: str) -> None:
        """Answer and close; the rest of the request is read and dropped for a moment, so
        the client finishes sending and reads the answer instead of a reset connection."""
        transport = self.transport
        self.request = None
        self.busy = True
        self.buffer.clear()
        if transport is None:
            return
        transport.write(_response(status, _error(message), close=True))
        self.discard_until = time.monotonic() + LINGER_SECONDS
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)


class Server:
    def __init__(self, config: dict[str, Any], scorer: ScriptScorer | MlflowScorer) -> None:
        self.scorer = scorer
        self.max_body_bytes = int(config.get("max_body_bytes", 100 * 1024 * 1024))
        self.too_large = f"the request body is larger than {self.max_body_bytes} bytes"
        self.max_concurrent = max(1, int(config.get("max_concurrent_requests", 1)))
        self.timeout = max(0.001, int(config.get("request_timeout_ms", 5000)) / 1000)
        self.executor = ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="run")
        self.in_flight = 0
        self.ready = False
        self.stopping = False
        self.connections: set[Connection] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.busy_message = _error(
            f"the instance is already handling {self.max_concurrent} request(s), its "
            "max_concurrent_requests_per_instance"
        )
        self.timeout_message = _error(f"the request took longer than {self.timeout * 1000:g} ms")

    def dispatch(self, conn: Connection, request: Request) -> None:
        path = request.path
        if path == "/score":
            if request.method != "POST":
                conn.respond(405, _error("use POST /score"), request.close)
            elif not self.ready:
                conn.respond(503, _error("the instance is not ready"), request.close)
            elif self.in_flight >= self.max_concurrent:
                conn.respond(429, self.busy_message, request.close)
            else:
                self._score(conn, request)
        elif path in ("/health/live", "/"):
            conn.respond(200, b'{"status":"live"}', request.close)
        elif path == "/health/ready":
            if self.ready and not self.stopping:
                conn.respond(200, b'{"status":"ready"}', request.close)
            else:
                conn.respond(503, b'{"status":"not ready"}', request.close)
        else:
            conn.respond(404, _error(f"no route {path}"), request.close)

    def _score(self, conn: Connection, request: Request) -> None:
        loop = self.loop
        assert loop is not None
        self.in_flight += 1
        state = {"answered": False}

        def timed_out() -> None:
            state["answered"] = True
            conn.respond(504, self.timeout_message, request.close)

        timer = loop.call_later(self.timeout, timed_out)

        def finished(future: Future[Result]) -> None:
            # The slot is held until the thread is done, not until the answer is sent.
            self.in_flight -= 1
            if state["answered"]:
                return
            timer.cancel()
            try:
                status, body = future.result()
            except BaseException:
                status, body = _failure("the scoring call failed")
            conn.respond(status, body, request.close)

        future = self.executor.submit(self.scorer.score, request.body, request.content_type)
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(finished, f))

    # shutdown

    def stop(self) -> None:
        """Stop taking connections, close idle ones, let answers in flight finish."""
        if self.stopping:
            return
        self.stopping = True
        for conn in list(self.connections):
            if not conn.busy and conn.transport is not None:
                conn.transport.close()
        self.answered()

    def answered(self) -> None:
        loop = self.loop
        if self.stopping and loop is not None and not any(c.busy for c in self.connections):
            loop.call_soon(loop.stop)


# ---------------------------------------------------------------------------------------------
# Start-up


def write_status(path: str, **status: Any) -> None:
    """Replace the status file at once, so the supervisor never reads half of it."""
    status["pid"] = os.getpid()
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump(status, out)
    os.replace(temporary, path)


def _scorer(config: dict[str, Any]) -> ScriptScorer | MlflowScorer:
    code_dir = config.get("code_dir")
    script = config.get("scoring_script")
    if code_dir and script:
        return ScriptScorer(code_dir, script)
    if config.get("mlflow_model"):
        return MlflowScorer(config["model_dir"])
    raise ValueError("the config names neither a scoring script nor an MLflow model")


def load_scorer(config: dict[str, Any]) -> ScriptScorer | MlflowScorer:
    """Set the process up for the user's code (``AZUREML_MODEL_DIR``, the code folder as
    working directory and first on ``sys.path``), load the scorer and run its ``init()``:
    what every host of the contract does first, this server and a Ray Serve replica
    (``ray_serve.py``) alike. An exception is init()'s failure, with its traceback."""
    _prepare_process(config)
    scorer = _scorer(config)
    scorer.init()
    return scorer


def _prepare_process(config: dict[str, Any]) -> None:
    model_dir = os.path.abspath(config["model_dir"])
    os.environ["AZUREML_MODEL_DIR"] = model_dir
    code_dir = config.get("code_dir")
    if code_dir:
        code_dir = os.path.abspath(code_dir)
        os.environ["AML_APP_ROOT"] = code_dir
        os.environ["AZUREML_ENTRY_SCRIPT"] = str(config.get("scoring_script") or "")
        os.chdir(code_dir)
        sys.path.insert(0, code_dir)


def _listen(config: dict[str, Any]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.get("host", "127.0.0.1"), int(config.get("port", 0))))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    return loop


def _watch_parent(server: Server, parent_pid: int, loop: asyncio.AbstractEventLoop) -> None:
    """An instance never outlives the process that supervises it."""
    if os.getppid() != parent_pid:
        print("the supervisor is gone; stopping", flush=True)
        server.stop()
        return
    loop.call_later(1.0, _watch_parent, server, parent_pid, loop)


def serve(config: dict[str, Any]) -> int:
    status_file = config["status_file"]
    sock = _listen(config)
    port = sock.getsockname()[1]
    write_status(status_file, state="starting", port=port)
    print(f"scoring server pid {os.getpid()} on 127.0.0.1:{port}: running init()", flush=True)
    started = time.monotonic()
    try:
        scorer = load_scorer(config)
    except BaseException:
        error = traceback.format_exc()
        sys.stderr.write(f"init() failed:\n{error}")
        sys.stderr.flush()
        write_status(status_file, state="failed", port=port, error=error)
        return INIT_FAILED_EXIT
    server = Server(config, scorer)
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    server.loop = loop
    listener = loop.run_until_complete(loop.create_server(lambda: Connection(server), sock=sock))

    def stop() -> None:
        listener.close()
        server.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    parent_pid = config.get("parent_pid")
    if parent_pid:
        _watch_parent(server, int(parent_pid), loop)
    server.ready = True
    write_status(status_file, state="ready", port=port)
    print(f"ready after {time.monotonic() - started:.2f}s", flush=True)
    # Runs until stopped and every answer in flight is sent (each within its timeout).
    loop.run_forever()
    # A thread still in run() past its timeout is not waited for: the pool's threads would
    # hold up the interpreter's exit.
    print("stopped", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve one deployment instance.")
    parser.add_argument("--config", required=True, help="the instance's JSON config file")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as handle:
        config = json.load(handle)
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
