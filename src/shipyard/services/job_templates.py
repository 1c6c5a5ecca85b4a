"""An existing job as the template of a new one: a schedule's ``create_job`` naming a job.

Every command, pipeline and sweep job keeps the body it was submitted with
(``spec.submitted``: local files already uploaded, references as written), so it can be
submitted again as it was. ``expand`` turns ``azureml:<job name>``, or Azure's object form
``{job: azureml:<job name>, ...changes}``, into that body with the changes merged in
(``domain.job_templates``); reading it needs ``workspaces/jobs/read``.
"""

from __future__ import annotations

from typing import Any

from shipyard.domain import actions
from shipyard.domain.actions import workspace_scope
from shipyard.domain.errors import InvalidInputError, NotFoundError
from shipyard.domain.job_templates import TEMPLATE_KEY, merge_job_changes, parse_job_ref
from shipyard.domain.principals import Principal
from shipyard.services.authz import Authorizer
from shipyard.store import jobs as job_store
from shipyard.store.database import Database
from shipyard.store.tracking import JobRow
from shipyard.store.workspaces import get_workspace


class JobTemplates:
    def __init__(self, db: Database, authorizer: Authorizer | None = None) -> None:
        self.db = db
        self.authorizer = authorizer

    def expand(
        self, principal: Principal, workspace: str, create_job: dict[str, Any] | str
    ) -> dict[str, Any]:
        """``create_job`` with a template job it names replaced by that job's submitted
        body, its changes merged in."""
        if isinstance(create_job, str):
            name = parse_job_ref(create_job, field="create_job")
            return self.submitted(principal, workspace, name, field="create_job")
        if TEMPLATE_KEY not in create_job:
            return create_job
        where = f"create_job.{TEMPLATE_KEY}"
        name = parse_job_ref(create_job[TEMPLATE_KEY], field=where)
        template = self.submitted(principal, workspace, name, field=where)
        kind = create_job.get("type")
        if kind is not None and kind != template.get("type", "command"):
            raise InvalidInputError(
                f"job {name!r} is a {template.get('type', 'command')} job, not {str(kind)[:40]}",
                code="type_mismatch",
                field="create_job.type",
            )
        return merge_job_changes(template, create_job)

    def submitted(
        self, principal: Principal, workspace: str, name: str, *, field: str
    ) -> dict[str, Any]:
        """An existing job's body as it was submitted."""
        if self.authorizer is not None:
            self.authorizer.authorize(principal, actions.JOBS_READ, workspace_scope(workspace))
        with self.db.read() as session:
            ws = get_workspace(session, workspace)
            if ws is None or ws.deleted_at is not None:
                raise NotFoundError(
                    f"workspace {workspace!r} does not exist", code="workspace_not_found"
                )
            sub = job_store.get_submission(session, ws.id, name)
            if sub is None:
                raise NotFoundError(
                    f"job {name!r} does not exist in this workspace",
                    code="job_not_found",
                    field=field,
                )
            submitted = sub.spec.get("submitted")
            if submitted is None:
                job = session.get(JobRow, sub.job_id)
                why = (
                    "it is a step or trial of another job; use that job"
                    if job is not None and job.parent_id
                    else "it was submitted before submitted jobs were kept; submit it once "
                    "more, or give create_job as a job spec"
                )
                raise InvalidInputError(
                    f"job {name!r} cannot be a template: {why}",
                    code="template_unavailable",
                    field=field,
                )
            return dict(submitted)
