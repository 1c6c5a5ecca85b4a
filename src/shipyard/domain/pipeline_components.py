"""Pipeline components: Azure ML's ``pipelineComponent`` YAML, checked. Pure.

A pipeline component is a pipeline with typed ports, versioned like a command component and
used as one step of another pipeline::

    type: pipeline
    name: train_and_score
    inputs:
      data: {type: uri_folder}
      lr: {type: number, default: 0.1}
    outputs:
      scores: {type: uri_folder}
    jobs:
      train:
        component: azureml:train:3
        inputs: {data: "${{parent.inputs.data}}", lr: "${{parent.inputs.lr}}"}
      score:
        component: azureml:score:1
        inputs: {model: "${{parent.jobs.train.outputs.model}}"}
        outputs: {scores: "${{parent.outputs.scores}}"}

Inside it, ``${{parent.inputs.x}}`` is the component's own input and
``${{parent.outputs.y}}`` its own output. ``parse_pipeline_component`` checks the shape and
the names behind every binding: each points at a declared port or a step, the steps form no
cycle, and each declared output is bound by exactly one step (a step of a pipeline takes its
outputs from there). The types behind the bindings need the inner components resolved: the
service checks them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shipyard.domain.component_ports import (
    MAX_TEXT,
    InputSpec,
    OutputSpec,
    invalid,
    parse_inputs,
    parse_outputs,
    text_field,
)
from shipyard.domain.components import (
    ComponentSpec,
    canonical_json,
    check_component_name,
    parse_tags,
    parse_version,
)
from shipyard.domain.errors import InvalidInputError
from shipyard.domain.pipelines import ParentInput, ParentOutput, StepPort, parse_binding, step_order

#: Pipelines inside pipelines, the outermost pipeline job not counted: a step may run a
#: pipeline component whose steps run pipeline components... at most this deep.
MAX_NESTING = 5
#: Steps become child jobs named ``<parent job>-<step>``: the job name rule.
STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
MAX_STEPS = 500

_TOP_KEYS = frozenset(
    {
        "$schema",
        "type",
        "name",
        "version",
        "display_name",
        "description",
        "tags",
        "inputs",
        "outputs",
        "jobs",
    }
)


@dataclass(frozen=True)
class PipelineComponentSpec:
    """A pipeline component, checked. ``jobs`` holds its steps as given (mappings shaped
    like a pipeline job's steps); a registered version has every step's component pinned
    (``azureml:<name>:<version>``)."""

    jobs: dict[str, dict[str, Any]]
    name: str | None = None
    version: str | None = None
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    outputs: dict[str, OutputSpec] = field(default_factory=dict)
    # Levels of pipelines in it, itself included (1: its steps run command components).
    depth: int = 1
    # The names of the pipeline components inside it, at any depth (none contains itself).
    contains: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "pipeline",
            "name": self.name,
            "version": self.version,
            "display_name": self.display_name,
            "description": self.description,
            "tags": dict(self.tags),
            "inputs": {k: v.to_json() for k, v in self.inputs.items()},
            "outputs": {k: v.to_json() for k, v in self.outputs.items()},
            "jobs": self.jobs,
            "depth": self.depth,
            "contains": list(self.contains),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PipelineComponentSpec:
        """A spec this module wrote (stored, so trusted)."""
        return cls(
            jobs={k: dict(v) for k, v in (data.get("jobs") or {}).items()},
            name=data.get("name"),
            version=data.get("version"),
            display_name=data.get("display_name"),
            description=data.get("description"),
            tags=dict(data.get("tags") or {}),
            inputs={k: InputSpec.from_json(v) for k, v in (data.get("inputs") or {}).items()},
            outputs={k: OutputSpec.from_json(v) for k, v in (data.get("outputs") or {}).items()},
            depth=int(data.get("depth", 1)),
            contains=tuple(data.get("contains") or ()),
        )

    def pinned(
        self, jobs: dict[str, dict[str, Any]], depth: int, contains: tuple[str, ...]
    ) -> PipelineComponentSpec:
        """The spec with its steps' components pinned, and what that made of it."""
        return replace(self, jobs=jobs, depth=depth, contains=contains)

    def definition(self) -> dict[str, Any]:
        """What decides what it runs: its ports and its steps (names, descriptions and tags
        left out)."""
        return {
            "type": "pipeline",
            "inputs": {k: v.definition() for k, v in sorted(self.inputs.items())},
            "outputs": {k: v.definition() for k, v in sorted(self.outputs.items())},
            "jobs": self.jobs,
        }

    def definition_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.definition()).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ResolvedComponent:
    """A component reference pinned at submit: what a pipeline step runs."""

    name: str
    version: str
    spec: dict[str, Any]  # ComponentSpec or PipelineComponentSpec .to_json(), pinned
    definition_hash: str

    @property
    def kind(self) -> str:
        """``command``, or ``pipeline`` for a pipeline component."""
        return str(self.spec.get("type") or "command")

    @property
    def component(self) -> ComponentSpec:
        """A command component's spec, for ``domain.components.bind_inputs``."""
        assert self.kind == "command", "a pipeline component has no command spec"
        return ComponentSpec.from_json(self.spec)

    @property
    def pipeline(self) -> PipelineComponentSpec:
        assert self.kind == "pipeline", "a command component has no steps"
        return PipelineComponentSpec.from_json(self.spec)

    @property
    def ports(self) -> ComponentSpec | PipelineComponentSpec:
        """The spec of either kind: its declared inputs and outputs."""
        return self.pipeline if self.kind == "pipeline" else self.component

    @property
    def ref(self) -> str:
        return f"azureml:{self.name}:{self.version}"


def is_pipeline_component(data: object) -> bool:
    return isinstance(data, Mapping) and data.get("type") == "pipeline"


def parse_pipeline_component(data: Mapping[str, Any], *, prefix: str = "") -> PipelineComponentSpec:
    """Check a pipeline component (a YAML file's mapping): its fields, ports and the names
    its bindings use. Every error is a 400 naming its field after ``prefix``."""
    for key in data:
        if key not in _TOP_KEYS:
            raise InvalidInputError(
                f"{str(key)[:60]!r} is not a field of a pipeline component (its fields: "
                "name, version, display_name, description, tags, inputs, outputs, jobs)",
                code="unknown_field",
                field=f"{prefix}{key}",
            )
    name = data.get("name")
    if name is not None:
        check_component_name(name, field=f"{prefix}name")
    inputs = parse_inputs(data.get("inputs"), prefix)
    outputs = parse_outputs(data.get("outputs"), prefix)
    jobs = _jobs(data.get("jobs"), prefix)
    check_binding_names(inputs, outputs, jobs, prefix=prefix)
    return PipelineComponentSpec(
        jobs=jobs,
        name=name,
        version=parse_version(data.get("version"), f"{prefix}version"),
        display_name=text_field(data.get("display_name"), f"{prefix}display_name", 256),
        description=text_field(data.get("description"), f"{prefix}description", MAX_TEXT),
        tags=parse_tags(data.get("tags"), f"{prefix}tags"),
        inputs=inputs,
        outputs=outputs,
    )


def _jobs(value: object, prefix: str) -> dict[str, dict[str, Any]]:
    where = f"{prefix}jobs"
    if value is None:
        raise InvalidInputError(
            "a pipeline component needs jobs: its steps", code="missing_field", field=where
        )
    if not isinstance(value, Mapping) or not value:
        raise invalid(where, "jobs must be a non-empty mapping of step names to steps")
    if len(value) > MAX_STEPS:
        raise invalid(where, f"more than {MAX_STEPS} steps")
    jobs: dict[str, dict[str, Any]] = {}
    for step, body in value.items():
        if not isinstance(step, str) or not STEP_NAME.fullmatch(step):
            raise InvalidInputError(
                f"step name {str(step)[:60]!r} must match {STEP_NAME.pattern}",
                code="invalid_name",
                field=f"{where}.{step}",
            )
        if not isinstance(body, Mapping):
            raise invalid(f"{where}.{step}", "a step is a mapping (component, inputs...)")
        for key in ("inputs", "outputs"):
            if body.get(key) is not None and not isinstance(body[key], Mapping):
                raise invalid(f"{where}.{step}.{key}", f"{key} must be a mapping")
        jobs[step] = dict(body)
    return jobs


def check_binding_names(
    inputs: Mapping[str, InputSpec],
    outputs: Mapping[str, OutputSpec],
    jobs: Mapping[str, Mapping[str, Any]],
    *,
    prefix: str = "",
) -> list[str]:
    """Every binding of every step names something that exists, the steps form no cycle
    and each declared output is bound by exactly one step output. The steps in an order
    where each comes after those it takes outputs from."""
    dependencies: dict[str, set[str]] = {}
    bound: dict[str, str] = {}
    for step, body in jobs.items():
        where = f"{prefix}jobs.{step}"
        dependencies[step] = set()
        for name, value in (body.get("inputs") or {}).items():
            field_name = f"{where}.inputs.{name}"
            binding = parse_binding(value, field=field_name)
            if isinstance(binding, ParentInput) and binding.name not in inputs:
                raise _unknown(field_name, "input", binding.name, inputs)
            if isinstance(binding, ParentOutput):
                raise InvalidInputError(
                    "an input cannot take the pipeline's output",
                    code="invalid_binding",
                    field=field_name,
                )
            if isinstance(binding, StepPort):
                if binding.step not in jobs:
                    raise _unknown(field_name, "step", binding.step, jobs)
                if binding.kind != "outputs":
                    raise InvalidInputError(
                        "bind to a step's outputs (${{parent.jobs.<step>.outputs.<name>}})",
                        code="invalid_binding",
                        field=field_name,
                    )
                dependencies[step].add(binding.step)
        for out, value in (body.get("outputs") or {}).items():
            field_name = f"{where}.outputs.{out}"
            binding = parse_binding(value, field=field_name)
            if isinstance(binding, ParentOutput):
                if binding.name not in outputs:
                    raise _unknown(field_name, "output", binding.name, outputs)
                if binding.name in bound:
                    raise InvalidInputError(
                        f"output {binding.name!r} is bound already, by {bound[binding.name]}: "
                        "one step output makes each pipeline output",
                        code="duplicate_binding",
                        field=field_name,
                    )
                bound[binding.name] = field_name
            elif binding is not None:
                raise InvalidInputError(
                    "a step output binds only to ${{parent.outputs.<name>}}",
                    code="invalid_binding",
                    field=field_name,
                )
    order = step_order(dependencies, prefix=f"{prefix}jobs.")
    for name in outputs:
        if name not in bound:
            raise InvalidInputError(
                f"no step makes output {name!r}: bind a step's output to it with "
                f"outputs: {{<output>: ${{{{parent.outputs.{name}}}}}}}",
                code="unbound_output",
                field=f"{prefix}outputs.{name}",
            )
    return order


def _unknown(field_name: str, what: str, name: str, known: Mapping[str, Any]) -> InvalidInputError:
    names = ", ".join(sorted(known)) or "none"
    return InvalidInputError(
        f"the pipeline component has no {what} named {name!r} (its {what}s: {names})",
        code="unknown_binding",
        field=field_name,
    )
