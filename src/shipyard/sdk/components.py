"""``ws.components`` and ``load_component``: command components (Azure ML's
``ml_client.components`` and ``azure.ai.ml.load_component``).

Register a component from its YAML file::

    train = ws.components.create("components/train.yml")   # uploads ./src by content
    ws.components.get("train", label="latest").version

and use one as a pipeline step: a loaded component is callable; calling it with the step's
inputs gives a step whose outputs feed later steps::

    from shipyard.sdk.components import load_component
    from shipyard.sdk.jobs import Input

    train = load_component("components/train.yml")
    score = load_component(ws.components.get("score", label="latest"))
    trained = train(data=Input(type="uri_folder", path="azureml:customers@latest"), lr=0.1)
    scored = score(model=trained.outputs.model)

``@pipeline`` (the pipeline DSL) names the steps and turns ``trained.outputs.model`` into
``${{parent.jobs.<step>.outputs.model}}``.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shipyard.domain.components import (
    COMPONENT_VERSION,
    LATEST,
    ComponentSpec,
    InputSpec,
    OutputSpec,
    check_component_name,
    coerce_value,
    parse_component,
)
from shipyard.domain.errors import InvalidInputError, ShipyardError
from shipyard.schemas.components import ComponentRead, ComponentVersionRead
from shipyard.sdk.code import localize_component
from shipyard.sdk.http import HttpSession
from shipyard.sdk.jobs import Input, JobSubmissions
from shipyard.sdk.uploads import ContentUploads, UploadProgress
from shipyard.sdk.yaml import YamlDocument, YamlFileError, load_yaml_file

Component = ComponentVersionRead
_UNSET: Any = object()
_VERSION = re.compile(COMPONENT_VERSION)
_EXPRESSION = re.compile(r"^\s*\$\{\{.*\}\}\s*$", re.DOTALL)
_REF_PREFIXES = ("azureml:", "shipyard:")


# -- components as pipeline steps -----------------------------------------------------------


@dataclass(eq=False)
class CommandComponent:
    """A component loaded from a YAML file or from the workspace: call it with a step's
    inputs to get a step."""

    spec: ComponentSpec
    source: str  # the YAML file's path, or azureml:<name>:<version> for a registered one
    data: dict[str, Any] | None = None  # the YAML file's mapping (local components)
    base_dir: Path | None = None  # where the file's relative paths start

    @property
    def name(self) -> str | None:
        return self.spec.name

    @property
    def version(self) -> str | None:
        return self.spec.version

    @property
    def is_local(self) -> bool:
        return self.data is not None

    def __call__(self, **inputs: object) -> ComponentStep:
        """A step with these inputs: literals (checked against the declared types now),
        ``Input(...)`` for data, or another step's ``outputs.<name>``."""
        for name, value in inputs.items():
            declared = self.spec.inputs.get(name)
            where = f"inputs.{name}"
            if declared is None:
                known = ", ".join(sorted(self.spec.inputs)) or "none"
                raise InvalidInputError(
                    f"component {self.spec.name or self.source!r} has no input named {name!r} "
                    f"(its inputs: {known})",
                    code="unknown_input",
                    field=where,
                )
            if isinstance(value, Input):
                coerce_value(declared, value.to_dict(), where, name)
            elif isinstance(value, str | int | float | bool) and not _is_expression(value):
                coerce_value(declared, value, where, name)
        return ComponentStep(self, dict(inputs))

    def __repr__(self) -> str:
        return f"CommandComponent({self.source!r})"


@dataclass(eq=False)
class ComponentStep:
    """One use of a component in a pipeline: its inputs, and (once the pipeline names it)
    its step name. ``step.outputs.<name>`` binds an output to a later step's input."""

    component: CommandComponent
    inputs: dict[str, object] = field(default_factory=dict)
    name: str | None = None

    @property
    def outputs(self) -> StepOutputs:
        return StepOutputs(self)


class StepOutputs:
    """Attribute (or item) access to a step's declared outputs."""

    def __init__(self, step: ComponentStep) -> None:
        self._step = step

    def __getattr__(self, name: str) -> OutputBinding:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> OutputBinding:
        declared = self._step.component.spec.outputs
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise AttributeError(
                f"component {self._step.component.spec.name or self._step.component.source!r} "
                f"has no output named {name!r} (its outputs: {known})"
            )
        return OutputBinding(self._step, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._step.component.spec.outputs)

    def __dir__(self) -> builtins.list[str]:
        return sorted(self._step.component.spec.outputs)


@dataclass(frozen=True, eq=False)
class OutputBinding:
    """An output of a step, given as another step's input."""

    step: ComponentStep
    output: str

    @property
    def type(self) -> str:
        return self.step.component.spec.outputs[self.output].type

    def expression(self, step_name: str | None = None) -> str:
        """``${{parent.jobs.<step>.outputs.<output>}}``, the pipeline YAML's binding."""
        name = step_name or self.step.name
        if name is None:
            raise InvalidInputError(
                "the step has no name yet: the pipeline names its steps",
                code="unnamed_step",
                field=f"outputs.{self.output}",
            )
        return f"${{{{parent.jobs.{name}.outputs.{self.output}}}}}"


def load_component(source: str | Path | ComponentVersionRead) -> CommandComponent:
    """A component from a YAML file (checked here: errors name the file, line and field),
    or from a version ``ws.components.get(...)`` returned. For a reference string, use
    ``ws.components.load("azureml:<name>:<version>")``."""
    if isinstance(source, ComponentVersionRead):
        return _from_read(source)
    if isinstance(source, str) and source.lower().startswith(_REF_PREFIXES):
        raise InvalidInputError(
            f"{source!r} is a reference: load it with ws.components.load({source!r})",
            code="invalid_reference",
            field="source",
        )
    path = Path(source).expanduser()
    document = load_yaml_file(path)
    try:
        spec = parse_component(document.data)
    except ShipyardError as exc:
        raise _at_line(document, exc) from exc
    return CommandComponent(spec, str(path), dict(document.data), path.resolve().parent)


def _from_read(read: ComponentVersionRead) -> CommandComponent:
    if read.type == "pipeline":
        raise InvalidInputError(
            f"{read.id} is a pipeline component: use it as a pipeline step in YAML "
            f"(component: {read.id}); the DSL calls command components",
            code="unsupported_component_type",
            field="source",
        )
    spec = ComponentSpec(
        command=read.command,
        environment=read.environment or "",
        name=read.name,
        version=read.version,
        display_name=read.display_name,
        description=read.description,
        tags=dict(read.tags),
        is_deterministic=read.is_deterministic,
        code=read.code,
        resources=dict(read.resources),
        distribution=read.distribution,
        inputs={k: InputSpec.from_json(v.model_dump()) for k, v in read.inputs.items()},
        outputs={k: OutputSpec.from_json(v.model_dump()) for k, v in read.outputs.items()},
    )
    return CommandComponent(spec, read.id)


def _is_expression(value: object) -> bool:
    return isinstance(value, str) and _EXPRESSION.match(value) is not None


def _at_line(document: YamlDocument, exc: ShipyardError) -> ShipyardError:
    if isinstance(exc, YamlFileError) or not exc.field:
        return exc
    return document.error(exc)


# -- the operation group --------------------------------------------------------------------


class ComponentOperations:
    """Register, read and archive components.

    Example::

        ws = client.workspace("churn")
        made = ws.components.create("train.yml")          # azureml:train:1
        ws.components.get("train", label="latest")
        for version in ws.components.list("train"):
            print(version.version, version.definition_hash)
    """

    def __init__(self, http: HttpSession, workspace: str) -> None:
        self._http = http
        self._root = f"/api/v1/workspaces/{quote(workspace, safe='')}/components"
        self._code = ContentUploads(
            http, f"/api/v1/workspaces/{quote(workspace, safe='')}/code/artifacts"
        )
        self._jobs = JobSubmissions(http, workspace)  # a pipeline component's local parts

    def _component(self, name: str) -> str:
        check_component_name(name)
        return f"{self._root}/{quote(name, safe='')}"

    def _version(self, name: str, version: str | None, label: str | None) -> str:
        if version is not None and label is not None:
            raise InvalidInputError(
                "give a version or a label, not both", code="invalid_field", field="label"
            )
        if label is not None and label != LATEST:
            raise InvalidInputError(
                f"the only label of components is {LATEST!r}", code="invalid_label", field="label"
            )
        chosen = str(version) if version is not None else LATEST
        if not _VERSION.fullmatch(chosen):
            raise InvalidInputError(
                f"version {chosen[:70]!r} is invalid", code="invalid_version", field="version"
            )
        return f"{self._component(name)}/versions/{quote(chosen, safe='')}"

    # -- create -----------------------------------------------------------------------------

    def create(
        self,
        component: str | Path | CommandComponent | Mapping[str, Any],
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> Component:
        """Register a version from a YAML file's path, a loaded component, or a mapping
        shaped like the YAML (relative paths from ``base_dir``). The local ``code`` folder
        and its ``additional_includes`` are uploaded first, by content."""
        if isinstance(component, CommandComponent):
            if component.data is None:
                raise InvalidInputError(
                    f"{component.source} is registered already", code="invalid_field", field="name"
                )
            return self.create_from_spec(
                component.data, base_dir=component.base_dir, progress=progress
            )
        if isinstance(component, Mapping):
            return self.create_from_spec(dict(component), base_dir=base_dir, progress=progress)
        path = Path(component).expanduser()
        document = load_yaml_file(path)
        try:
            return self.create_from_spec(
                document.data, base_dir=path.resolve().parent, progress=progress
            )
        except ShipyardError as exc:
            raise _at_line(document, exc) from exc

    def create_from_spec(
        self,
        spec: Mapping[str, Any],
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> Component:
        """Register a version from a mapping shaped like Azure ML's component YAML (what the
        CLI sends)."""
        body = dict(spec)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInputError("a name is required", code="missing_field", field="name")
        if body.get("version") in (None, ""):
            body.pop("version", None)  # an empty version asks for the next number
        elif isinstance(body["version"], int) and not isinstance(body["version"], bool):
            body["version"] = str(body["version"])
        if body.get("type") == "pipeline":
            body = self._jobs.localize_pipeline_component(
                body, base_dir=base_dir, progress=progress
            )
        else:
            localize_component(self._code, body, base_dir=base_dir, progress=progress)
        return self._http.send_model("POST", self._component(name) + "/versions", Component, body)

    # -- read -------------------------------------------------------------------------------

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Component:
        """A version; with neither a version nor a label, the latest one."""
        return self._http.get_model(self._version(name, version, label), Component)

    def load(self, ref: str) -> CommandComponent:
        """A registered component as a callable step maker: ``azureml:<name>:<version>``,
        ``azureml:<name>@latest``, ``<name>:<version>`` or ``<name>@latest``."""
        text = ref
        for prefix in _REF_PREFIXES:
            if text.lower().startswith(prefix):
                text = text[len(prefix) :]
        name, _, version = text.partition(":")
        label = None
        if "@" in name:
            name, _, label = name.partition("@")
        return _from_read(self.get(name, version or None, label))

    def list(
        self, name: str | None = None, *, include_archived: bool = False
    ) -> Iterator[Component] | Iterator[ComponentRead]:
        """The workspace's components, or with ``name`` that component's versions (newest
        first)."""
        params = {"include_archived": str(include_archived).lower()}
        if name is None:
            return self._http.iterate(self._root, ComponentRead, params)
        return self._http.iterate(self._component(name) + "/versions", Component, params)

    # -- change -----------------------------------------------------------------------------

    def update(
        self,
        name: str,
        version: str,
        *,
        description: str | None = _UNSET,
        tags: dict[str, str] | None = _UNSET,
    ) -> Component:
        """Change a version's description or tags (its definition never changes)."""
        given = {"description": description, "tags": tags}
        changes = {k: v for k, v in given.items() if v is not _UNSET}
        return self._http.send_model(
            "PATCH", self._version(name, version, None), Component, changes
        )

    def archive(self, name: str, version: str | None = None) -> None:
        """Hide a version (or with no version, the component) from lists and from
        ``latest``; pipelines can still use it by its version."""
        target = self._version(name, version, None) if version else self._component(name)
        self._http.request("POST", target + "/archive")

    def restore(self, name: str, version: str | None = None) -> None:
        target = self._version(name, version, None) if version else self._component(name)
        self._http.request("POST", target + "/restore")

    def __repr__(self) -> str:
        return f"ComponentOperations({self._root!r})"


__all__ = [
    "CommandComponent",
    "Component",
    "ComponentOperations",
    "ComponentStep",
    "OutputBinding",
    "load_component",
]
