"""``ws.schedules``: triggers that submit a job on a cadence (docs/schedules.md)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shipyard.domain.errors import InvalidInputError
from shipyard.domain.job_templates import TEMPLATE_KEY, is_job_ref, merge_job_changes
from shipyard.schemas.schedules import SCHEDULE_NAME, ScheduleFireRead, ScheduleRead
from shipyard.sdk.http import HttpSession
from shipyard.sdk.jobs import JobDefinition, JobSubmissions
from shipyard.sdk.yaml import load_yaml_file

Schedule = ScheduleRead
ScheduleFire = ScheduleFireRead


class ScheduleOperations:
    """Create, read, enable, disable and delete a workspace's schedules.

    ``create_job`` is the job each fire submits: a job YAML file (its local code and inputs
    are uploaded once, when the schedule is made), a mapping shaped like one, a job built in
    Python (``command(...)``, a ``@pipeline`` function's result, ``sweep(...)``), or an
    existing job as a template: ``"azureml:<job name>"``, or ``{"job": "azureml:<job name>",
    "inputs": {...}}`` with changes (``job`` may also name a local job YAML file).
    ``${{creation_context.trigger_time}}`` in its inputs becomes the fire time.

    Example::

        ws.schedules.create(
            "nightly-retrain",
            trigger={"type": "cron", "expression": "0 2 * * *", "time_zone": "Europe/Paris"},
            create_job="jobs/train.yml",
        )
        print(ws.schedules.get("nightly-retrain").upcoming_fire_times)
        ws.schedules.disable("nightly-retrain")
    """

    def __init__(self, http: HttpSession, workspace: str, jobs: JobSubmissions) -> None:
        self._http = http
        self._jobs = jobs
        self._root = f"/api/v1/workspaces/{quote(workspace, safe='')}/schedules"

    def _path(self, name: str) -> str:
        if not SCHEDULE_NAME.fullmatch(name):
            raise InvalidInputError(
                f"a schedule name must match {SCHEDULE_NAME.pattern}",
                code="invalid_name",
                field="name",
            )
        return f"{self._root}/{quote(name, safe='')}"

    def create(
        self,
        name: str,
        *,
        trigger: Mapping[str, Any],
        create_job: str | Path | Mapping[str, Any] | JobDefinition,
        overrides: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        is_enabled: bool = True,
        base_dir: Path | None = None,
    ) -> Schedule:
        """Create a schedule; its first fire is its trigger's first tick at or after
        ``trigger["start_time"]`` (now when omitted)."""
        spec: dict[str, Any] = {
            "name": name,
            "trigger": dict(trigger),
            "create_job": create_job,
            "is_enabled": is_enabled,
        }
        optional = {"overrides": overrides, "description": description, "tags": tags}
        spec.update({k: dict(v) if isinstance(v, Mapping) else v
                     for k, v in optional.items() if v is not None})  # fmt: skip
        return self.create_from_spec(spec, base_dir=base_dir)

    def create_from_spec(
        self, spec: Mapping[str, Any], *, base_dir: Path | None = None
    ) -> Schedule:
        """Create from a mapping shaped like the schedule YAML (what the CLI sends); a
        ``create_job`` naming a local file is read relative to ``base_dir``."""
        body = dict(spec)
        body["create_job"] = self._job(body.get("create_job"), base_dir)
        return self._http.send_model("POST", self._root, Schedule, body)

    def _job(self, job: Any, base_dir: Path | None) -> Any:
        if hasattr(job, "to_dict") and not isinstance(job, Mapping):
            job = job.to_dict()
        elif isinstance(job, Path) or (isinstance(job, str) and not is_job_ref(job)):
            base_dir, job = _load(job, base_dir)
        if not isinstance(job, Mapping):
            return job  # azureml:<job name>; the server says what else it accepts
        job = dict(job)
        template = job.get(TEMPLATE_KEY)
        if isinstance(template, str | Path) and not is_job_ref(template):
            # Azure's {job: <file>, ...changes}: the file read here, the changes merged in.
            base_dir, loaded = _load(template, base_dir)
            job = merge_job_changes(loaded, job)
        if TEMPLATE_KEY in job:
            return job  # a job on the server: it merges the changes
        if job.get("type") == "pipeline":
            return self._jobs.prepare_pipeline(job, base_dir=base_dir)
        if job.get("type") == "sweep":
            return self._jobs.prepare_sweep(job, base_dir=base_dir)
        return self._jobs.prepare(job, base_dir=base_dir)

    def get(self, name: str) -> Schedule:
        """One schedule, with its next five fire times."""
        return self._http.get_model(self._path(name), Schedule)

    def list(self, *, page_size: int | None = None) -> Iterator[Schedule]:
        return self._http.iterate(self._root, Schedule, {"max_results": page_size})

    def enable(self, name: str) -> Schedule:
        """Fire again, from the next fire after now (missed ones are not made up for)."""
        return self._http.send_model("POST", self._path(name) + "/enable", Schedule)

    def disable(self, name: str) -> Schedule:
        return self._http.send_model("POST", self._path(name) + "/disable", Schedule)

    def delete(self, name: str) -> None:
        """Delete a schedule; the jobs it submitted stay."""
        self._http.request("DELETE", self._path(name))

    def fires(self, name: str, *, page_size: int | None = None) -> Iterator[ScheduleFire]:
        """The schedule's fires, most recent first: the job each submitted, or why not."""
        return self._http.iterate(
            self._path(name) + "/fires", ScheduleFire, {"max_results": page_size}
        )

    def __repr__(self) -> str:
        return f"ScheduleOperations({self._root!r})"


def _load(file: str | Path, base_dir: Path | None) -> tuple[Path, dict[str, Any]]:
    """A job YAML file (relative to ``base_dir``): its folder and its mapping."""
    path = Path(file) if base_dir is None else base_dir / file
    document = load_yaml_file(path)
    return path.resolve().parent, dict(document.data)
