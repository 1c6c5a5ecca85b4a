"""What a job's process sees: its environment variables and its own token.

Nothing of the server's environment is passed on (it may hold keys). The job gets where it
is (``SHIPYARD_*``, Azure's ``AZUREML_*``), MLflow's variables so ``import mlflow`` logs into
the job, the secrets it referenced (``${{secrets.NAME}}``, revealed now, masked in its log),
and a token that acts for its submitter in its workspace only and is revoked when it ends.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from shipyard.services.tokens import hash_token, new_token
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.tokens import TokenRow

#: ``${{secrets.NAME}}`` in an environment variable's value.
SECRET_REFERENCE = re.compile(r"\$\{\{\s*secrets\.([A-Za-z0-9][A-Za-z0-9_.-]{0,126})\s*\}\}")


@dataclass(frozen=True)
class JobContext:
    """Who and where a job is, as its environment tells it."""

    job_id: str
    name: str
    workspace: str
    workspace_id: str
    created_by: str
    experiment_id: str
    experiment: str


def job_environment(
    spec: dict[str, Any],
    job: JobContext,
    *,
    bin_dir: Path | None,
    job_dir: Path,
    server_url: str,
    token: str,
    reveal: Callable[[str], str],
) -> tuple[dict[str, str], list[str]]:
    """The job's whole environment, and the values its log must mask."""
    masked: list[str] = []
    env = {
        "HOME": str(job_dir / "wd"),
        "TMPDIR": str(job_dir / "tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }
    if bin_dir is not None:  # None: an image, whose own PATH holds
        env["PATH"] = f"{bin_dir}{os.pathsep}/usr/local/bin:/usr/bin:/bin"
        env["VIRTUAL_ENV"] = str(bin_dir.parent)

    def secret(found: re.Match[str]) -> str:
        value = reveal(found.group(1))
        masked.append(value)
        return value

    for key, value in spec.get("environment_variables", {}).items():
        env[key] = SECRET_REFERENCE.sub(secret, value)
    # The workspace's MLflow tracking URI (as `workspace show` prints it).
    tracking = f"{server_url}/mlflow/workspaces/{job.workspace}"
    env.update(
        {
            "SHIPYARD_URL": server_url,
            "SHIPYARD_WORKSPACE": job.workspace,
            "SHIPYARD_JOB_NAME": job.name,
            "SHIPYARD_JOB_ID": job.job_id,
            "SHIPYARD_TOKEN": token,
            "MLFLOW_TRACKING_URI": tracking,
            "MLFLOW_TRACKING_TOKEN": token,
            "MLFLOW_RUN_ID": job.job_id,
            "MLFLOW_EXPERIMENT_ID": job.experiment_id,
            "MLFLOW_EXPERIMENT_NAME": job.experiment,
            "AZUREML_RUN_ID": job.job_id,
            "AZUREML_ARM_WORKSPACE_NAME": job.workspace,
            "AZUREML_ARM_PROJECT_NAME": job.experiment,
            "AZUREML_EXPERIMENT_ID": job.experiment_id,
        }
    )
    masked.append(token)
    return env, masked


def mint_job_token(db: Database, job: JobContext, *, timeout_s: int) -> str:
    """A token for the job: its submitter's rights, in this workspace only, revoked when the
    job ends (and expiring on its own a day after the job's time limit)."""
    raw = new_token()
    with db.write() as session:
        session.add(
            TokenRow(
                user_id=job.created_by,
                name=f"job:{job.job_id}",
                token_hash=hash_token(raw),
                prefix=raw[:8],
                expires_at=utcnow() + timedelta(seconds=timeout_s) + timedelta(days=1),
                workspace_id=job.workspace_id,
                job_id=job.job_id,
            )
        )
    return raw


def revoke_job_tokens(session: Session, job_id: str) -> None:
    session.execute(
        update(TokenRow)
        .where(TokenRow.job_id == job_id, TokenRow.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
