"""The background sender behind ``run.log_metric`` and friends: queue, batch, send, report.

``log_*`` calls only append a small tuple to a bounded queue; one thread per run drains it,
builds ``log-batch`` bodies (no pydantic on this path), cuts them to the server's limits and
keeps a few requests in flight at once on the client's pooled, kept-alive HTTP connections.
Metric points travel in the compact column form (``columns``: keys, values, steps and
timestamps as arrays, up to 10,000 points per call), which costs both sides a fraction of a
JSON object per point; against a server that does not know that form yet, they go as
``metrics`` objects, 1,000 per call. Metric batches may overlap; a batch of params or tags
is sent alone, after everything before it was acknowledged, so the last ``set_tag`` wins and
a param conflict costs only that batch, never metrics.

The first error the server (or the network) reports is kept and raised by the next
``flush()``: nothing is lost silently. When the server cannot be reached (after a few quick
retries of the connection), what is still queued up to that flush is dropped and counted in
the error, so a flush never waits for a server that is gone.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import math
import sys
import threading
import time
import weakref
from array import array
from collections import deque
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Any

from shipyard.domain.errors import ShipyardError, UnavailableError
from shipyard.sdk.http import HttpSession

MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
MAX_COLUMN_POINTS = 10_000  # points per call in the column form (the server's limit)
DEFAULT_MAX_QUEUE = 100_000
FLUSH_INTERVAL_SECONDS = 1.0
MAX_IN_FLIGHT = 4
CONNECT_RETRIES = (0.2, 0.5, 1.0)  # waits between attempts when the server refuses to connect
ATEXIT_TIMEOUT_SECONDS = 10.0

_JSON_HEADERS = {"Content-Type": "application/json"}
_INF, _NINF = math.inf, -math.inf

# Queue items: ("m", key, value, step, timestamp_ms) | ("p", key, value) | ("t", key, value)
# | _Marker (a flush request).
Item = tuple[Any, ...]


@dataclass
class _Marker:
    """Put in the queue by ``flush``; set once everything queued before it is acknowledged."""

    done: threading.Event = field(default_factory=threading.Event)


def _number(value: float) -> str:
    if value != value:
        return '"NaN"'
    if value == _INF:
        return '"Infinity"'
    if value == _NINF:
        return '"-Infinity"'
    return repr(value)


def _packed(code: str, items: Any) -> str:
    column = array(code, items)
    if sys.byteorder == "big":
        column.byteswap()
    return base64.b64encode(column.tobytes()).decode("ascii")


@dataclass
class _Columns:
    """Metric points gathered for one call: the queue's own ``("m", key, value, step,
    timestamp)`` items, turned into columns only when the call is made (by a sender thread,
    so the batcher's loop does one append per point)."""

    points: list[Item] = field(default_factory=list)

    def columns(self) -> tuple[list[str], list[int] | None, Any, Any, Any]:
        """(keys, each point's key index or None for a single key, values, steps, times)."""
        _, keys, values, steps, timestamps = zip(*self.points, strict=True)
        names = list(dict.fromkeys(keys))
        if len(names) == 1:
            return names, None, values, steps, timestamps
        position = {name: i for i, name in enumerate(names)}
        return names, [position[k] for k in keys], values, steps, timestamps

    def body(self) -> str:
        """The column form: each column base64 of a little-endian array (see the server's
        ``MetricColumns``), so neither side reads or writes a JSON number per point."""
        keys, index, values, steps, timestamps = self.columns()
        columns: dict[str, Any] = {
            "keys": keys,
            "values": _packed("d", values),
            "steps": _packed("q", steps),
            "timestamps": _packed("q", timestamps),
        }
        if index is not None:
            columns["key_index"] = _packed("I", index)
        return json.dumps({"columns": columns}, separators=(",", ":"))

    def objects(self) -> list[str]:
        """The same points as ``metrics`` bodies of at most 1,000 objects each (the form
        every server knows)."""
        names: dict[str, str] = {}
        points = [
            f'{{"key":{names.get(k) or names.setdefault(k, json.dumps(k))},'
            f'"value":{_number(v)},"step":{s},"timestamp":{t}}}'
            for _, k, v, s, t in self.points
        ]
        return [
            '{"metrics":[' + ",".join(points[i : i + MAX_METRICS]) + "]}"
            for i in range(0, len(points), MAX_METRICS)
        ]


class RunLogger:
    """Queue and send one run's metrics, params and tags (see the module docstring)."""

    def __init__(
        self,
        http: HttpSession,
        path: str,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_in_flight: int = MAX_IN_FLIGHT,
        flush_interval: float = FLUSH_INTERVAL_SECONDS,
    ) -> None:
        self._http = http
        self._path = path  # .../runs/{id}/log-batch
        self._max_queue = max_queue
        self._low_water = max_queue - max(1, min(MAX_METRICS, max_queue // 2))  # wake producers
        self._flush_interval = flush_interval
        self._queue: deque[Item | _Marker] = deque()
        self._wake = threading.Event()  # more than a batch is waiting, or a flush was asked
        self._room = threading.Condition()  # producers wait here while the queue is full
        self._closed = False
        self._error: ShipyardError | None = None  # the first failure since the last flush
        self._error_lock = threading.Lock()
        self._lost = 0  # items dropped because the server could not be reached
        self._blocked = 0  # producers waiting for room
        self._columns_known = True  # until the server says it does not know the column form
        # Daemon threads of our own (not an executor, whose workers are stopped before atexit
        # handlers run): senders take bodies from the outbox, at most ``max_in_flight`` at once.
        self._outbox: SimpleQueue[_Columns | None] = SimpleQueue()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._idle = threading.Condition()
        self._in_flight = 0
        self._senders = [
            threading.Thread(target=self._send_loop, name="shipyard-log-send", daemon=True)
            for _ in range(max_in_flight)
        ]
        self._thread = threading.Thread(target=self._run, name="shipyard-log-batcher", daemon=True)
        for thread in (*self._senders, self._thread):
            thread.start()
        _live.add(self)

    # -- producer side (the user's thread) --------------------------------------------------

    def put(self, item: Item) -> None:
        """Queue one item; blocks (never drops) while the queue holds ``max_queue`` items."""
        if self._closed:
            raise ShipyardError("this run has ended; start a new run to log more", code="run_ended")
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._wait_for_room()
        queue.append(item)
        if len(queue) % MAX_COLUMN_POINTS == 0:  # a full call's worth is waiting
            self._wake.set()

    def _wait_for_room(self) -> None:
        self._wake.set()
        with self._room:
            self._blocked += 1
            try:
                while len(self._queue) >= self._max_queue and self._thread.is_alive():
                    self._room.wait(0.1)
            finally:
                self._blocked -= 1

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued so far is acknowledged; raise the first error kept."""
        if self._thread.is_alive():
            marker = _Marker()
            self._queue.append(marker)
            self._wake.set()
            if not marker.done.wait(timeout):
                raise UnavailableError(
                    f"logged metrics, params and tags were not all sent within {timeout:g} s",
                    code="flush_timeout",
                )
        self._raise_kept()

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the threads; raises like ``flush``. Later ``put`` calls fail."""
        try:
            self.flush(timeout)
        finally:
            self._closed = True
            self._wake.set()
            for _ in self._senders:
                self._outbox.put(None)
            _live.discard(self)

    def _raise_kept(self) -> None:
        with self._error_lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

    # -- the batcher thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        """Send everything queued now; answer the flush markers met on the way."""
        queue = self._queue
        popleft = queue.popleft
        batch = _Columns()
        add = batch.points.append
        while queue:
            item = popleft()
            if self._blocked and len(queue) <= self._low_water:
                self._notify_room()
            if type(item) is tuple and item[0] == "m":  # the hot path: keep it lean
                add(item)
                if len(batch.points) == MAX_COLUMN_POINTS:
                    self._send_metrics(batch)
                    batch = _Columns()
                    add = batch.points.append
                continue
            self._send_metrics(batch)
            batch = _Columns()
            add = batch.points.append
            if isinstance(item, _Marker):
                self._wait_in_flight()
                self._answer(item)
            else:
                self._send_key_values(item)
        self._send_metrics(batch)

    def _notify_room(self) -> None:
        with self._room:
            self._room.notify_all()

    def _send_metrics(self, batch: _Columns) -> None:
        if not batch.points:
            return
        self._slots.acquire()
        with self._idle:
            self._in_flight += 1
        self._outbox.put(batch)

    def _send_loop(self) -> None:
        while (batch := self._outbox.get()) is not None:
            try:
                self._post_metrics(batch)
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()
                self._slots.release()

    def _post_metrics(self, batch: _Columns) -> None:
        body = None
        if self._columns_known:
            with contextlib.suppress(OverflowError):  # a step or time beyond 64 bits
                body = batch.body()  # (the object form below lets the server name it)
        if body is not None:
            error = self._post(body, len(batch.points))
            if error is None or not _unknown_columns(error):
                self._keep(error)
                return
            self._columns_known = False  # an older server: use the form it knows
        for text in batch.objects():
            self._keep(self._post(text, text.count('"key":')))

    def _send_key_values(self, first: Item) -> None:
        """Params and tags, alone and in order: take the run of them that starts with
        ``first``, cut to the limits (a param key at most once per call, so a changed value
        is refused by the server rather than silently collapsed)."""
        params: dict[str, str] = {}
        tags: dict[str, str] = {}
        self._wait_in_flight()
        item: Item | None = first
        queue = self._queue
        while item is not None:
            kind, key, value = item
            full = (kind == "p" and (len(params) == MAX_PARAMS or key in params)) or (
                kind == "t" and len(tags) == MAX_TAGS
            )
            if full:
                self._post_key_values(params, tags)
                params, tags = {}, {}
            if kind == "p":
                params[key] = value
            else:
                tags[key] = value
            nxt = queue[0] if queue else None
            if nxt is None or isinstance(nxt, _Marker) or nxt[0] == "m":
                break
            item = queue.popleft()  # type: ignore[assignment]  # checked above: not a marker
        self._post_key_values(params, tags)

    def _post_key_values(self, params: dict[str, str], tags: dict[str, str]) -> None:
        if not params and not tags:
            return
        body = json.dumps(
            {
                "params": [{"key": k, "value": v} for k, v in params.items()],
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
            }
        )
        self._keep(self._post(body))

    def _wait_in_flight(self) -> None:
        with self._idle:
            while self._in_flight:
                self._idle.wait()

    def _answer(self, marker: _Marker) -> None:
        if self._lost:
            with self._error_lock:
                error = self._error
                if error is not None:
                    error.detail += f" ({self._lost} logged items were not sent)"
            self._lost = 0
        marker.done.set()

    def _post(self, body: str, items: int = 0) -> ShipyardError | None:
        """Send one batch of ``items`` points (or params and tags); return the error, if any.
        Never raises."""
        if self._lost:  # the server was unreachable: drop until the next flush reports it
            self._lost += items or body.count('"key":')
            return None
        content = body.encode()
        for wait in (*CONNECT_RETRIES, None):
            try:
                self._http.request("POST", self._path, content=content, headers=_JSON_HEADERS)
                return None
            except UnavailableError as error:
                unreachable = error.code == "unreachable"
                if not unreachable or wait is None:
                    if unreachable:
                        self._lost += items or body.count('"key":')
                    return error
                time.sleep(wait)
            except ShipyardError as error:
                return error
            except Exception as error:  # must reach the user, not kill the thread
                return ShipyardError(f"logging failed: {error!r}", code="log_failed")
        return None  # not reached: the last attempt returns

    def _keep(self, error: ShipyardError | None) -> None:
        if error is None:
            return
        with self._error_lock:
            if self._error is None:
                self._error = error


def _unknown_columns(error: ShipyardError) -> bool:
    return error.code == "unknown_field" and (error.field or "").startswith("columns")


_live: weakref.WeakSet[RunLogger] = weakref.WeakSet()
_exit_hooks: list[Any] = []


def on_exit(hook: Any) -> None:
    """Run ``hook(deadline)`` at interpreter exit, before the loggers' last flush."""
    _exit_hooks.append(hook)


@atexit.register
def _flush_at_exit() -> None:
    """Send what is queued (bounded: a server that is gone cannot hold the exit)."""
    deadline = time.monotonic() + ATEXIT_TIMEOUT_SECONDS
    for hook in list(_exit_hooks):
        with contextlib.suppress(Exception):  # exit must go on
            hook(deadline)
    for logger in list(_live):
        with contextlib.suppress(Exception):
            logger.close(timeout=max(0.1, deadline - time.monotonic()))
