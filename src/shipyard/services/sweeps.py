"""Sweep jobs: submit a hyperparameter search whose trials are child command jobs.

Submitting checks everything before anything runs: the search space, sampling algorithm,
objective, limits and early termination policy (``domain.sweeps``), and the trial exactly as
a command job is checked (``JobService.prepare``), with an example value for each
hyperparameter in the places its samples will go. The checked trial is kept with the sweep as
a template; ``services.sweep_runner`` makes trials from it (``trial_job``) as it samples.
A sweep is a ``jobs`` row of type ``sweep`` whose ``job_submissions`` row is in state
``sweep`` (it never runs itself, like a pipeline).
"""

from __future__ import annotations

import copy
import dataclasses
import secrets as random
import string
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from shipyard.domain.errors import InvalidInputError, ShipyardError
from shipyard.domain.principals import Principal
from shipyard.domain.sweep_sampling import Sample
from shipyard.domain.sweeps import SweepConfig, sweep_config, trial_command, trial_input
from shipyard.schemas.jobs import CommandJobCreate, JobRead, Limits
from shipyard.schemas.sweeps import SweepJobCreate, SweepSettings
from shipyard.services.experiments import get_or_create
from shipyard.services.jobs import DEFAULT_EXPERIMENT, JobService, PreparedJob, name_taken
from shipyard.store.database import Database
from shipyard.store.workspaces import get_workspace

_ALPHABET = string.ascii_lowercase + string.digits
# Where the trial's fields sit in a sweep's YAML (prepare names them as a command job's).
_TRIAL_FIELDS = ("command", "code", "environment", "resources", "distribution")


class SweepService:
    def __init__(
        self, db: Database, jobs: JobService, *, wake: Callable[[], None] | None = None
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.wake = wake or (lambda: None)

    def create(self, principal: Principal, workspace: str, body: SweepJobCreate) -> JobRead:
        name = body.name or "sweep_" + "".join(random.choice(_ALPHABET) for _ in range(12))
        config, settings = checked_settings(body)
        trial = body.trial
        command = trial_command(trial.command, config.parameters, body.inputs, field="")
        experiment_name = body.experiment_name or DEFAULT_EXPERIMENT
        fields: dict[str, Any] = {
            "command": command,
            "code": trial.code,
            "environment": trial.environment,
            "environment_variables": trial.environment_variables,
            "resources": trial.resources,
            "distribution": trial.distribution,
            "compute": body.compute,
            "experiment_name": experiment_name,
            "description": body.description,
            "inputs": {**body.inputs, **examples(config)},
            "outputs": body.outputs,
            "limits": Limits(timeout=config.trial_timeout),
            "queue_settings": body.queue_settings,
            "identity": body.identity,
        }
        template = prepare_trial(self.jobs, principal, workspace, fields, name, config)
        sweep = sweep_job(
            name,
            body.display_name or name,
            template,
            config,
            settings,
            command=trial.command,
            description=body.description,
            properties=body.properties,
            tags=body.tags,
        )
        # As submitted, so a schedule can submit it again (create_job: azureml:<name>).
        submitted = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        sweep.spec["submitted"] = {**submitted, "type": "sweep"}
        try:
            with self.db.write() as session:
                ws = get_workspace(session, workspace)
                assert ws is not None  # prepare found it
                experiment = get_or_create(session, ws.id, experiment_name)
                self.jobs.insert(
                    session, ws, experiment.id, principal, sweep, job_type="sweep", state="sweep"
                )
        except IntegrityError as exc:
            raise name_taken(name) from exc
        self.wake()
        return self.jobs.get(workspace, name)


def checked_settings(body: SweepSettings, *, field: str = "") -> tuple[SweepConfig, dict[str, Any]]:
    """The sweep's settings checked, and as they are stored (the seed chosen if unset, so
    the samples are repeatable from the store alone)."""
    algorithm = body.sampling_algorithm.model_dump(exclude_none=True)
    algorithm.setdefault("seed", random.randbelow(2**31))
    settings: dict[str, Any] = {
        "search_space": body.search_space,
        "algorithm": algorithm,
        "objective": body.objective.model_dump(),
        "limits": body.limits.model_dump(exclude_none=True),
        "early_termination": (
            body.early_termination.model_dump(exclude_none=True) if body.early_termination else None
        ),
    }
    return sweep_config(**settings, seed=algorithm["seed"], field=field), settings


def stored_config(spec: Mapping[str, Any]) -> SweepConfig:
    """The config of a stored sweep (it was checked at submit)."""
    settings = spec["sweep"]
    return sweep_config(**settings, seed=int(settings["algorithm"]["seed"]))


def examples(config: SweepConfig) -> dict[str, Any]:
    """A value each hyperparameter could take: the trial is checked with these."""
    return {name: parameter.example() for name, parameter in config.parameters.items()}


def prepare_trial(
    jobs: JobService,
    principal: Principal,
    workspace: str,
    fields: dict[str, Any],
    name: str,
    config: SweepConfig,
    *,
    environment: dict[str, Any] | None = None,
    deferred: dict[str, dict[str, Any]] | None = None,
    field: str = "",
) -> PreparedJob:
    """The trial checked as the command job it will be; errors name the sweep's fields
    (``trial.command``, ``search_space.lr``, ``limits.trial_timeout``...) under ``field``."""
    try:
        try:
            body = CommandJobCreate.model_validate(
                {k: v for k, v in fields.items() if v is not None}
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidInputError(
                str(first["msg"]).removeprefix("Value error, "),
                code="invalid_field",
                field=".".join(str(p) for p in first["loc"]),
            ) from exc
        return jobs.prepare(
            principal, workspace, body, name=name, environment=environment, deferred=deferred
        )
    except ShipyardError as exc:
        mapped = _sweep_field(exc.field or "", config)
        exc.field = field + mapped if mapped else field.rstrip(".") or None
        raise


def _sweep_field(name: str, config: SweepConfig) -> str:
    head, _, rest = name.partition(".")
    if head in _TRIAL_FIELDS or head == "environment_variables":
        return f"trial.{name}"
    if head == "inputs" and rest.split(".")[0] in config.parameters:
        return f"search_space.{rest}"
    if name == "limits.timeout":
        return "limits.trial_timeout"
    return name


def sweep_job(
    name: str,
    display_name: str,
    template: PreparedJob,
    config: SweepConfig,
    settings: dict[str, Any],
    *,
    command: str,
    description: str | None,
    properties: dict[str, str],
    tags: dict[str, str],
) -> PreparedJob:
    """The sweep's own job: what it shows (the trial's command as written, the sweep's
    inputs, its limits) and what its trials are made from (``trial_template``)."""
    spec = template.spec
    inputs = {k: v for k, v in spec["inputs"].items() if k not in config.parameters}
    return PreparedJob(
        name=name,
        display_name=display_name,
        spec={
            "type": "sweep",
            "command": command,
            "code": spec.get("code"),
            "environment": spec.get("environment"),
            "environment_variables": spec.get("environment_variables", {}),
            "inputs": inputs,
            # The best trial's outputs, once the sweep has ended (a pipeline's next steps
            # read them from here).
            "outputs": {},
            "resources": spec.get("resources", {}),
            "limits": {
                "max_total_trials": config.max_total_trials,
                "max_concurrent_trials": config.max_concurrent_trials,
                **({"timeout": config.timeout} if config.timeout else {}),
                **({"trial_timeout": config.trial_timeout} if config.trial_timeout else {}),
            },
            "description": description,
            "properties": properties,
            "experiment_name": spec.get("experiment_name", DEFAULT_EXPERIMENT),
            "sweep": settings,
            "trial_template": dataclasses.asdict(template),
        },
        tags=dict(tags),
        compute=template.compute,
        priority=template.priority,
        cpus=0.0,
        memory_mb=0,
        gpus=0,
        instance_count=1,
        timeout_s=None,
        code_digest=template.code_digest,
    )


def trial_job(template: dict[str, Any], sweep: str, name: str, drawn: Sample) -> PreparedJob:
    """A trial from the sweep's template: its sampled values as literal inputs, and its
    outputs in its own default place (``azureml/<trial>/<output>``)."""
    spec = copy.deepcopy(template["spec"])
    inputs = dict(spec.get("inputs", {}))
    for parameter, value in drawn.values.items():
        inputs[parameter] = trial_input(value)
    outputs = {}
    for out, value in spec.get("outputs", {}).items():
        mine = dict(value)
        default = f"azureml/{sweep}/{out}"
        if not value.get("custom_path") and str(value.get("uri", "")).endswith(default):
            mine["uri"] = str(value["uri"])[: -len(default)] + f"azureml/{name}/{out}"
        outputs[out] = mine
    spec["inputs"], spec["outputs"] = inputs, outputs
    spec["sweep_trial"] = {
        "sweep": sweep,
        "number": drawn.number,
        "parameters": drawn.values,
        "raw": drawn.raw,
        "system_attrs": drawn.system_attrs,
    }
    return PreparedJob(**{**template, "name": name, "display_name": name, "spec": spec})
