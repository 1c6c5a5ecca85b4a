"""Lineage graphs: from a job or an asset version, what it came from and what came of it.

Edges come from ``store.lineage`` (what jobs used and registered, recorded at submit and at
the end) and from the model registry (a model version logged from a job's run names that run,
as MLflow's ``register_model`` does). The walk goes both ways, breadth first, up to ``depth``
hops and a node budget, so "which models were trained on data:sales:3?" is
``data:sales:3 -> job -> model``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.domain.errors import InvalidInputError, NotFoundError
from shipyard.schemas.jobs import JobLineage, LineageEdge, LineageGraph, LineageNode
from shipyard.services.workspace_rows import workspace_row
from shipyard.store.database import Database
from shipyard.store.jobs import JobSubmissionRow, get_submission
from shipyard.store.lineage import JobAssetRow
from shipyard.store.models import ModelRow, ModelVersionRow
from shipyard.store.tracking import JobRow
from shipyard.store.workspaces import WorkspaceRow

KINDS = ("data", "model", "environment", "code")
MAX_DEPTH = 5
MAX_NODES = 500


@dataclass(frozen=True)
class AssetKey:
    kind: str
    name: str
    version: str

    @property
    def id(self) -> str:
        return (
            f"code:{self.name}"
            if self.kind == "code"
            else f"{self.kind}:{self.name}:{self.version}"
        )


def parse_asset(text: str, *, field: str = "asset") -> AssetKey:
    """``data:sales:3``, ``model:churn:2``, ``environment:train-env:1`` or ``code:<digest>``."""
    kind, _, rest = text.partition(":")
    if kind == "code" and rest:
        return AssetKey("code", rest, "")
    name, _, version = rest.rpartition(":")
    if kind not in KINDS or not name or not version:
        raise InvalidInputError(
            f"{text[:100]!r} is not an asset version: use data:<name>:<version>, "
            "model:<name>:<version>, environment:<name>:<version> or code:<digest>",
            code="invalid_asset",
            field=field,
        )
    return AssetKey(kind, name, version)


def job_assets(
    job_id: str, workspace_id: str, direction: str, refs: list[AssetKey]
) -> list[JobAssetRow]:
    return [
        JobAssetRow(
            job_id=job_id,
            workspace_id=workspace_id,
            direction=direction,
            kind=ref.kind,
            name=ref.name,
            version=ref.version,
        )
        for ref in dict.fromkeys(refs)
    ]


def direct(session: Session, job_id: str) -> JobLineage:
    """A job's own inputs and outputs (what ``job show`` prints)."""
    found = JobLineage()
    for row in session.scalars(select(JobAssetRow).where(JobAssetRow.job_id == job_id)):
        key = AssetKey(row.kind, row.name, row.version).id
        (found.inputs if row.direction == "input" else found.outputs).append(key)
    for model, version in _models_of_run(session, job_id):
        key = AssetKey("model", model, str(version)).id
        if key not in found.outputs:
            found.outputs.append(key)
    found.inputs.sort()
    found.outputs.sort()
    return found


def _models_of_run(session: Session, job_id: str) -> list[tuple[str, int]]:
    query = (
        select(ModelRow.name, ModelVersionRow.version)
        .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
        .where(ModelVersionRow.run_id == job_id)
    )
    return [(name, version) for name, version in session.execute(query).all()]


class LineageService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def of_job(self, workspace: str, name: str, depth: int = 2) -> LineageGraph:
        with self.db.read() as session:
            ws = workspace_row(session, workspace)
            sub = get_submission(session, ws.id, name)
            if sub is None:
                raise NotFoundError(
                    f"job {name!r} does not exist", code="job_not_found", field="name"
                )
            return _Walk(session, ws).run(f"job:{name}", depth)

    def of_asset(self, workspace: str, asset: str, depth: int = 2) -> LineageGraph:
        key = parse_asset(asset)
        with self.db.read() as session:
            ws = workspace_row(session, workspace)
            return _Walk(session, ws).run(key.id, depth, start=key)


class _Walk:
    def __init__(self, session: Session, ws: WorkspaceRow) -> None:
        self.session = session
        self.ws = ws
        self.nodes: dict[str, LineageNode] = {}
        self.edges: set[tuple[str, str]] = set()

    def run(self, root: str, depth: int, *, start: AssetKey | None = None) -> LineageGraph:
        depth = max(0, min(depth, MAX_DEPTH))
        if start is None:
            self._job_node(root.removeprefix("job:"))
        else:
            self._asset_node(start)
        frontier: deque[tuple[str, int]] = deque([(root, 0)])
        seen = {root}
        truncated = False
        while frontier:
            node, level = frontier.popleft()
            if level >= depth:
                continue
            for neighbour in self._neighbours(node):
                if neighbour not in seen:
                    if len(self.nodes) >= MAX_NODES:
                        truncated = True
                        break
                    seen.add(neighbour)
                    frontier.append((neighbour, level + 1))
        edges = [
            LineageEdge(source=a, target=b)
            for a, b in sorted(self.edges)
            if a in self.nodes and b in self.nodes
        ]
        return LineageGraph(
            root=root, nodes=list(self.nodes.values()), edges=edges, truncated=truncated
        )

    def _neighbours(self, node: str) -> list[str]:
        if node.startswith("job:"):
            return self._around_job(node.removeprefix("job:"))
        return self._around_asset(parse_asset(node))

    def _around_job(self, name: str) -> list[str]:
        sub = get_submission(self.session, self.ws.id, name)
        if sub is None:
            return []
        found = []
        for row in self.session.scalars(
            select(JobAssetRow).where(JobAssetRow.job_id == sub.job_id)
        ):
            asset = self._asset_node(AssetKey(row.kind, row.name, row.version))
            self._edge(asset, f"job:{name}", reverse=row.direction == "output")
            found.append(asset)
        for model, version in _models_of_run(self.session, sub.job_id):
            asset = self._asset_node(AssetKey("model", model, str(version)))
            self._edge(f"job:{name}", asset)
            found.append(asset)
        return found

    def _around_asset(self, key: AssetKey) -> list[str]:
        query = (
            select(JobAssetRow.direction, JobSubmissionRow.name)
            .join(JobSubmissionRow, JobSubmissionRow.job_id == JobAssetRow.job_id)
            .where(
                JobAssetRow.workspace_id == self.ws.id,
                JobAssetRow.kind == key.kind,
                JobAssetRow.name == key.name,
                JobAssetRow.version == key.version,
            )
            .limit(MAX_NODES)
        )
        found = []
        for direction, job_name in self.session.execute(query).all():
            job = self._job_node(job_name)
            self._edge(key.id, job, reverse=direction == "output")
            found.append(job)
        if key.kind == "model" and key.version.isdigit():
            producer = self.session.execute(
                select(JobSubmissionRow.name)
                .join(ModelVersionRow, ModelVersionRow.run_id == JobSubmissionRow.job_id)
                .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
                .where(
                    ModelRow.workspace_id == self.ws.id,
                    ModelRow.name == key.name,
                    ModelVersionRow.version == int(key.version),
                )
            ).scalar_one_or_none()
            if producer is not None:
                job = self._job_node(producer)
                self._edge(job, key.id)
                found.append(job)
        return found

    def _edge(self, source: str, target: str, *, reverse: bool = False) -> None:
        self.edges.add((target, source) if reverse else (source, target))

    def _job_node(self, name: str) -> str:
        node = f"job:{name}"
        if node not in self.nodes:
            status = self.session.execute(
                select(JobRow.status)
                .join(JobSubmissionRow, JobSubmissionRow.job_id == JobRow.id)
                .where(JobSubmissionRow.workspace_id == self.ws.id, JobSubmissionRow.name == name)
            ).scalar_one_or_none()
            self.nodes[node] = LineageNode(id=node, kind="job", name=name, status=status)
        return node

    def _asset_node(self, key: AssetKey) -> str:
        if key.id not in self.nodes:
            self.nodes[key.id] = LineageNode(
                id=key.id,
                kind=key.kind,
                name=key.name,
                version=key.version or None,
            )
        return key.id
