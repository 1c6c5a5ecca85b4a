"""What a finished job leaves in the store: how it ended, what it cost, what it registered.

The runner works out how a job ended (``job_outcome``) and stores its outputs
(``job_outputs``); ``record_end`` writes the result into the job's rows, in the runner's
transaction (the one that also gives the freed slot to the next job).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from shipyard.services import lineage
from shipyard.services.job_environment import revoke_job_tokens
from shipyard.services.job_inputs import MODEL_TYPES
from shipyard.services.jobs import set_status
from shipyard.store.base import utcnow
from shipyard.store.computes import get_compute
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.tracking import JobRow


@dataclass(frozen=True)
class JobEnd:
    status: str  # Completed, Failed or Canceled
    error: str | None
    exit_code: int | None
    wall_seconds: float
    registered: dict[str, str]  # output name -> the asset it became, "name:version"


def record_end(
    session: Session, job: JobRow, sub: JobSubmissionRow, end: JobEnd, *, local_rate: float
) -> None:
    """The job's final status, exit code, error, core-seconds and cost; the registered
    outputs in its spec and lineage; its token revoked (it ends with the job).
    ``local_rate``: the ``local`` compute's price per core-hour."""
    if end.registered:
        outputs = {k: dict(v) for k, v in sub.spec.get("outputs", {}).items()}
        made = []
        for name, asset in end.registered.items():
            outputs[name]["registered"] = asset
            kind = "model" if outputs[name]["type"] in MODEL_TYPES else "data"
            made.append(lineage.AssetKey(kind, *asset.rsplit(":", 1)))
        sub.spec = {**sub.spec, "outputs": outputs}
        session.add_all(lineage.job_assets(sub.job_id, sub.workspace_id, "output", made))
    revoke_job_tokens(session, sub.job_id)
    sub.exit_code = end.exit_code
    sub.error = end.error
    sub.state = "done"
    sub.ended_at = utcnow()
    sub.core_seconds = sub.cpus * sub.instance_count * end.wall_seconds
    rate, unit = _rate(session, sub, local_rate)
    # Per node-hour: one node per instance; per core-hour: the cores the job held.
    node_seconds = sub.instance_count * end.wall_seconds
    sub.cost = (node_seconds if unit == "node" else sub.core_seconds) / 3600.0 * rate
    set_status(job, end.status, sub.ended_at)


def _rate(session: Session, sub: JobSubmissionRow, local_rate: float) -> tuple[float, str]:
    """The compute's price as it is now (a later change does not rewrite history)."""
    if sub.compute == "local":
        return local_rate, "core"
    compute = get_compute(session, sub.workspace_id, sub.compute)
    return (compute.cost_rate, compute.cost_unit) if compute else (0.0, "core")
