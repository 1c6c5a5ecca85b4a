"""The data collector: scoring requests and responses sampled by the gateway, written to a
datastore as JSON Lines (``data_collector`` of a deployment; see ``data_collection``).

The gateway asks ``sampled`` (a dict read and, below a rate of 1, one random draw) and hands
each sampled request to ``collect``, which only appends it to an in-memory buffer bounded by
``max_buffer_bytes``: a full buffer drops the sample and counts it, so collection never holds
a request up or grows without bound. A background thread, every ``flush_seconds`` and once
more on ``stop``, turns the buffer into rows (``collected_rows``) and writes one new object
per deployment, collection and time folder through the storage layer (S3 cannot append).

The same thread reads which deployments collect from the store on every pass (and at once
when ``wake``: a deployment changed on this server), so a change made through another server
arrives within ``flush_seconds``. After a collection's first write, its data asset (when
``data.name`` is given) is registered to point at the folder, as the deployment's creator.

Counts: ``ScoringStats.record_collection`` (collected, dropped per deployment), exported by
Prometheus.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import select

from shipyard.domain.asset_uris import DatastorePath, parse_asset_path
from shipyard.domain.errors import ConflictError, NotFoundError, ShipyardError
from shipyard.domain.principals import Principal
from shipyard.schemas.data import DataVersionCreate
from shipyard.services.collected_rows import Sample, Source, encode, file_name, folder, rows
from shipyard.services.data import DataService
from shipyard.services.data_collection import Collection, CollectorSpec
from shipyard.services.datastore_uris import DatastoreResolver, Location
from shipyard.services.scoring_stats import ScoringStats
from shipyard.storage.base import CHUNK, write_all
from shipyard.store.database import Database
from shipyard.store.endpoints import OnlineDeploymentRow, OnlineEndpointRow
from shipyard.store.workspaces import WorkspaceRow

log = logging.getLogger(__name__)

# What a sample costs beyond its bodies (the object, the rows' other fields), for the bound.
_OVERHEAD = 1024


@dataclass(frozen=True)
class _Deployment:
    """A deployment that collects, as the store says."""

    id: str
    workspace_id: str
    source: Source
    spec: CollectorSpec
    created_by: str


class DataCollector:
    def __init__(
        self,
        db: Database,
        resolver: DatastoreResolver,
        data: DataService,
        stats: ScoringStats,
        *,
        flush_seconds: float,
        max_buffer_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.resolver = resolver
        self.data = data
        self.stats = stats
        self.flush_seconds = flush_seconds
        self.max_buffer_bytes = max_buffer_bytes
        self.clock = clock
        # Read by the gateway on the event loop; replaced whole by the collector's thread.
        self.rates: dict[str, float] = {}
        self._deployments: dict[str, _Deployment] = {}
        self._lock = threading.Lock()  # the buffer and the drop counts
        self._buffer: list[Sample] = []
        self._buffered_bytes = 0
        self._dropped: Counter[str] = Counter()
        self._places: dict[str, tuple[CollectorSpec, dict[str, Location]]] = {}
        self._registered: set[tuple[str, str, str | None, str]] = set()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the gateway's side (event loop: no I/O, no waiting) -------------------------------

    def sampled(self, deployment_id: str) -> bool:
        rate = self.rates.get(deployment_id)
        if rate is None:
            return False
        return rate >= 1.0 or random.random() < rate  # noqa: S311 - a sample, not a secret

    def collect(self, sample: Sample) -> bool:
        """Buffer the sample; False (and counted as dropped) when the buffer is full."""
        size = sample.size + _OVERHEAD
        with self._lock:
            if self._buffered_bytes + size > self.max_buffer_bytes:
                self._dropped[sample.deployment_id] += 1
                return False
            self._buffer.append(sample)
            self._buffered_bytes += size
            return True

    # -- running -------------------------------------------------------------------------------

    def start(self) -> None:
        self._refresh()  # deployments that collect take samples from the first request
        self._thread = threading.Thread(target=self._loop, name="data-collector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is buffered, then end the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.flush()

    def wake(self) -> None:
        """A deployment changed: read which ones collect now."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self._refresh()
            except Exception:  # a database hiccup must not end collection; the next pass retries
                log.exception("reading which online deployments collect data failed")
            self.flush()

    def _refresh(self) -> None:
        query = (
            select(
                OnlineDeploymentRow.id,
                OnlineDeploymentRow.name,
                OnlineDeploymentRow.spec,
                OnlineDeploymentRow.created_by,
                OnlineEndpointRow.name,
                WorkspaceRow.id,
                WorkspaceRow.name,
            )
            .join(OnlineEndpointRow, OnlineEndpointRow.id == OnlineDeploymentRow.endpoint_id)
            .join(WorkspaceRow, WorkspaceRow.id == OnlineEndpointRow.workspace_id)
            .where(WorkspaceRow.deleted_at.is_(None))
        )
        found: dict[str, _Deployment] = {}
        with self.db.read() as session:
            for row_id, name, spec, creator, endpoint, ws_id, ws_name in session.execute(query):
                stored = (spec or {}).get("data_collector")
                if stored:
                    source = Source(ws_name, endpoint, name)
                    wanted = CollectorSpec.from_json(stored)
                    found[row_id] = _Deployment(row_id, ws_id, source, wanted, creator)
        self._deployments = found
        self.rates = {i: d.spec.sampling_rate for i, d in found.items()}
        for gone in [i for i in self._places if i not in found]:
            del self._places[gone]

    # -- writing -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every buffered sample (the thread calls it; ``stop`` once more)."""
        with self._lock:
            batch, self._buffer, self._buffered_bytes = self._buffer, [], 0
            dropped, self._dropped = self._dropped, Counter()
        for deployment_id, count in dropped.items():
            self.stats.record_collection(deployment_id, dropped=count)
        by_deployment: dict[str, list[Sample]] = defaultdict(list)
        for sample in batch:
            by_deployment[sample.deployment_id].append(sample)
        for deployment_id, samples in by_deployment.items():
            deployment = self._deployments.get(deployment_id)
            if deployment is None:  # deleted, or collection turned off, meanwhile
                continue
            try:
                self._write(deployment, samples)
            except Exception as exc:  # the samples are lost, the next flush goes on
                log.warning(
                    "writing collected data of online deployment %s/%s failed: %s",
                    deployment.source.endpoint,
                    deployment.source.deployment,
                    exc,
                    extra={"deployment": deployment_id},
                )
                self._places.pop(deployment_id, None)  # opened again next time
                self.stats.record_collection(deployment_id, dropped=len(samples))
            else:
                self.stats.record_collection(deployment_id, collected=len(samples))

    def _write(self, deployment: _Deployment, samples: list[Sample]) -> None:
        places = self._open(deployment)
        made = [
            (folder(s.time, deployment.spec.rolling_rate), rows(s, deployment.source))
            for s in samples
        ]
        now = self.clock()
        for collection in deployment.spec.collections:
            which = 0 if collection.name == "request" else 1
            lines: dict[str, list[bytes]] = defaultdict(list)
            for time_folder, pair in made:
                lines[time_folder].append(encode(pair[which]))
            place = places[collection.name]
            for time_folder, encoded in lines.items():
                target = place.child(f"{time_folder}/{file_name(now)}")
                write_all(place.storage, target.key, _chunks(encoded))
            self._register(deployment, collection)

    def _open(self, deployment: _Deployment) -> dict[str, Location]:
        """The collections' folders, opened once per spec (a datastore opens an S3 client)."""
        cached = self._places.get(deployment.id)
        if cached is not None and cached[0] == deployment.spec:
            return cached[1]
        places: dict[str, Location] = {}
        with self.db.read() as session:
            ws = session.get(WorkspaceRow, deployment.workspace_id)
            if ws is None:
                raise NotFoundError("the workspace is gone", code="workspace_not_found")
            for collection in deployment.spec.collections:
                parsed = parse_asset_path(collection.path)
                assert isinstance(parsed, DatastorePath)  # checked when the spec was made
                places[collection.name] = self.resolver.resolve(
                    session, ws, parsed.datastore, parsed.path, field="path"
                )
        self._places[deployment.id] = (deployment.spec, places)
        return places

    def _register(self, deployment: _Deployment, collection: Collection) -> None:
        """The collection's data asset, pointing at its folder (once the folder exists: a
        data asset's path must)."""
        if collection.data_name is None:
            return
        key = (
            deployment.source.workspace,
            collection.data_name,
            collection.data_version,
            collection.path,
        )
        if key in self._registered:
            return
        try:
            self._ensure_asset(deployment, collection)
        except ShipyardError as exc:
            log.warning(
                "registering data asset %s for collected data failed: %s",
                collection.data_name,
                exc,
                extra={"deployment": deployment.id},
            )
            return
        self._registered.add(key)

    def _ensure_asset(self, deployment: _Deployment, collection: Collection) -> None:
        assert collection.data_name is not None
        workspace, name = deployment.source.workspace, collection.data_name
        try:
            current = self.data.get(workspace, name, collection.data_version or "latest")
        except NotFoundError:
            current = None
        if current is not None and (collection.data_version or current.path == collection.path):
            return  # a version given is immutable: it stays, wherever it points
        source = deployment.source
        body = DataVersionCreate(
            version=collection.data_version,
            type="uri_folder",
            path=collection.path,
            description=f"{collection.name.capitalize()}s collected from online deployment "
            f"{source.endpoint}/{source.deployment}.",
        )
        creator = Principal(id=deployment.created_by, name="", is_admin=False)
        # ConflictError: another server registered it at the same moment.
        with contextlib.suppress(ConflictError):
            self.data.create(creator, workspace, name, body)


def _chunks(lines: list[bytes]) -> Iterator[bytes]:
    """The lines in pieces of about CHUNK bytes (not one write per line, nor one copy)."""
    piece: list[bytes] = []
    size = 0
    for line in lines:
        piece.append(line)
        size += len(line)
        if size >= CHUNK:
            yield b"".join(piece)
            piece, size = [], 0
    if piece:
        yield b"".join(piece)
