"""Schedules: a cron or recurrence trigger that submits a job at every fire (docs/schedules.md).

Every server runs ``fire_due`` about once a second. A due fire is claimed with a
compare-and-set of the schedule's ``next_fire_at`` in the transaction that inserts its fire
row (store/schedules.py), so two servers on one store fire it once; the job is submitted
after that transaction, as the schedule's creator, and its name (or the reason it could not
be submitted) is recorded on the fire row. A submission that fails is not retried: the next
fire is the next chance.

Missed fires: a schedule whose fires came due while no server ran fires once, for the most
recent missed time; the older ones are skipped and counted on that fire's row (``skipped``).
Disabling a schedule stops its fires; enabling it again starts from the next fire after now.

``create_job`` may name an existing job as its template (``azureml:<job name>``, or Azure's
``{job: azureml:<job name>, inputs: ...}`` with changes): the job's body *as it was
submitted* (kept with every command, pipeline and sweep job) is copied into the schedule
when the schedule is made, with the changes and ``overrides`` merged in.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError, ShipyardError
from shipyard.domain.paging import decode_page_token
from shipyard.domain.principals import Principal
from shipyard.domain.schedules import Trigger, parse_trigger, replace_trigger_time
from shipyard.schemas.common import Page
from shipyard.schemas.jobs import CommandJobCreate, JobRead
from shipyard.schemas.pipelines import PipelineJobCreate
from shipyard.schemas.schedules import (
    SCHEDULE_NAME,
    ScheduleCreate,
    ScheduleFireRead,
    ScheduleRead,
)
from shipyard.schemas.sweeps import SweepJobCreate
from shipyard.services.authz import Authorizer
from shipyard.services.job_templates import JobTemplates
from shipyard.services.paging import split_page
from shipyard.services.workspace_rows import live_workspace
from shipyard.store import schedules as store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.schedules import ScheduleFireRow, ScheduleRow
from shipyard.store.users import UserRow
from shipyard.store.workspaces import WorkspaceRow

log = logging.getLogger(__name__)

UPCOMING = 5
_TICK = timedelta(microseconds=1)
# Fires looked at per pass; a pass that finds this many runs again at once.
_BATCH = 20
# Missed fires counted one by one up to this many (a minute schedule down for a week);
# beyond, the count stops there and the next fire is the first after now.
_MAX_SKIPPED = 10_000

Submit = Callable[[Principal, str, dict[str, Any]], JobRead]
_MODELS: dict[str, type[BaseModel]] = {"pipeline": PipelineJobCreate, "sweep": SweepJobCreate}


class _Claimed(NamedTuple):
    fire_id: str
    workspace: str
    created_by: str
    spec: dict[str, Any]
    fire_time: datetime


class ScheduleService:
    def __init__(
        self,
        db: Database,
        submit: Submit,
        *,
        authorizer: Authorizer | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.submit = submit
        self.templates = JobTemplates(db, authorizer)
        self.clock = clock

    # -- create, read, change ----------------------------------------------------------------

    def create(self, principal: Principal, workspace: str, body: ScheduleCreate) -> ScheduleRead:
        name = _check_name(body.name)
        now = self.clock()
        trigger_raw = body.trigger.model_dump(exclude_none=True)
        trigger = parse_trigger(trigger_raw, now=now)
        spec = job_spec(
            self.templates.expand(principal, workspace, body.create_job), body.overrides
        )
        with self.db.write() as session:
            ws = live_workspace(session, workspace)
            if store.get_schedule(session, ws.id, name) is not None:
                raise _exists(name)
            row = ScheduleRow(
                workspace_id=ws.id,
                name=name,
                display_name=body.display_name,
                description=body.description,
                tags=body.tags,
                properties=body.properties,
                trigger=body.trigger.model_dump(mode="json", exclude_none=True),
                start_at=trigger.start,
                create_job=spec,
                enabled=body.is_enabled,
                next_fire_at=trigger.next_fire(now - _TICK),
                created_by=principal.id,
            )
            session.add(row)
            try:
                session.flush()
            except IntegrityError as exc:
                raise _exists(name) from exc
            return self._read(row, now)

    def get(self, workspace: str, name: str) -> ScheduleRead:
        with self.db.read() as session:
            return self._read(_require(session, workspace, name), self.clock())

    def list(
        self, workspace: str, *, page_token: str | None, max_results: int
    ) -> Page[ScheduleRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            rows = store.list_schedules(session, ws.id, after=after, limit=max_results + 1)
            page, token = split_page(rows, max_results, lambda r: r.name)
            now = self.clock()
            items = [self._read(row, now, upcoming=False) for row in page]
            return Page[ScheduleRead](items=items, next_page_token=token)

    def set_enabled(self, workspace: str, name: str, enabled: bool) -> ScheduleRead:
        now = self.clock()
        with self.db.write() as session:
            row = _require(session, workspace, name)
            if row.enabled != enabled:
                row.enabled = enabled
                row.updated_at = now
                # Fires that came due while disabled are not made up for.
                row.next_fire_at = _trigger(row).next_fire(now) if enabled else row.next_fire_at
            return self._read(row, now)

    def delete(self, workspace: str, name: str) -> None:
        with self.db.write() as session:
            session.delete(_require(session, workspace, name))

    def fires(
        self, workspace: str, name: str, *, page_token: str | None, max_results: int
    ) -> Page[ScheduleFireRead]:
        """The schedule's fires, most recent first."""
        before_raw = decode_page_token(page_token)
        before = datetime.fromisoformat(before_raw) if before_raw else None
        with self.db.read() as session:
            row = _require(session, workspace, name)
            rows = store.list_fires(session, row.id, before=before, limit=max_results + 1)
            page, token = split_page(rows, max_results, lambda r: r.fire_time.isoformat())
            return Page[ScheduleFireRead](
                items=[_fire_read(f) for f in page], next_page_token=token
            )

    # -- firing -------------------------------------------------------------------------------

    def fire_due(self) -> int:
        """Fire every schedule that is due now; the number of jobs submitted (or tried)."""
        fired = 0
        while True:
            claimed = self._claim_due()
            for fire in claimed:
                self._submit(fire)
            fired += len(claimed)
            if len(claimed) < _BATCH:
                return fired

    def _claim_due(self) -> builtins.list[_Claimed]:
        now = self.clock()
        claimed: builtins.list[_Claimed] = []
        with self.db.read() as session:  # most passes find nothing: no write lock for them
            if not store.due_schedules(session, now, limit=1):
                return claimed
        with self.db.write() as session:
            for row in store.due_schedules(session, now, limit=_BATCH):
                found = self._claim(session, row, now)
                if found is not None:
                    claimed.append(found)
        return claimed

    def _claim(self, session: Session, row: ScheduleRow, now: datetime) -> _Claimed | None:
        seen = row.next_fire_at
        assert seen is not None
        trigger = _trigger(row)
        fire, skipped = seen, 0
        following = trigger.next_fire(fire)
        while following is not None and following <= now and skipped < _MAX_SKIPPED:
            fire, skipped = following, skipped + 1
            following = trigger.next_fire(fire)
        if following is not None and following <= now:  # too many to count: jump to now
            following = trigger.next_fire(now)
        if not store.claim(session, row.id, seen, fire, following):
            return None  # another server took it
        fire_row = ScheduleFireRow(schedule_id=row.id, fire_time=fire, skipped=skipped)
        session.add(fire_row)
        session.flush()
        ws = session.get(WorkspaceRow, row.workspace_id)
        assert ws is not None
        return _Claimed(fire_row.id, ws.name, row.created_by, row.create_job, fire)

    def _submit(self, fire: _Claimed) -> None:
        spec = {**fire.spec}
        for key in ("inputs", "jobs"):
            if key in spec:
                spec[key] = replace_trigger_time(spec[key], fire.fire_time)
        job_name: str | None = None
        error: str | None = None
        try:
            with self.db.read() as session:
                principal = _creator(session, fire.created_by)
            job_name = self.submit(principal, fire.workspace, spec).name
        except ShipyardError as exc:
            error = str(exc)
        except Exception as exc:  # recorded, not retried: the next fire is the next chance
            log.exception("a schedule could not submit its job")
            error = f"internal error: {type(exc).__name__}"
        with self.db.write() as session:
            row = session.get(ScheduleFireRow, fire.fire_id)
            if row is not None:
                row.job_name, row.error = job_name, error

    # -- views ---------------------------------------------------------------------------------

    def _read(self, row: ScheduleRow, now: datetime, *, upcoming: bool = True) -> ScheduleRead:
        times: builtins.list[datetime] = []
        if upcoming and row.enabled and row.next_fire_at is not None:
            times = [row.next_fire_at, *_trigger(row).upcoming(row.next_fire_at, UPCOMING - 1)]
        return ScheduleRead(
            name=row.name,
            display_name=row.display_name,
            description=row.description,
            tags=row.tags,
            properties=row.properties,
            trigger=row.trigger,
            create_job=row.create_job,
            is_enabled=row.enabled,
            next_fire_time=row.next_fire_at if row.enabled else None,
            last_fire_time=row.last_fire_at,
            upcoming_fire_times=times,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def job_spec(create_job: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The job a schedule submits: ``create_job`` with ``overrides`` merged in, checked the
    way ``POST /jobs`` checks it (errors name ``create_job.<field>``)."""
    spec = dict(create_job)
    for path, value in overrides.items():
        _set_path(spec, path, value)
    spec.pop("name", None)  # every fire submits a new job, named by the server
    try:
        _MODELS.get(str(spec.get("type")), CommandJobCreate).model_validate(spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in ("create_job", *first["loc"]))
        raise InvalidInputError(
            f"{where}: {first['msg']}", code="invalid_create_job", field=where
        ) from exc
    return spec


def submitter(
    create_command: Callable[[Principal, str, CommandJobCreate], JobRead],
    create_pipeline: Callable[[Principal, str, PipelineJobCreate], JobRead],
    create_sweep: Callable[[Principal, str, SweepJobCreate], JobRead] | None = None,
) -> Submit:
    """How a fire submits its job: as ``POST /jobs`` does, ``type`` choosing."""

    def submit(principal: Principal, workspace: str, spec: dict[str, Any]) -> JobRead:
        try:
            if spec.get("type") == "pipeline":
                return create_pipeline(principal, workspace, PipelineJobCreate.model_validate(spec))
            if spec.get("type") == "sweep" and create_sweep is not None:
                return create_sweep(principal, workspace, SweepJobCreate.model_validate(spec))
            return create_command(principal, workspace, CommandJobCreate.model_validate(spec))
        except ValidationError as exc:
            raise InvalidInputError(
                str(exc), code="invalid_create_job", field="create_job"
            ) from exc

    return submit


def _set_path(spec: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = spec
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = "overrides." + ".".join(parts[: i + 1])
            raise InvalidInputError(
                f"{where} is not a mapping", code="invalid_override", field=where
            )
        node = child
    node[parts[-1]] = value


def _trigger(row: ScheduleRow) -> Trigger:
    raw: dict[str, Any] = dict(row.trigger)
    for key in ("start_time", "end_time"):
        if isinstance(raw.get(key), str):
            raw[key] = datetime.fromisoformat(raw[key])
    raw.setdefault("start_time", row.start_at)
    return parse_trigger(raw, now=row.start_at)


def _creator(session: Session, principal_id: str) -> Principal:
    """The schedule's creator, whose permissions the submitted jobs have (checked at every
    fire: a creator who lost them gets errors on the fire rows, not jobs)."""
    user = session.get(UserRow, principal_id)
    if user is not None and user.disabled:
        raise InvalidInputError(
            f"the schedule's creator {user.name!r} is disabled", code="creator_disabled"
        )
    name = user.name if user else principal_id
    return Principal(id=principal_id, name=name, is_admin=bool(user and user.is_admin))


def _fire_read(row: ScheduleFireRow) -> ScheduleFireRead:
    return ScheduleFireRead(
        fire_time=row.fire_time,
        fired_at=row.fired_at,
        job_name=row.job_name,
        error=row.error,
        skipped=row.skipped,
    )


def _check_name(name: str, field: str = "name") -> str:
    if not SCHEDULE_NAME.fullmatch(name):
        raise InvalidInputError(
            f"schedule name {name[:100]!r} is not valid: 1 to 200 letters, digits, '_' and "
            "'-', starting with a letter or digit",
            code="invalid_name",
            field=field,
        )
    return name


def _require(session: Session, workspace: str, name: str) -> ScheduleRow:
    ws = live_workspace(session, workspace)
    row = store.get_schedule(session, ws.id, name)
    if row is None:
        raise NotFoundError(
            f"schedule {name!r} does not exist in workspace {workspace!r}",
            code="schedule_not_found",
            field="name",
        )
    return row


def _exists(name: str) -> ConflictError:
    return ConflictError(
        f"schedule {name!r} already exists in this workspace", code="schedule_exists", field="name"
    )
