"""Pipeline jobs: submit a graph of steps, each a child job.

Submitting checks the whole pipeline before anything runs: every step's component resolved
and pinned, every binding pointing at a real pipeline input, step output or pipeline output
of a compatible type, input values checked against the component's declared types, and the
graph free of cycles. Each step becomes a child job (``job list --parent-job-name``) that
waits (state ``waiting``) until the steps it takes outputs from have completed;
``services.pipeline_runner`` moves it on, reusing an earlier identical run where it may.

A step that runs a pipeline component (a nested pipeline) becomes a child job of type
``pipeline`` whose own steps are *its* children, planned the same way one level down: inside
it, ``${{parent.inputs.x}}`` is what the step gives the component's input ``x`` and
``${{parent.outputs.y}}`` the step's output ``y``. Nesting is at most
``MAX_NESTING`` deep, and a pipeline component never contains itself.
"""

from __future__ import annotations

import secrets as random
import string
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.components import ANONYMOUS_NAME
from shipyard.domain.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.domain.pipeline_components import MAX_NESTING
from shipyard.domain.pipelines import step_order
from shipyard.domain.principals import Principal
from shipyard.domain.sweeps import trial_command
from shipyard.schemas.jobs import CommandJobCreate, DataInput, JobRead, Limits
from shipyard.schemas.pipelines import PipelineJobCreate, PipelineStep
from shipyard.schemas.sweeps import SweepSettings, SweepTrial
from shipyard.services.components import Components
from shipyard.services.experiments import get_or_create
from shipyard.services.jobs import DEFAULT_EXPERIMENT, JobService, PreparedJob, name_taken
from shipyard.services.pipeline_steps import (
    Deferred,
    Level,
    PlannedStep,
    bind_level,
    child_name,
    inline_component,
    invalid,
    parsed_step,
    value_type,
)
from shipyard.services.sweeps import checked_settings, examples, sweep_job
from shipyard.services.workspace_rows import workspace_row
from shipyard.store.database import Database
from shipyard.store.workspaces import WorkspaceRow

_ALPHABET = string.ascii_lowercase + string.digits
# Run settings a step may set beside its component (Azure's step keys).
_STEP_SETTINGS = ("compute", "resources", "limits", "environment_variables")
# What only a command step has: a step running a pipeline component sets them inside it.
_COMMAND_ONLY = ("command", "code", "environment", "resources", "limits", "is_deterministic")


class PipelineService:
    def __init__(
        self, db: Database, jobs: JobService, components: Components, *, wake: Any = None
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.components = components
        self.wake = wake or (lambda: None)

    def create(self, principal: Principal, workspace: str, body: PipelineJobCreate) -> JobRead:
        name = body.name or "pipeline_" + "".join(random.choice(_ALPHABET) for _ in range(12))
        experiment_name = body.experiment_name or DEFAULT_EXPERIMENT
        root = Level(
            inputs=dict(body.inputs),
            outputs=dict(body.outputs),
            settings=body.settings,
            compute=body.settings.default_compute or body.compute,
            jobs=body.jobs,
            where="jobs.",
            job_name=name,
            experiment_name=experiment_name,
        )
        steps = self._plan(principal, workspace, root)
        outputs, sources = _level_outputs(root, steps)
        pipeline = PreparedJob(
            name=name,
            display_name=body.display_name or name,
            spec={
                "type": "pipeline",
                "command": "",
                "experiment_name": experiment_name,
                "description": body.description,
                "properties": body.properties,
                "settings": body.settings.model_dump(),
                "inputs": {},
                "outputs": outputs,
                "output_sources": sources,
                "steps": {s: step.prepared.name for s, step in steps.items() if step.prepared},
                "graph": {s: sorted(step.upstream) for s, step in steps.items()},
                # As submitted, so a schedule can submit it again (create_job: azureml:<name>).
                "submitted": submitted_body(body),
            },
            tags=dict(body.tags),
            compute="pipeline",
            priority=1,
            cpus=0.0,
            memory_mb=0,
            gpus=0,
            instance_count=1,
            timeout_s=None,
            code_digest=None,
        )
        try:
            with self.db.write() as session:
                ws = workspace_row(session, workspace)
                experiment = get_or_create(session, ws.id, experiment_name)
                parent = self.jobs.insert(
                    session, ws, experiment.id, principal, pipeline, job_type="pipeline",
                    state="pipeline",
                )  # fmt: skip
                self._insert(session, ws, experiment.id, principal, parent.job_id, steps)
                session.flush()
        except IntegrityError as exc:
            raise name_taken(name) from exc
        self.wake()
        return self.jobs.get(workspace, name)

    def _insert(
        self,
        session: Session,
        ws: WorkspaceRow,
        experiment_id: str,
        principal: Principal,
        parent_id: str,
        steps: dict[str, PlannedStep],
    ) -> None:
        """The steps' jobs under ``parent_id``, each waiting for its upstream steps; a
        nested pipeline's steps under its own job."""
        ids: dict[str, str] = {}
        for step_name, step in steps.items():
            assert step.prepared is not None
            kind = "pipeline" if step.children is not None else "sweep" if step.sweep else "command"
            row = self.jobs.insert(
                session, ws, experiment_id, principal, step.prepared, parent_id=parent_id,
                state="waiting", step=step_name, job_type=kind,
            )  # fmt: skip
            row.depends_on = [ids[u] for u in sorted(step.upstream)]
            ids[step_name] = row.job_id
            if step.children is not None:
                self._insert(session, ws, experiment_id, principal, row.job_id, step.children)

    # -- planning ---------------------------------------------------------------------------

    def _plan(self, principal: Principal, workspace: str, level: Level) -> dict[str, PlannedStep]:
        """One level's steps resolved, bound and prepared, in an order where each comes
        after the steps it takes outputs from."""
        steps = {
            step_name: self._step(principal, workspace, step_name, step, level)
            for step_name, step in level.jobs.items()
        }
        bind_level(level, steps)
        order = step_order({s.name: s.upstream for s in steps.values()}, prefix=level.where)
        for step_name in order:
            step = steps[step_name]
            job_name = child_name(level, step_name)
            if step.component.kind == "pipeline":
                self._plan_nested(principal, workspace, level, step, job_name)
            else:
                step.prepared = self._prepare(principal, workspace, level, step, job_name)
        return {s: steps[s] for s in order}

    def _plan_nested(
        self, principal: Principal, workspace: str, level: Level, step: PlannedStep, name: str
    ) -> None:
        """A step running a pipeline component: its steps planned one level down, and its
        own job (inputs as given, outputs as its inner steps make them)."""
        given = level.jobs[step.name]
        where = f"{level.where}{step.name}"
        spec = step.component.pipeline
        compute = given.compute or level.compute
        inputs: dict[str, Any] = {
            k: DataInput.model_validate(v) if isinstance(v, dict) else v
            for k, v in step.values.items()
        }
        inputs.update({k: Deferred(str(v["type"])) for k, v in step.deferred.items()})
        named = () if step.component.name == ANONYMOUS_NAME else (step.component.name,)
        inner = Level(
            inputs=inputs,
            outputs=step.outputs,
            settings=level.settings.model_copy(update={"default_compute": compute}),
            compute=compute,
            jobs={k: parsed_step(v, f"{where}.component.jobs.{k}") for k, v in spec.jobs.items()},
            where=f"{where}.jobs.",
            job_name=name,
            experiment_name=level.experiment_name,
            depth=level.depth + 1,
            chain=(*level.chain, *named),
        )
        step.children = self._plan(principal, workspace, inner)
        known = {k: v for k, v in inputs.items() if not isinstance(v, Deferred)}
        try:
            resolved = self.jobs.io.inputs(workspace, known)
        except ShipyardError as exc:
            exc.field = f"{where}.{exc.field}" if exc.field else where
            raise
        outputs, sources = _level_outputs(inner, step.children)
        step.prepared = PreparedJob(
            name=name,
            display_name=given.display_name or step.name,
            spec={
                "type": "pipeline",
                "command": "",
                "experiment_name": level.experiment_name,
                "description": given.description,
                "properties": {},
                "settings": inner.settings.model_dump(),
                "component": step.component.ref,
                "inputs": {**resolved, **step.deferred},
                "outputs": outputs,
                "output_sources": sources,
                "steps": {s: c.prepared.name for s, c in step.children.items() if c.prepared},
                "graph": {s: sorted(c.upstream) for s, c in step.children.items()},
            },
            tags=dict(given.tags),
            compute="pipeline",
            priority=1,
            cpus=0.0,
            memory_mb=0,
            gpus=0,
            instance_count=1,
            timeout_s=None,
            code_digest=None,
        )

    def _step(
        self, principal: Principal, workspace: str, name: str, step: PipelineStep, level: Level
    ) -> PlannedStep:
        where = f"{level.where}{name}"
        if step.type == "sweep":
            return self._sweep_step(principal, workspace, name, step, level)
        if (step.component is None) == (step.command is None):
            raise InvalidInputError(
                "a step has either a component or a command (an inline command job)",
                code="invalid_step",
                field=f"{where}.component",
            )
        if step.component is not None:
            resolved = self.components.resolve(
                principal, workspace, step.component, field=f"{where}.component"
            )
        else:
            inline = inline_component(step, _parent_type(level), where)
            resolved = self.components.resolve(principal, workspace, inline, field=where)
        if resolved.kind == "pipeline":
            _check_nesting(level, name, step, resolved.name, resolved.pipeline.depth)
        return PlannedStep(name, resolved)

    def _sweep_step(
        self, principal: Principal, workspace: str, name: str, step: PipelineStep, level: Level
    ) -> PlannedStep:
        """A sweep step: its settings checked, its trial resolved to a component whose
        inputs take the hyperparameters (Azure's rule: a hyperparameter sets the trial
        component's input of the same name)."""
        where = f"{level.where}{name}"
        try:
            settings = SweepSettings.model_validate(
                {
                    key: getattr(step, key)
                    for key in (
                        "search_space", "sampling_algorithm", "objective", "limits",
                        "early_termination",
                    )
                    if getattr(step, key) is not None
                }
            )  # fmt: skip
        except ValidationError as exc:
            raise invalid(exc, where) from exc
        config, stored = checked_settings(settings, field=f"{where}.")
        trial = step.trial
        if trial is None or step.component is not None or step.command is not None:
            raise InvalidInputError(
                "a sweep step runs its trial: a component reference, an inline component or "
                "an inline command in trial (not component or command)",
                code="invalid_step",
                field=f"{where}.trial",
            )
        clash = sorted(set(config.parameters) & set(step.inputs))
        if clash:
            raise InvalidInputError(
                f"input {clash[0]!r} is a hyperparameter of the search space: its values "
                "come from the sweep",
                code="name_clash",
                field=f"{where}.search_space.{clash[0]}",
            )
        if isinstance(trial, str) or "inputs" in trial or "outputs" in trial:
            resolved = self.components.resolve(principal, workspace, trial, field=f"{where}.trial")
            if resolved.kind != "command":
                raise InvalidInputError(
                    "a sweep's trial is a command component, not a pipeline component",
                    code="invalid_trial",
                    field=f"{where}.trial",
                )
            missing = sorted(set(config.parameters) - set(resolved.component.inputs))
            if missing:
                raise NotFoundError(
                    f"the trial component has no input named {missing[0]!r}: a "
                    "hyperparameter sets the trial's input of the same name",
                    code="unknown_input",
                    field=f"{where}.search_space.{missing[0]}",
                )
        else:
            try:
                command = SweepTrial.model_validate(trial)
            except ValidationError as exc:
                raise invalid(exc, f"{where}.trial") from exc
            inline = step.model_copy(
                update={
                    "command": trial_command(
                        command.command, config.parameters, step.inputs, field=f"{where}."
                    ),
                    "code": command.code,
                    "environment": command.environment,
                    "inputs": {**step.inputs, **examples(config)},
                    "resources": step.resources or command.resources,
                    "environment_variables": {
                        **command.environment_variables,
                        **step.environment_variables,
                    },
                }
            )
            resolved = self.components.resolve(
                principal, workspace, inline_component(inline, _parent_type(level), where),
                field=where,
            )  # fmt: skip
            step.resources = inline.resources
            step.environment_variables = inline.environment_variables
        return PlannedStep(name, resolved, sweep=(config, stored))

    def _prepare(
        self, principal: Principal, workspace: str, level: Level, step: PlannedStep, name: str
    ) -> PreparedJob:
        spec = step.component.component
        given = level.jobs[step.name]
        inputs: dict[str, Any] = {}
        for input_name, value in step.values.items():
            if value is None:
                inputs[input_name] = None
            elif isinstance(value, dict):
                inputs[input_name] = DataInput.model_validate(value)
            else:
                inputs[input_name] = value
        settings: dict[str, Any] = {
            k: getattr(given, k) for k in _STEP_SETTINGS if getattr(given, k) is not None
        }
        resources = settings.pop("resources", None)
        if step.sweep is not None:  # the trial's limit; the sweep's limits are its own
            settings["limits"] = Limits(timeout=step.sweep[0].trial_timeout)
        command = CommandJobCreate(
            command=spec.command,
            code=spec.code,
            display_name=given.display_name or step.name,
            experiment_name=level.experiment_name,
            description=given.description,
            tags=given.tags,
            inputs=inputs,
            outputs=step.outputs,
            compute=settings.pop("compute", None) or level.compute,
            resources=resources or spec.resources or {},
            **settings,
        )
        environment = spec.environment if isinstance(spec.environment, dict) else None
        prepared = self.jobs.prepare(
            principal,
            workspace,
            command,
            name=name,
            environment=environment,
            deferred=step.deferred,
            field=f"{level.where}{step.name}.",
        )
        if step.sweep is not None:
            config, stored = step.sweep
            prepared = sweep_job(
                name,
                given.display_name or step.name,
                prepared,
                config,
                stored,
                command=spec.command,
                description=given.description,
                properties={},
                tags=given.tags,
            )
        prepared.spec["force_rerun"] = level.settings.force_rerun
        prepared.spec["is_deterministic"] = (
            given.is_deterministic if given.is_deterministic is not None else spec.is_deterministic
        )
        prepared.spec["definition_hash"] = step.component.definition_hash
        return prepared


def submitted_body(body: PipelineJobCreate) -> dict[str, Any]:
    """The pipeline as its submitter sent it (what a schedule submits again)."""
    return {**body.model_dump(mode="json", by_alias=True, exclude_unset=True), "type": "pipeline"}


def _level_outputs(
    level: Level, steps: dict[str, PlannedStep]
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """A pipeline's outputs as the steps that make them have them (the runner refreshes
    them when the pipeline ends: a reused step's outputs are its original's), and which
    step output makes each."""
    outputs: dict[str, Any] = {}
    sources: dict[str, dict[str, str]] = {}
    for output, (step_name, step_output) in level.sources.items():
        sources[output] = {"step": step_name, "output": step_output}
        prepared = steps[step_name].prepared
        made = prepared.spec.get("outputs", {}).get(step_output) if prepared else None
        if made is not None:
            outputs[output] = made
    return outputs, sources


def _parent_type(level: Level) -> Any:
    def parent_type(name: str) -> str | None:
        return value_type(level.inputs.get(name))

    return parent_type


def _check_nesting(level: Level, name: str, step: PipelineStep, component: str, depth: int) -> None:
    where = f"{level.where}{name}"
    if component != ANONYMOUS_NAME and component in level.chain:
        path = " -> ".join([*level.chain, component])
        raise InvalidInputError(
            f"pipeline component {component!r} contains itself ({path})",
            code="component_cycle",
            field=f"{where}.component",
        )
    if level.depth + depth > MAX_NESTING:
        raise InvalidInputError(
            f"pipelines nest at most {MAX_NESTING} deep: this step's pipeline component "
            f"would take the pipeline {level.depth + depth} levels down",
            code="nesting_too_deep",
            field=f"{where}.component",
        )
    for key in _COMMAND_ONLY:
        if getattr(step, key) is not None:
            raise InvalidInputError(
                f"{key} is a command step's setting; a step that runs a pipeline component "
                "takes inputs, outputs, compute, display_name, description and tags",
                code="invalid_step",
                field=f"{where}.{key}",
            )
    if step.environment_variables:
        raise InvalidInputError(
            "environment_variables are a command step's setting",
            code="invalid_step",
            field=f"{where}.environment_variables",
        )
