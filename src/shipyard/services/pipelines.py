"""Pipeline jobs: submit a graph of steps, each a child command job.

Submitting checks the whole pipeline before anything runs: every step's component resolved
and pinned, every binding pointing at a real pipeline input, step output or pipeline output
of a compatible type, input values checked against the component's declared types, and the
graph free of cycles. Each step becomes a child job (``job list --parent-job-name``) that
waits (state ``waiting``) until the steps it takes outputs from have completed;
``services.pipeline_runner`` moves it on, reusing an earlier identical run where it may.
"""

from __future__ import annotations

import secrets as random
import string
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from shipyard.domain.components import DATA_TYPES, ComponentSpec, bind_inputs
from shipyard.domain.errors import InvalidInputError, NotFoundError
from shipyard.domain.pipelines import (
    ParentInput,
    ParentOutput,
    StepPort,
    parse_binding,
    step_order,
)
from shipyard.domain.principals import Principal
from shipyard.domain.sweeps import SweepConfig, trial_command
from shipyard.schemas.jobs import CommandJobCreate, DataInput, JobOutput, JobRead, Limits
from shipyard.schemas.pipelines import PipelineJobCreate, PipelineStep
from shipyard.schemas.sweeps import SweepSettings, SweepTrial
from shipyard.services.components import Components, ResolvedComponent
from shipyard.services.experiments import get_or_create
from shipyard.services.jobs import DEFAULT_EXPERIMENT, JobService, PreparedJob, name_taken
from shipyard.services.sweeps import checked_settings, examples, sweep_job
from shipyard.store.database import Database
from shipyard.store.workspaces import WorkspaceRow, get_workspace

_ALPHABET = string.ascii_lowercase + string.digits
# Run settings a step may set beside its component (Azure's step keys).
_STEP_SETTINGS = ("compute", "resources", "limits", "environment_variables")


@dataclass
class _Step:
    name: str
    component: ResolvedComponent
    values: dict[str, Any] = field(default_factory=dict)  # bound literal and data inputs
    deferred: dict[str, dict[str, Any]] = field(default_factory=dict)  # from upstream steps
    outputs: dict[str, JobOutput | None] = field(default_factory=dict)
    upstream: set[str] = field(default_factory=set)
    # A sweep step: its checked settings (and as stored); the component is its trial's.
    sweep: tuple[SweepConfig, dict[str, Any]] | None = None


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
        steps = {
            step_name: self._step(principal, workspace, step_name, step, body)
            for step_name, step in body.jobs.items()
        }
        self._bind(body, steps)
        order = step_order({s.name: s.upstream for s in steps.values()})
        experiment_name = body.experiment_name or DEFAULT_EXPERIMENT
        children: dict[str, str] = {s: f"{name}-{s}" for s in order}
        prepared: dict[str, PreparedJob] = {}
        for step_name in order:
            prepared[step_name] = self._prepare(
                principal, workspace, body, steps[step_name], children[step_name], experiment_name
            )
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
                "outputs": {},
                "steps": children,
                "graph": {s: sorted(steps[s].upstream) for s in order},
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
                ws = _workspace(session, workspace)
                experiment = get_or_create(session, ws.id, experiment_name)
                parent = self.jobs.insert(
                    session, ws, experiment.id, principal, pipeline, job_type="pipeline",
                    state="pipeline",
                )  # fmt: skip
                ids: dict[str, str] = {}
                for step_name in order:
                    child = prepared[step_name]
                    child.spec["force_rerun"] = body.settings.force_rerun
                    child.spec["is_deterministic"] = _deterministic(
                        body.jobs[step_name], steps[step_name]
                    )
                    child.spec["definition_hash"] = steps[step_name].component.definition_hash
                    kind = "sweep" if steps[step_name].sweep else "command"
                    row = self.jobs.insert(
                        session, ws, experiment.id, principal, child, parent_id=parent.job_id,
                        state="waiting", step=step_name, job_type=kind,
                    )  # fmt: skip
                    row.depends_on = [ids[u] for u in sorted(steps[step_name].upstream)]
                    ids[step_name] = row.job_id
                session.flush()
        except IntegrityError as exc:
            raise name_taken(name) from exc
        self.wake()
        return self.jobs.get(workspace, name)

    # -- steps ------------------------------------------------------------------------------

    def _step(
        self,
        principal: Principal,
        workspace: str,
        name: str,
        step: PipelineStep,
        body: PipelineJobCreate,
    ) -> _Step:
        where = f"jobs.{name}"
        if step.type == "sweep":
            return self._sweep_step(principal, workspace, name, step, body)
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
            inline = _inline_component(name, step, body)
            resolved = self.components.resolve(principal, workspace, inline, field=where)
        return _Step(name, resolved)

    def _sweep_step(
        self,
        principal: Principal,
        workspace: str,
        name: str,
        step: PipelineStep,
        body: PipelineJobCreate,
    ) -> _Step:
        """A sweep step: its settings checked, its trial resolved to a component whose
        inputs take the hyperparameters (Azure's rule: a hyperparameter sets the trial
        component's input of the same name)."""
        where = f"jobs.{name}"
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
            raise _invalid(exc, where) from exc
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
                raise _invalid(exc, f"{where}.trial") from exc
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
                principal, workspace, _inline_component(name, inline, body), field=where
            )
            step.resources = inline.resources
            step.environment_variables = inline.environment_variables
        return _Step(name, resolved, sweep=(config, stored))

    def _bind(self, body: PipelineJobCreate, steps: dict[str, _Step]) -> None:
        """Every step input and output: literals and data checked against the component's
        types, bindings followed to what they name."""
        for name, step in body.jobs.items():
            current = steps[name]
            spec = current.component.component
            checked: dict[str, Any] = {}
            for input_name, value in step.inputs.items():
                field = f"jobs.{name}.inputs.{input_name}"
                binding = parse_binding(value, field=field)
                declared = spec.inputs.get(input_name)
                if isinstance(binding, ParentInput):
                    if binding.name not in body.inputs:
                        raise NotFoundError(
                            f"the pipeline has no input named {binding.name!r}",
                            code="unknown_binding",
                            field=field,
                        )
                    given = body.inputs[binding.name]
                    checked[input_name] = (
                        given.model_dump(exclude_none=True)
                        if isinstance(given, DataInput)
                        else given
                    )
                elif isinstance(binding, StepPort):
                    upstream = self._upstream_output(steps, binding, field)
                    if declared is not None and declared.type not in DATA_TYPES:
                        raise InvalidInputError(
                            f"input {input_name!r} is a {declared.type}; step "
                            f"{binding.step!r}'s output {binding.name!r} is a "
                            f"{upstream['type']} and cannot feed it",
                            code="type_mismatch",
                            field=field,
                        )
                    if declared is not None and not _compatible(upstream["type"], declared.type):
                        raise InvalidInputError(
                            f"input {input_name!r} takes {declared.type}; step "
                            f"{binding.step!r}'s output {binding.name!r} is {upstream['type']}",
                            code="type_mismatch",
                            field=field,
                        )
                    current.upstream.add(binding.step)
                    mode = declared.mode if declared is not None else None
                    current.deferred[input_name] = {
                        "kind": "data",
                        "type": declared.type if declared is not None else upstream["type"],
                        "mode": mode or "ro_mount",
                        "uri": None,
                        "asset": None,
                        "from": {"step": binding.step, "output": binding.name},
                    }
                    # A stand-in so the component's checks (required, types) still run.
                    checked[input_name] = {"type": upstream["type"], "path": "azureml://upstream"}
                elif isinstance(binding, ParentOutput):
                    raise InvalidInputError(
                        "an input cannot take a pipeline output",
                        code="invalid_binding",
                        field=field,
                    )
                else:
                    checked[input_name] = value
            if current.sweep is not None:  # checked with example values; sampled later
                checked.update(examples(current.sweep[0]))
            bound = bind_inputs(spec, checked, field=f"jobs.{name}.inputs")
            current.values = {k: v for k, v in bound.items() if k not in current.deferred}
            current.outputs = self._outputs(body, name, step, spec)

    def _upstream_output(
        self, steps: dict[str, _Step], binding: StepPort, field: str
    ) -> dict[str, Any]:
        if binding.step not in steps:
            raise NotFoundError(
                f"the pipeline has no step named {binding.step!r}",
                code="unknown_binding",
                field=field,
            )
        if binding.kind != "outputs":
            raise InvalidInputError(
                "bind to a step's outputs (${{parent.jobs.<step>.outputs.<name>}})",
                code="invalid_binding",
                field=field,
            )
        outputs = steps[binding.step].component.component.outputs
        if binding.name not in outputs:
            raise NotFoundError(
                f"step {binding.step!r} has no output named {binding.name!r} "
                f"(its outputs: {', '.join(sorted(outputs)) or 'none'})",
                code="unknown_binding",
                field=field,
            )
        return {"type": outputs[binding.name].type}

    def _outputs(
        self, body: PipelineJobCreate, name: str, step: PipelineStep, spec: ComponentSpec
    ) -> dict[str, JobOutput | None]:
        outputs: dict[str, JobOutput | None] = {
            out: JobOutput(type=declared.type) for out, declared in spec.outputs.items()
        }
        for out, value in step.outputs.items():
            field = f"jobs.{name}.outputs.{out}"
            if out not in spec.outputs:
                raise NotFoundError(
                    f"the step has no output named {out!r}", code="unknown_output", field=field
                )
            binding = parse_binding(value, field=field)
            declared_type = spec.outputs[out].type
            if isinstance(binding, ParentOutput):
                if binding.name not in body.outputs:
                    raise NotFoundError(
                        f"the pipeline has no output named {binding.name!r}",
                        code="unknown_binding",
                        field=field,
                    )
                parent = body.outputs[binding.name] or JobOutput(type=declared_type)
                outputs[out] = parent.model_copy(update={"type": declared_type})
            elif binding is not None:
                raise InvalidInputError(
                    "a step output binds only to ${{parent.outputs.<name>}}",
                    code="invalid_binding",
                    field=field,
                )
            elif isinstance(value, dict):
                outputs[out] = JobOutput.model_validate({"type": declared_type, **value})
        return outputs

    def _prepare(
        self,
        principal: Principal,
        workspace: str,
        body: PipelineJobCreate,
        step: _Step,
        child_name: str,
        experiment_name: str,
    ) -> PreparedJob:
        spec = step.component.component
        given = body.jobs[step.name]
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
            experiment_name=experiment_name,
            description=given.description,
            tags=given.tags,
            inputs=inputs,
            outputs=step.outputs,
            compute=settings.pop("compute", None) or body.settings.default_compute or body.compute,
            resources=resources or spec.resources or {},
            **settings,
        )
        environment = spec.environment if isinstance(spec.environment, dict) else None
        prepared = self.jobs.prepare(
            principal,
            workspace,
            command,
            name=child_name,
            environment=environment,
            deferred=step.deferred,
            field=f"jobs.{step.name}.",
        )
        if step.sweep is None:
            return prepared
        config, stored = step.sweep
        return sweep_job(
            child_name,
            given.display_name or step.name,
            prepared,
            config,
            stored,
            command=spec.command,
            description=given.description,
            properties={},
            tags=given.tags,
        )


def _inline_component(name: str, step: PipelineStep, body: PipelineJobCreate) -> dict[str, Any]:
    """An inline command step as a component: its inputs typed from the values given."""
    inputs: dict[str, Any] = {}
    for input_name, value in step.inputs.items():
        field = f"jobs.{name}.inputs.{input_name}"
        binding = parse_binding(value, field=field)
        if isinstance(binding, ParentInput):
            value = body.inputs.get(binding.name)
        if isinstance(binding, StepPort) or isinstance(value, dict | DataInput):
            kind = value.get("type", "uri_folder") if isinstance(value, dict) else "uri_folder"
            if isinstance(value, DataInput):
                kind = value.type
            inputs[input_name] = {"type": kind}
        elif isinstance(value, bool):
            inputs[input_name] = {"type": "boolean"}
        elif isinstance(value, int):
            inputs[input_name] = {"type": "integer"}
        elif isinstance(value, float):
            inputs[input_name] = {"type": "number"}
        else:
            inputs[input_name] = {"type": "string", "optional": value is None}
    outputs = {
        out: {
            "type": (value or {}).get("type", "uri_folder")
            if isinstance(value, dict)
            else "uri_folder"
        }
        for out, value in step.outputs.items()
    }
    inline: dict[str, Any] = {
        "command": step.command,
        "environment": step.environment or "azureml:shipyard-minimal@latest",
        "inputs": inputs,
        "outputs": outputs,
    }
    if step.code is not None:
        inline["code"] = step.code
    if step.is_deterministic is not None:
        inline["is_deterministic"] = step.is_deterministic
    return inline


def _invalid(exc: ValidationError, where: str) -> InvalidInputError:
    """A nested model's first error, naming its field under ``where``."""
    first = exc.errors()[0]
    path = ".".join(str(part) for part in first["loc"])
    return InvalidInputError(
        str(first["msg"]).removeprefix("Value error, "),
        code="missing_field" if first["type"] == "missing" else "invalid_field",
        field=f"{where}.{path}" if path else where,
    )


def _compatible(output_type: str, input_type: str) -> bool:
    """An output can feed an input of the same type; a folder can feed an MLTable input
    (an MLTable is a folder) and a model is a folder too."""
    if output_type == input_type:
        return True
    folders = {"uri_folder", "mltable", "custom_model", "mlflow_model"}
    return output_type in folders and input_type in ("uri_folder", "mltable")


def _deterministic(step: PipelineStep, resolved: _Step) -> bool:
    if step.is_deterministic is not None:
        return step.is_deterministic
    return resolved.component.component.is_deterministic


def _workspace(session: Any, workspace: str) -> WorkspaceRow:
    ws = get_workspace(session, workspace)
    if ws is None:
        raise NotFoundError(f"workspace {workspace!r} does not exist", code="workspace_not_found")
    return ws
