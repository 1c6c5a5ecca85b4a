"""One level of a pipeline being submitted: its steps, and the bindings between them checked.

A *level* is the pipeline job itself, or a pipeline component one of its steps runs (a
nested pipeline): its inputs are then the values that step gives the component, some of them
known only once upstream steps are done (``Deferred``), and its outputs the settings that
step gives the component's outputs. Every step of a level is checked the same way
(``bind_level``): literals and data against the step's component's declared types, bindings
followed to what they name and their types matched. Errors name the field in the tree of
steps (``jobs.<step>.inputs.<input>``, ``jobs.<outer>.jobs.<inner>.inputs.<input>``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from shipyard.domain.components import DATA_TYPES, ComponentSpec, bind_inputs
from shipyard.domain.errors import InvalidInputError
from shipyard.domain.pipeline_components import PipelineComponentSpec, ResolvedComponent
from shipyard.domain.pipelines import ParentInput, ParentOutput, StepPort, compatible, parse_binding
from shipyard.domain.sweeps import SweepConfig
from shipyard.schemas.jobs import JOB_NAME, DataInput, JobOutput
from shipyard.schemas.pipelines import PipelineSettings, PipelineStep
from shipyard.services.jobs import PreparedJob
from shipyard.services.sweeps import examples


@dataclass(frozen=True)
class Deferred:
    """A nested pipeline's input that an upstream step's output gives: its place is known
    once that step is done (the runner fills it in when the nested pipeline starts)."""

    type: str


@dataclass
class Level:
    """The pipeline whose steps are being planned: the job, or a nested pipeline."""

    inputs: dict[str, Any]  # a literal, a DataInput, a data mapping, Deferred or None
    outputs: dict[str, JobOutput | None]
    settings: PipelineSettings
    compute: str | None
    jobs: dict[str, PipelineStep]
    where: str  # where its steps are: "jobs." or "jobs.<outer>.jobs."
    job_name: str  # the job its steps are children of
    experiment_name: str
    depth: int = 0  # 0: the pipeline job; 1: a pipeline component a step runs...
    chain: tuple[str, ...] = ()  # the named pipeline components it sits in, outermost first
    # Which step output makes each of its outputs (filled by bind_level).
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class PlannedStep:
    name: str
    component: ResolvedComponent
    values: dict[str, Any] = field(default_factory=dict)  # bound literal and data inputs
    deferred: dict[str, dict[str, Any]] = field(default_factory=dict)  # filled in later
    outputs: dict[str, JobOutput | None] = field(default_factory=dict)
    upstream: set[str] = field(default_factory=set)
    # A sweep step: its checked settings (and as stored); the component is its trial's.
    sweep: tuple[SweepConfig, dict[str, Any]] | None = None
    prepared: PreparedJob | None = None
    # A nested pipeline: its own steps, planned, in order.
    children: dict[str, PlannedStep] | None = None

    @property
    def ports(self) -> ComponentSpec | PipelineComponentSpec:
        return self.component.ports


def child_name(level: Level, step: str) -> str:
    """``<parent job>-<step>``; refused when nesting makes it longer than a job name may be."""
    name = f"{level.job_name}-{step}"
    if not JOB_NAME.fullmatch(name):
        raise InvalidInputError(
            f"the step's job would be named {name[:60]!r}... ({len(name)} characters; at most "
            "255): shorten the pipeline's or the steps' names",
            code="name_too_long",
            field=f"{level.where}{step}",
        )
    return name


def parsed_step(raw: object, where: str) -> PipelineStep:
    """A stored or inline pipeline component's step, shaped like a pipeline job's."""
    try:
        return PipelineStep.model_validate(raw)
    except ValidationError as exc:
        raise invalid(exc, where) from exc


def invalid(exc: ValidationError, where: str) -> InvalidInputError:
    """A nested model's first error, naming its field under ``where``."""
    first = exc.errors()[0]
    path = ".".join(str(part) for part in first["loc"])
    return InvalidInputError(
        str(first["msg"]).removeprefix("Value error, "),
        code="missing_field" if first["type"] == "missing" else "invalid_field",
        field=f"{where}.{path}" if path else where,
    )


def value_type(value: object) -> str | None:
    """The port type a pipeline input's value stands for (None: unset)."""
    if isinstance(value, Deferred):
        return value.type
    if isinstance(value, DataInput):
        return value.type
    if isinstance(value, dict):
        return str(value.get("type", "uri_folder"))
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return None if value is None else "string"


def inline_component(
    step: PipelineStep, parent_type: Callable[[str], str | None], where: str
) -> dict[str, Any]:
    """An inline command step as a component: its inputs typed from the values given (a
    ``${{parent.inputs.x}}`` binding takes the type of the pipeline's input ``x``)."""
    inputs: dict[str, Any] = {}
    for input_name, value in step.inputs.items():
        binding = parse_binding(value, field=f"{where}.inputs.{input_name}")
        if isinstance(binding, StepPort):
            kind: str | None = "uri_folder"
        elif isinstance(binding, ParentInput):
            kind = parent_type(binding.name)
        else:
            kind = value_type(value)
        inputs[input_name] = {"type": kind or "string", "optional": kind is None}
        if kind in DATA_TYPES:
            inputs[input_name] = {"type": kind}
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


# -- bindings -------------------------------------------------------------------------------


def bind_level(level: Level, steps: dict[str, PlannedStep]) -> None:
    """Every step input and output of one level: literals and data checked against the
    component's types, bindings followed to what they name."""
    for name, step in level.jobs.items():
        current = steps[name]
        spec = current.ports
        where = f"{level.where}{name}"
        checked: dict[str, Any] = {}
        for input_name, value in step.inputs.items():
            field_name = f"{where}.inputs.{input_name}"
            binding = parse_binding(value, field=field_name)
            declared = spec.inputs.get(input_name)
            if isinstance(binding, ParentInput):
                checked[input_name] = _parent_input(level, current, input_name, binding,
                                                    declared, field_name)  # fmt: skip
            elif isinstance(binding, StepPort):
                upstream = _upstream_output(steps, binding, field_name)
                _check_type(upstream, declared, input_name, f"step {binding.step!r}'s output "
                            f"{binding.name!r}", field_name)  # fmt: skip
                current.upstream.add(binding.step)
                current.deferred[input_name] = _deferred(
                    declared.type if declared else upstream, declared,
                    {"step": binding.step, "output": binding.name},
                )  # fmt: skip
                # A stand-in so the component's checks (required, types) still run.
                checked[input_name] = {"type": upstream, "path": "azureml://upstream"}
            elif isinstance(binding, ParentOutput):
                raise InvalidInputError(
                    "an input cannot take a pipeline output",
                    code="invalid_binding",
                    field=field_name,
                )
            else:
                checked[input_name] = value
        if current.sweep is not None:  # checked with example values; sampled later
            checked.update(examples(current.sweep[0]))
        bound = bind_inputs(spec, checked, field=f"{where}.inputs")
        current.values = {k: v for k, v in bound.items() if k not in current.deferred}
        current.outputs = _outputs(level, name, step, spec)


def _parent_input(
    level: Level,
    current: PlannedStep,
    input_name: str,
    binding: ParentInput,
    declared: Any,
    field_name: str,
) -> Any:
    """What ``${{parent.inputs.x}}`` gives a step input (or a stand-in for checking, when
    it is known only later)."""
    if binding.name not in level.inputs:
        known = ", ".join(sorted(level.inputs)) or "none"
        raise InvalidInputError(
            f"the pipeline has no input named {binding.name!r} (its inputs: {known})",
            code="unknown_binding",
            field=field_name,
        )
    given = level.inputs[binding.name]
    if isinstance(given, Deferred):
        _check_type(given.type, declared, input_name, f"the pipeline's input {binding.name!r}",
                    field_name)  # fmt: skip
        current.deferred[input_name] = _deferred(
            declared.type if declared else given.type, declared, {"parent_input": binding.name}
        )
        return {"type": given.type, "path": "azureml://upstream"}
    if isinstance(given, DataInput):
        given = given.model_dump(exclude_none=True)
    # A folder given to a folder or MLTable input takes the input's own type.
    if (
        isinstance(given, dict)
        and declared is not None
        and declared.type in DATA_TYPES
        and compatible(str(given.get("type", "uri_folder")), declared.type)
    ):
        given = {**given, "type": declared.type}
    return given


def _deferred(kind: str, declared: Any, source: dict[str, str]) -> dict[str, Any]:
    mode = declared.mode if declared is not None else None
    return {"kind": "data", "type": kind, "mode": mode or "ro_mount", "uri": None,
            "asset": None, "from": source}  # fmt: skip


def _check_type(source: str, declared: Any, input_name: str, what: str, field_name: str) -> None:
    if declared is None or compatible(source, declared.type):
        return
    raise InvalidInputError(
        f"input {input_name!r} takes {declared.type}; {what} is {source} and cannot feed it",
        code="type_mismatch",
        field=field_name,
    )


def _upstream_output(steps: dict[str, PlannedStep], binding: StepPort, field_name: str) -> str:
    """The type of the step output a binding names."""
    if binding.step not in steps:
        raise InvalidInputError(
            f"the pipeline has no step named {binding.step!r}",
            code="unknown_binding",
            field=field_name,
        )
    if binding.kind != "outputs":
        raise InvalidInputError(
            "bind to a step's outputs (${{parent.jobs.<step>.outputs.<name>}})",
            code="invalid_binding",
            field=field_name,
        )
    outputs = steps[binding.step].ports.outputs
    if binding.name not in outputs:
        raise InvalidInputError(
            f"step {binding.step!r} has no output named {binding.name!r} "
            f"(its outputs: {', '.join(sorted(outputs)) or 'none'})",
            code="unknown_binding",
            field=field_name,
        )
    return outputs[binding.name].type


def _outputs(
    level: Level, name: str, step: PipelineStep, spec: ComponentSpec | PipelineComponentSpec
) -> dict[str, JobOutput | None]:
    outputs: dict[str, JobOutput | None] = {
        out: JobOutput(type=declared.type) for out, declared in spec.outputs.items()
    }
    for out, value in step.outputs.items():
        field_name = f"{level.where}{name}.outputs.{out}"
        if out not in spec.outputs:
            raise InvalidInputError(
                f"the step has no output named {out!r}", code="unknown_output", field=field_name
            )
        binding = parse_binding(value, field=field_name)
        declared_type = spec.outputs[out].type
        if isinstance(binding, ParentOutput):
            if binding.name not in level.outputs:
                raise InvalidInputError(
                    f"the pipeline has no output named {binding.name!r}",
                    code="unknown_binding",
                    field=field_name,
                )
            parent = level.outputs[binding.name] or JobOutput(type=declared_type)
            outputs[out] = parent.model_copy(update={"type": declared_type})
            level.sources[binding.name] = (name, out)
        elif binding is not None:
            raise InvalidInputError(
                "a step output binds only to ${{parent.outputs.<name>}}",
                code="invalid_binding",
                field=field_name,
            )
        elif isinstance(value, dict):
            outputs[out] = JobOutput.model_validate({"type": declared_type, **value})
    return outputs
