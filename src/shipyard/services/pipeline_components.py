"""Registering pipeline components: every step's component pinned, the ports' types checked.

A registered version means the same thing forever, like a command component's. So a step's
``component:`` reference (``azureml:train@latest``) is pinned to the version it names now,
and a component given inline (a mapping, a local file the CLI or SDK inlined, or an inline
``command:`` step) is registered as Azure's anonymous component (``azureml_anonymous``,
versioned by its definition's hash, archived so that lists leave it out) and referred to by
that version: its code snapshot is then kept like any component's.

Then what crosses each binding is checked, as far as it can be before values are given: the
types at both ends, literal values against the inputs they set, required inputs given. A
pipeline component never contains a pipeline component of its own name, at any depth (with
``@latest`` such a tree would be a loop, and one name for the whole and a part of it is
a puzzle for its readers), and nests at most ``MAX_NESTING`` deep.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from shipyard.domain.components import ANONYMOUS_NAME, coerce_value
from shipyard.domain.errors import InvalidInputError
from shipyard.domain.pipeline_components import (
    MAX_NESTING,
    PipelineComponentSpec,
    ResolvedComponent,
    is_pipeline_component,
    parse_pipeline_component,
)
from shipyard.domain.pipelines import ParentInput, StepPort, compatible, parse_binding
from shipyard.domain.principals import Principal
from shipyard.schemas.pipelines import PipelineStep
from shipyard.services.pipeline_steps import inline_component, parsed_step

#: ``Components.resolve``: a reference or an inline command component, pinned.
Resolve = Callable[..., ResolvedComponent]
#: Registers an inline component under the anonymous name; returns its version.
Register = Callable[[Principal, str, ResolvedComponent], str]


class PipelineComponentPins:
    def __init__(self, resolve: Resolve, register: Register) -> None:
        self.resolve = resolve
        self.register = register

    def pinned(
        self, principal: Principal, workspace: str, data: Mapping[str, Any], *, prefix: str
    ) -> PipelineComponentSpec:
        """A pipeline component checked and pinned, ready to be stored; 4xx naming the
        field (after ``prefix``) otherwise."""
        spec = parse_pipeline_component(data, prefix=prefix)
        steps: dict[str, PipelineStep] = {}
        resolved: dict[str, ResolvedComponent] = {}
        jobs: dict[str, dict[str, Any]] = {}
        contains: set[str] = set()
        depth = 1
        for name, raw in spec.jobs.items():
            where = f"{prefix}jobs.{name}"
            steps[name] = parsed_step(raw, where)
            jobs[name], resolved[name] = self._step(principal, workspace, spec, steps[name],
                                                    raw, where)  # fmt: skip
            if resolved[name].kind != "pipeline":
                continue
            inner = resolved[name].pipeline
            names = {inner.name or resolved[name].name, *inner.contains} - {ANONYMOUS_NAME}
            if spec.name is not None and spec.name in names:
                raise InvalidInputError(
                    f"pipeline component {spec.name!r} would contain itself (through "
                    f"{inner.name or resolved[name].ref})",
                    code="component_cycle",
                    field=f"{where}.component",
                )
            contains |= names
            depth = max(depth, 1 + inner.depth)
            if depth > MAX_NESTING:
                raise InvalidInputError(
                    f"pipelines nest at most {MAX_NESTING} deep; with this step the pipeline "
                    f"component is {depth} deep",
                    code="nesting_too_deep",
                    field=f"{where}.component",
                )
        for name, step in steps.items():
            _check_ports(spec, name, step, resolved, f"{prefix}jobs.{name}")
        return spec.pinned(jobs, depth, tuple(sorted(contains)))

    def _step(
        self,
        principal: Principal,
        workspace: str,
        spec: PipelineComponentSpec,
        step: PipelineStep,
        raw: Mapping[str, Any],
        where: str,
    ) -> tuple[dict[str, Any], ResolvedComponent]:
        """The step as stored (its component a pinned reference) and its component."""
        body = dict(raw)
        if step.type == "sweep":
            trial = step.trial
            if isinstance(trial, str) or (
                isinstance(trial, Mapping) and ("inputs" in trial or "outputs" in trial)
            ):
                component = self._component(principal, workspace, trial, f"{where}.trial")
                if component.kind != "command":
                    raise InvalidInputError(
                        "a sweep's trial is a command component, not a pipeline component",
                        code="invalid_trial",
                        field=f"{where}.trial",
                    )
                body["trial"] = component.ref
                return body, component
            raise InvalidInputError(
                "inside a pipeline component, a sweep step's trial is a component (a "
                "reference, a file, or an inline component with its inputs), not an inline "
                "command",
                code="unsupported_step",
                field=f"{where}.trial",
            )
        if (step.component is None) == (step.command is None):
            raise InvalidInputError(
                "a step has either a component or a command (an inline command job)",
                code="invalid_step",
                field=f"{where}.component",
            )
        if step.command is not None:

            def parent_type(name: str) -> str | None:
                declared = spec.inputs.get(name)
                return declared.type if declared is not None else None

            inline = inline_component(step, parent_type, where)
            component = self._component(principal, workspace, inline, where)
            for key in ("command", "code", "environment", "is_deterministic"):
                body.pop(key, None)
        else:
            assert step.component is not None
            component = self._component(principal, workspace, step.component,
                                        f"{where}.component")  # fmt: skip
        body["component"] = component.ref
        return body, component

    def _component(
        self, principal: Principal, workspace: str, ref: str | Mapping[str, Any], field: str
    ) -> ResolvedComponent:
        """A step's component pinned: a reference resolved to its version, an inline one
        registered under the anonymous name."""
        if not isinstance(ref, Mapping):
            return self.resolve(principal, workspace, ref, field=field)
        if is_pipeline_component(ref):
            inner = self.pinned(principal, workspace, ref, prefix=f"{field}.")
            digest = inner.definition_hash()
            resolved = ResolvedComponent(ANONYMOUS_NAME, digest[:32], inner.to_json(), digest)
        else:
            resolved = self.resolve(principal, workspace, ref, field=field)
        version = self.register(principal, workspace, resolved)
        return replace(resolved, name=ANONYMOUS_NAME, version=version)


def _check_ports(
    spec: PipelineComponentSpec,
    name: str,
    step: PipelineStep,
    resolved: Mapping[str, ResolvedComponent],
    where: str,
) -> None:
    """What crosses each of a step's bindings, checked against its component's ports."""
    ports = resolved[name].ports
    for input_name, value in step.inputs.items():
        field = f"{where}.inputs.{input_name}"
        declared = ports.inputs.get(input_name)
        if declared is None:
            known = ", ".join(sorted(ports.inputs)) or "none"
            raise InvalidInputError(
                f"the component has no input named {input_name!r} (its inputs: {known})",
                code="unknown_input",
                field=field,
            )
        binding = parse_binding(value, field=field)
        source: str | None = None
        if isinstance(binding, ParentInput):
            source = spec.inputs[binding.name].type
        elif isinstance(binding, StepPort):
            made = resolved[binding.step].ports.outputs.get(binding.name)
            if made is None:
                raise InvalidInputError(
                    f"step {binding.step!r} has no output named {binding.name!r}",
                    code="unknown_binding",
                    field=field,
                )
            source = made.type
        else:
            coerce_value(declared, value, field, input_name)
        if source is not None and not compatible(source, declared.type):
            raise InvalidInputError(
                f"input {input_name!r} takes {declared.type}; {source} cannot feed it",
                code="type_mismatch",
                field=field,
            )
    sampled = set(step.search_space or {}) if step.type == "sweep" else set()
    for input_name, declared in ports.inputs.items():
        if declared.required and input_name not in step.inputs and input_name not in sampled:
            raise InvalidInputError(
                f"input {input_name!r} is required: give it a value or a binding",
                code="missing_input",
                field=f"{where}.inputs.{input_name}",
            )
    for output in step.outputs:
        if output not in ports.outputs:
            raise InvalidInputError(
                f"the component has no output named {output!r}",
                code="unknown_output",
                field=f"{where}.outputs.{output}",
            )
