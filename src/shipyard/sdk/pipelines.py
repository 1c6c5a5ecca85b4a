"""The pipeline DSL: a decorated function wires component steps together.

    from shipyard.sdk.components import load_component
    from shipyard.sdk.jobs import Input
    from shipyard.sdk.pipelines import pipeline

    prep = load_component("prep.yml")
    train = load_component("train.yml")

    @pipeline(experiment_name="churn")
    def churn(raw, lr=0.1):
        cleaned = prep(raw=raw)
        model = train(data=cleaned.outputs.table, lr=lr)
        return {"model": model.outputs.model}

    job = ws.jobs.create(churn(raw=Input(path="azureml:customers@latest"), lr=0.2))

Calling the decorated function runs its body once, with the pipeline's parameters standing
for ``${{parent.inputs.<name>}}``; each component call made inside becomes a step named
after the variable it was assigned to (``cleaned``, ``model``). The result is the pipeline
job YAML as a mapping, which ``ws.jobs.create`` submits like a loaded file.

Called inside another ``@pipeline`` function, a decorated function is a **pipeline
component** step instead: its body becomes an inline ``type: pipeline`` component (its
ports typed from the values given and from the inputs of the steps its parameters feed,
its outputs from the mapping it returns), and ``step.outputs.<name>`` feeds later steps, as
``component: {type: pipeline, ...}`` does in YAML::

    @pipeline
    def train_and_score(data, lr=0.1):
        model = train(data=data, lr=lr)
        return {"scores": score(model=model.outputs.model).outputs.scores}

    @pipeline
    def twice(raw):
        first = train_and_score(data=raw, lr=0.1)
        second = train_and_score(data=raw, lr=0.2)
        return {"a": first.outputs.scores, "b": second.outputs.scores}
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, ParamSpec, overload

from shipyard.domain.component_ports import InputSpec, OutputSpec
from shipyard.domain.components import ComponentSpec
from shipyard.domain.errors import InvalidInputError
from shipyard.sdk.components import CommandComponent, ComponentStep, OutputBinding, StepOutputs
from shipyard.sdk.jobs import Input, Output

# How many pipeline functions are running their bodies now: above zero, a decorated
# function called is a step of the pipeline being built, not a job of its own.
_BUILDING: ContextVar[int] = ContextVar("shipyard_pipelines_building", default=0)
_COMPONENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,254}$")


@dataclass(frozen=True)
class PipelineInput:
    """A parameter of the pipeline function, as it stands inside its body."""

    name: str

    def __str__(self) -> str:
        return f"${{{{parent.inputs.{self.name}}}}}"


@dataclass
class PipelineJob:
    """A pipeline built by the DSL: ``to_dict()`` is its job YAML. Built inside another
    pipeline function, it is that pipeline's step (``as_step``): ``outputs`` binds its
    outputs to later steps."""

    spec: dict[str, Any]
    base_dir: Any = None
    steps: dict[str, ComponentStep] = field(default_factory=dict)
    as_step: ComponentStep | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.spec)

    @property
    def outputs(self) -> StepOutputs:
        if self.as_step is None:
            raise InvalidInputError(
                "only a pipeline used as a step of another pipeline has outputs to bind",
                code="invalid_pipeline",
                field="outputs",
            )
        return self.as_step.outputs


@dataclass(eq=False)
class PipelineComponent(CommandComponent):
    """A pipeline function used as a step: its ports, and the inline ``type: pipeline``
    component the step sends (``data``)."""

    inline: dict[str, Any] = field(default_factory=dict)


P = ParamSpec("P")


@overload
def pipeline(func: Callable[P, Any], /) -> Callable[P, PipelineJob]: ...


@overload
def pipeline(
    func: None = None,
    *,
    name: str | None = None,
    experiment_name: str | None = None,
    display_name: str | None = None,
    description: str | None = None,
    default_compute: str | None = None,
    continue_on_step_failure: bool | None = None,
    force_rerun: bool | None = None,
) -> Callable[[Callable[P, Any]], Callable[P, PipelineJob]]: ...


def pipeline(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    experiment_name: str | None = None,
    display_name: str | None = None,
    description: str | None = None,
    default_compute: str | None = None,
    continue_on_step_failure: bool | None = None,
    force_rerun: bool | None = None,
) -> Any:
    """Make ``func`` build a pipeline job when called (see the module's example); used bare
    (``@pipeline``) or with settings (``@pipeline(experiment_name=...)``). The built
    ``PipelineJob`` is what ``ws.jobs.create`` takes (typed: a user's mypy accepts it)."""

    def decorate(body: Callable[..., Any]) -> Callable[..., PipelineJob]:
        @functools.wraps(body)
        def build(*args: Any, **kwargs: Any) -> PipelineJob:
            signature = inspect.signature(body)
            given = signature.bind(*args, **kwargs)
            given.apply_defaults()
            placeholders = {p: PipelineInput(p) for p in signature.parameters}
            nested = _BUILDING.get() > 0
            depth = _BUILDING.set(_BUILDING.get() + 1)
            try:
                returned, local_names = _run(body, placeholders)
            finally:
                _BUILDING.reset(depth)
            steps = _name_steps(local_names, returned)
            settings: dict[str, Any] = {}
            if default_compute is not None:
                settings["default_compute"] = default_compute
            if continue_on_step_failure is not None:
                settings["continue_on_step_failure"] = continue_on_step_failure
            if force_rerun is not None:
                settings["force_rerun"] = force_rerun
            spec: dict[str, Any] = {
                "type": "pipeline",
                "inputs": {k: _value(v) for k, v in given.arguments.items() if v is not None},
                "jobs": {},
            }
            for key, value in (
                ("name", name),
                ("experiment_name", experiment_name or body.__name__),
                ("display_name", display_name),
                ("description", description or inspect.getdoc(body)),
            ):
                if value is not None:
                    spec[key] = value
            if settings:
                spec["settings"] = settings
            outputs = _outputs(returned)
            spec["outputs"] = {k: {"type": b.type} for k, b in outputs.items()}
            bound_outputs = {(id(b.step), b.output): k for k, b in outputs.items()}
            for step_name, step in steps.items():
                spec["jobs"][step_name] = _step(step, bound_outputs)
            job = PipelineJob(spec, steps=steps)
            if nested:
                job.as_step = _as_step(body, signature, given.arguments, spec, steps)
            return job

        return build

    return decorate(func) if func is not None else decorate


def _run(body: Callable[..., Any], args: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Call ``body`` and catch its local variables as it returns (how steps get names)."""
    captured: dict[str, Any] = {}
    code = body.__code__

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "return" and frame.f_code is code:
            captured.update(frame.f_locals)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        returned = body(**args)
    finally:
        sys.setprofile(previous)
    return returned, captured


def _as_step(
    body: Callable[..., Any],
    signature: inspect.Signature,
    given: Mapping[str, Any],
    built: Mapping[str, Any],
    steps: Mapping[str, ComponentStep],
) -> ComponentStep:
    """The step a pipeline function makes inside another: an inline pipeline component
    (what ``component: {type: pipeline, ...}`` is in YAML) with the values given."""
    inputs: dict[str, InputSpec] = {}
    for name, parameter in signature.parameters.items():
        default = parameter.default
        literal = default if isinstance(default, str | int | float | bool) else None
        inputs[name] = InputSpec(
            type=_input_type(name, given.get(name), literal, steps),
            default=literal,
            optional=default is None,
        )
    outputs = {k: OutputSpec(type=v["type"]) for k, v in built["outputs"].items()}
    inline: dict[str, Any] = {"type": "pipeline"}
    if _COMPONENT_NAME.fullmatch(body.__name__):
        inline["name"] = body.__name__
    if built.get("description"):
        inline["description"] = built["description"]
    inline["inputs"] = {k: _port(v) for k, v in inputs.items()}
    inline["outputs"] = {k: v.to_json() for k, v in outputs.items()}
    inline["jobs"] = built["jobs"]
    ports = ComponentSpec(
        command="", environment="", name=inline.get("name"), inputs=inputs, outputs=outputs
    )
    component = PipelineComponent(ports, f"@pipeline {body.__name__}", inline=inline)
    values = {k: v for k, v in given.items() if v is not None}
    return ComponentStep(component, values)


def _input_type(name: str, value: Any, default: Any, steps: Mapping[str, ComponentStep]) -> str:
    """A pipeline component's input type: from the value given, else from what its inner
    steps declare for the inputs it feeds, else from its default."""
    for known in (value, default):
        if isinstance(known, OutputBinding):
            return known.type
        if isinstance(known, Input):
            return known.type
        if isinstance(known, bool):
            return "boolean"
        if isinstance(known, int):
            return "integer"
        if isinstance(known, float):
            return "number"
    placeholder = PipelineInput(name)
    for step in steps.values():
        for input_name, given in step.inputs.items():
            declared = step.component.spec.inputs.get(input_name)
            if given == placeholder and declared is not None:
                return declared.type
    if isinstance(value, str) or isinstance(default, str):
        return "string"
    raise InvalidInputError(
        f"the type of pipeline input {name!r} is unknown: give it a value, a default, or pass "
        "it to a step",
        code="invalid_pipeline",
        field=f"inputs.{name}",
    )


def _port(spec: InputSpec) -> dict[str, Any]:
    body: dict[str, Any] = {"type": spec.type}
    if spec.default is not None:
        body["default"] = spec.default
    if spec.optional:
        body["optional"] = True
    return body


def _name_steps(local_names: Mapping[str, Any], returned: Any) -> dict[str, ComponentStep]:
    steps: dict[str, ComponentStep] = {}
    local_names = {
        k: v.as_step if isinstance(v, PipelineJob) and v.as_step is not None else v
        for k, v in local_names.items()
    }
    for variable, value in local_names.items():
        if isinstance(value, ComponentStep) and value.name is None:
            value.name = variable
        if isinstance(value, ComponentStep):
            steps[value.name or variable] = value
    # Steps only reachable through bindings (never assigned) get their component's name.
    pending = list(steps.values()) + [b.step for b in _outputs(returned).values()]
    while pending:
        step = pending.pop()
        if step.name is None:
            base = step.component.spec.name or "step"
            candidate, n = base, 1
            while candidate in steps:
                candidate, n = f"{base}_{n}", n + 1
            step.name = candidate
        steps.setdefault(step.name, step)
        pending.extend(
            v.step
            for v in step.inputs.values()
            if isinstance(v, OutputBinding) and v.step.name is None
        )
        for value in step.inputs.values():
            if isinstance(value, OutputBinding) and value.step.name not in steps:
                pending.append(value.step)
    return steps


def _outputs(returned: Any) -> dict[str, OutputBinding]:
    if returned is None:
        return {}
    if not isinstance(returned, Mapping) or not all(
        isinstance(v, OutputBinding) for v in returned.values()
    ):
        raise InvalidInputError(
            "a pipeline function returns a mapping of output names to step outputs "
            "(step.outputs.<name>), or nothing",
            code="invalid_pipeline",
            field="outputs",
        )
    return dict(returned)


def _step(step: ComponentStep, bound_outputs: Mapping[tuple[int, str], str]) -> dict[str, Any]:
    component = step.component
    source: Any = component.source
    if isinstance(component, PipelineComponent):
        source = component.inline
    elif component.is_local and component.data is not None:
        source = str(component.source)
    body: dict[str, Any] = {"component": source, "inputs": {}}
    for name, value in step.inputs.items():
        if isinstance(value, OutputBinding):
            body["inputs"][name] = value.expression()
        else:
            body["inputs"][name] = _value(value)
    outputs = {
        out: f"${{{{parent.outputs.{pipeline_output}}}}}"
        for (step_id, out), pipeline_output in bound_outputs.items()
        if step_id == id(step)
    }
    if outputs:
        body["outputs"] = outputs
    return body


def _value(value: Any) -> Any:
    if isinstance(value, PipelineInput):
        return str(value)
    if isinstance(value, Input | Output):
        return value.to_dict()
    return value
