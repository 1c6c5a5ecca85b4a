"""Command components: Azure ML's ``commandComponent`` YAML, checked, normalised and hashed,
and the values a pipeline step gives a component's inputs, checked against their types. Pure.

A component is a reusable command with typed inputs and outputs::

    name: train
    version: 1
    command: python train.py --data ${{inputs.data}} $[[--lr ${{inputs.lr}}]]
             --model ${{outputs.model}}
    code: ./src
    environment: azureml:shipyard-sklearn@latest
    inputs:
      data: {type: uri_folder}
      lr: {type: number, min: 0, max: 1, optional: true}
    outputs:
      model: {type: mlflow_model}

``parse_component`` refuses what could never run (an expression naming an undeclared input,
a non-optional input inside ``$[[ ]]``, ``min`` on a string, a default outside its range...),
each error naming its field (``inputs.lr.min``). ``bind_inputs`` checks the values a step
gives (types, ranges, enums, required inputs) and fills in defaults. The rules of the typed
inputs and outputs themselves are in ``domain.component_ports`` (re-exported here).

The *definition* is what decides what a step runs: the command, the code snapshot, the pinned
environment's spec, the run settings and the typed ports (names, descriptions and tags left
out). Its sha256 (``definition_hash``) is part of a pipeline step's reuse fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from shipyard.domain import command_template
from shipyard.domain.component_ports import (
    DATA_TYPES,
    INPUT_MODES,
    INPUT_TYPES,
    MAX_TEXT,
    OUTPUT_MODES,
    PRIMITIVE_TYPES,
    RESERVED_IO_NAMES,
    InputSpec,
    OutputSpec,
    bool_field,
    coerce_value,
    expected,
    invalid,
    parse_inputs,
    parse_outputs,
    text_field,
)
from shipyard.domain.errors import InvalidInputError

__all__ = [
    "ANONYMOUS_NAME",
    "COMPONENT_NAME",
    "COMPONENT_VERSION",
    "DATA_TYPES",
    "INPUT_MODES",
    "INPUT_TYPES",
    "LATEST",
    "OUTPUT_MODES",
    "PRIMITIVE_TYPES",
    "RESERVED_IO_NAMES",
    "ComponentRef",
    "ComponentSpec",
    "DeclaresInputs",
    "InputSpec",
    "OutputSpec",
    "bind_inputs",
    "canonical_json",
    "check_component_name",
    "coerce_value",
    "parse_component",
    "parse_component_ref",
    "parse_tags",
    "parse_version",
]

# Azure's component name rule: a lowercase letter, then lowercase letters, digits and '_'.
COMPONENT_NAME = r"^[a-z][a-z0-9_]{0,254}$"
COMPONENT_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
LATEST = "latest"
#: Azure's name for components defined inline in a pipeline (versioned by their hash).
ANONYMOUS_NAME = "azureml_anonymous"
DISTRIBUTIONS = ("mpi", "pytorch", "tensorflow", "ray")
MAX_COMMAND_CHARS = 65_536

_NAME = re.compile(COMPONENT_NAME)
_VERSION = re.compile(COMPONENT_VERSION)
_OPTIONAL_OPEN = "$[["
_OPTIONAL_CLOSE = "]]"
_TOP_KEYS = frozenset(
    {
        "$schema",
        "type",
        "name",
        "version",
        "display_name",
        "description",
        "tags",
        "is_deterministic",
        "command",
        "code",
        "additional_includes",
        "environment",
        "resources",
        "distribution",
        "inputs",
        "outputs",
    }
)


@dataclass(frozen=True)
class ComponentSpec:
    """A command component, checked. ``environment`` is a reference or an inline mapping
    until the server pins it; then it is the pinned environment (``Environments.pin``: a
    mapping holding the environment's ``spec``)."""

    command: str
    environment: str | dict[str, Any]
    name: str | None = None
    version: str | None = None
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    is_deterministic: bool = True
    code: str | None = None
    additional_includes: tuple[str, ...] = ()
    resources: dict[str, Any] = field(default_factory=dict)
    distribution: dict[str, Any] | None = None
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    outputs: dict[str, OutputSpec] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Every field, as JSON (``from_json`` reads it back)."""
        return {
            "type": "command",
            "name": self.name,
            "version": self.version,
            "display_name": self.display_name,
            "description": self.description,
            "tags": dict(self.tags),
            "is_deterministic": self.is_deterministic,
            "command": self.command,
            "code": self.code,
            "additional_includes": list(self.additional_includes),
            "environment": self.environment,
            "resources": dict(self.resources),
            "distribution": self.distribution,
            "inputs": {k: v.to_json() for k, v in self.inputs.items()},
            "outputs": {k: v.to_json() for k, v in self.outputs.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ComponentSpec:
        """A spec this module wrote (stored, so trusted: not checked again)."""
        return cls(
            command=data["command"],
            environment=data["environment"],
            name=data.get("name"),
            version=data.get("version"),
            display_name=data.get("display_name"),
            description=data.get("description"),
            tags=dict(data.get("tags") or {}),
            is_deterministic=bool(data.get("is_deterministic", True)),
            code=data.get("code"),
            additional_includes=tuple(data.get("additional_includes") or ()),
            resources=dict(data.get("resources") or {}),
            distribution=data.get("distribution"),
            inputs={k: InputSpec.from_json(v) for k, v in (data.get("inputs") or {}).items()},
            outputs={k: OutputSpec.from_json(v) for k, v in (data.get("outputs") or {}).items()},
        )

    def with_environment(self, pinned: dict[str, Any]) -> ComponentSpec:
        return replace(self, environment=pinned)

    def definition(self) -> dict[str, Any]:
        """What decides what a step runs; names, descriptions and tags left out. A pinned
        environment counts by its spec, so the same packages under another name or version
        are the same definition."""
        environment: Any = self.environment
        if isinstance(environment, dict) and isinstance(environment.get("spec"), dict):
            environment = {"spec": environment["spec"]}
        return {
            "type": "command",
            "command": self.command,
            "code": self.code,
            "environment": environment,
            "is_deterministic": self.is_deterministic,
            "resources": self.resources,
            "distribution": self.distribution,
            "inputs": {k: v.definition() for k, v in sorted(self.inputs.items())},
            "outputs": {k: v.definition() for k, v in sorted(self.outputs.items())},
        }

    def definition_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.definition()).encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- parsing --------------------------------------------------------------------------------


def parse_component(data: Mapping[str, Any], *, prefix: str = "") -> ComponentSpec:
    """Check a command component (a YAML file's mapping) and return it normalised; every
    error is a 400 naming its field, after ``prefix`` (``jobs.train.component.`` inline)."""
    if not isinstance(data, Mapping):
        raise invalid(prefix.rstrip(".") or None, "a component must be a mapping of fields")
    for key in data:
        if key not in _TOP_KEYS:
            raise InvalidInputError(
                f"{str(key)[:60]!r} is not a field of a command component",
                code="unknown_field",
                field=f"{prefix}{key}",
            )
    kind = data.get("type", "command")
    if kind != "command":
        raise InvalidInputError(
            f"only command components are supported here, not {str(kind)[:40]!r}",
            code="unsupported_component_type",
            field=f"{prefix}type",
        )
    name = data.get("name")
    if name is not None:
        check_component_name(name, field=f"{prefix}name")
    inputs = parse_inputs(data.get("inputs"), prefix)
    outputs = parse_outputs(data.get("outputs"), prefix)
    command = _command(data.get("command"), inputs, outputs, prefix)
    return ComponentSpec(
        command=command,
        environment=_environment(data.get("environment"), prefix),
        name=name,
        version=parse_version(data.get("version"), f"{prefix}version"),
        display_name=text_field(data.get("display_name"), f"{prefix}display_name", 256),
        description=text_field(data.get("description"), f"{prefix}description", MAX_TEXT),
        tags=parse_tags(data.get("tags"), f"{prefix}tags"),
        is_deterministic=bool_field(
            data.get("is_deterministic", True), f"{prefix}is_deterministic"
        ),
        code=text_field(data.get("code"), f"{prefix}code", 4096, empty=False),
        additional_includes=_includes(data.get("additional_includes"), prefix),
        resources=_resources(data.get("resources"), f"{prefix}resources"),
        distribution=_distribution(data.get("distribution"), f"{prefix}distribution"),
        inputs=inputs,
        outputs=outputs,
    )


def check_component_name(name: object, *, field: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = str(name)[:100]
        raise InvalidInputError(
            f"component name {shown!r} is invalid: a lowercase letter, then lowercase letters, "
            "digits and '_', at most 255 characters",
            code="invalid_name",
            field=field,
        )
    return name


def parse_version(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool | float):
        raise invalid(
            field,
            f"version {value!r} must be text or a whole number; quote it ('1.10'): YAML reads "
            "1.10 as the number 1.1",
            code="invalid_version",
        )
    text = str(value) if isinstance(value, int) else value
    if not isinstance(text, str) or not _VERSION.fullmatch(text) or text == LATEST:
        raise invalid(
            field,
            f"version {str(value)[:70]!r} is invalid: letters, digits, '.', '_' and '-', at most "
            "64 characters ('latest' is a label, not a version)",
            code="invalid_version",
        )
    return text


def _command(
    value: object, inputs: Mapping[str, InputSpec], outputs: Mapping[str, OutputSpec], prefix: str
) -> str:
    field_name = f"{prefix}command"
    if value is None:
        raise InvalidInputError(
            "a component needs a command", code="missing_field", field=field_name
        )
    if not isinstance(value, str) or not value.strip():
        raise invalid(field_name, "the command must be non-empty text")
    if len(value) > MAX_COMMAND_CHARS:
        raise invalid(field_name, f"the command is longer than {MAX_COMMAND_CHARS} characters")
    if "\x00" in value:
        raise invalid(field_name, "the command holds a NUL character")
    command_template.check(value, inputs, outputs, field=field_name)
    for fragment in _fragments(value, field_name):
        for ref in command_template.references(fragment, field=field_name):
            declared = inputs.get(ref.name) if ref.kind == "inputs" else None
            if declared is not None and not declared.optional:
                raise InvalidInputError(
                    f"input {ref.name!r} is inside $[[ ... ]] but is not optional: only "
                    f"optional inputs may be; set inputs.{ref.name}.optional: true, or move "
                    "it out of the $[[ ]]",
                    code="required_input_in_optional_fragment",
                    field=field_name,
                )
    return value


def _fragments(command: str, field: str) -> list[str]:
    """The bodies of the ``$[[ ... ]]`` fragments; unclosed or nested ones are refused."""
    found: list[str] = []
    position = 0
    while (start := command.find(_OPTIONAL_OPEN, position)) >= 0:
        end = command.find(_OPTIONAL_CLOSE, start + len(_OPTIONAL_OPEN))
        if end < 0:
            raise invalid(field, "a $[[ in the command is never closed with ]]")
        body = command[start + len(_OPTIONAL_OPEN) : end]
        if _OPTIONAL_OPEN in body:
            raise invalid(field, "$[[ ... ]] fragments cannot be nested")
        found.append(body)
        position = end + len(_OPTIONAL_CLOSE)
    return found


def _environment(value: object, prefix: str) -> str | dict[str, Any]:
    field_name = f"{prefix}environment"
    if value is None:
        raise InvalidInputError(
            "a component needs an environment (azureml:<name>:<version>, <name>@latest, or an "
            "inline environment)",
            code="missing_field",
            field=field_name,
        )
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, Mapping):
        return dict(value)
    raise invalid(field_name, "must be a reference (azureml:<name>:<version>) or a mapping")


def _includes(value: object, prefix: str) -> tuple[str, ...]:
    field = f"{prefix}additional_includes"
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid(field, "must be a list of files or folders (relative to the YAML file)")
    items: list[str] = []
    for i, item in enumerate(value):
        text = text_field(item, f"{field}.{i}", 4096, empty=False)
        if text is None:
            raise invalid(f"{field}.{i}", "must be a file or folder path")
        items.append(text)
    return tuple(items)


def _resources(value: object, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid(field, "must be a mapping (instance_count, ...)")
    count = value.get("instance_count")
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1024
    ):
        raise invalid(f"{field}.instance_count", "must be a whole number from 1 to 1024")
    return dict(value)


def _distribution(value: object, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise invalid(field, "must be a mapping with a type")
    if value.get("type") not in DISTRIBUTIONS:
        raise invalid(
            f"{field}.type",
            f"type {str(value.get('type'))[:40]!r} is not one of {', '.join(DISTRIBUTIONS)}",
        )
    return dict(value)


def parse_tags(value: object, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid(field, "must be a mapping of names to values")
    tags: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise invalid(f"{field}.{key}", "a tag's value is text")
        tags[str(key)] = str(item)
    return tags


# -- values ---------------------------------------------------------------------------------


class DeclaresInputs(Protocol):
    """What ``bind_inputs`` needs of a component: its declared inputs (a command component
    and a pipeline component both have them)."""

    @property
    def inputs(self) -> Mapping[str, InputSpec]: ...


def bind_inputs(
    spec: DeclaresInputs, values: Mapping[str, object], *, field: str = "inputs"
) -> dict[str, object]:
    """The value of every declared input for one step: what ``values`` gives, checked and
    converted to its type, else the default, else None for an optional input (a
    ``$[[ ... ]]`` fragment naming it is then dropped). Errors name ``<field>.<input>``.

    Primitive values come back as Python values (``"10"`` for an integer is ``10``); a data
    input comes back as ``{"type", "path"[, "mode"]}`` (the declared type and mode unless
    the value's own mapping says otherwise), its path unchecked: the job submit path
    resolves it.
    """
    for name in values:
        if name not in spec.inputs:
            known = ", ".join(sorted(spec.inputs)) or "none"
            raise InvalidInputError(
                f"the component has no input named {str(name)[:60]!r} (its inputs: {known})",
                code="unknown_input",
                field=f"{field}.{name}",
            )
    bound: dict[str, object] = {}
    for name, declared in spec.inputs.items():
        where = f"{field}.{name}"
        given = values.get(name)
        if given is None:
            given = declared.default
        if given is None:
            if not declared.optional:
                raise InvalidInputError(
                    f"input {name!r} is required: give {expected(declared)}",
                    code="missing_input",
                    field=where,
                )
            bound[name] = None
            continue
        bound[name] = coerce_value(declared, given, where, name)
    return bound


# -- references -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentRef:
    """A reference to a registered component: a name and a version, or ``latest``."""

    name: str
    version: str | None = None
    label: str | None = None
    registry: str | None = None  # azureml://registries/<registry>/components/...


_PREFIXED = re.compile(r"^(?:azureml|shipyard):(?!//)(?P<rest>.*)$", re.IGNORECASE)
_SHORT = re.compile(r"^(?P<name>[^:@/\s]+)(?::(?P<version>[^:@/\s]+)|@(?P<label>[^:@/\s]+))?$")
_REGISTRY = re.compile(
    r"^(?:azureml|shipyard)://registries/(?P<registry>[^/]+)/components/(?P<name>[^/]+)"
    r"/(?:versions/(?P<version>[^/]+)|labels/(?P<label>[^/]+))$",
    re.IGNORECASE,
)
_ARM = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/Microsoft\.MachineLearningServices"
    r"/workspaces/[^/]+/components/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$",
    re.IGNORECASE,
)


def parse_component_ref(text: str, *, field: str) -> ComponentRef:
    """``azureml:name:version``, ``azureml:name@latest`` (or ``shipyard:``, or no prefix; a
    name alone is its latest version), Azure's long ARM form, or a registry URI
    (``azureml://registries/<r>/components/<name>/versions/<v>``)."""
    text = text.strip()
    if found := _REGISTRY.match(text):
        return _ref(found, text, field, registry=found.group("registry"))
    prefixed = _PREFIXED.match(text)
    rest = prefixed.group("rest") if prefixed else text
    if found := _ARM.match(rest):
        return ComponentRef(found.group("name"), found.group("version"))
    if (found := _SHORT.match(rest)) and _NAME.fullmatch(found.group("name")):
        return _ref(found, text, field)
    shown = text if len(text) <= 200 else text[:197] + "..."
    raise InvalidInputError(
        f"{shown!r} is not a component reference: use azureml:<name>:<version> or "
        "azureml:<name>@latest (a local YAML file is loaded by the CLI or SDK)",
        code="invalid_reference",
        field=field,
    )


def _ref(found: re.Match[str], text: str, field: str, registry: str | None = None) -> ComponentRef:
    label = found.group("label")
    if found.group("version") is None and label is None:
        label = LATEST
    if label is not None and label != LATEST:
        raise InvalidInputError(
            f"{text[:200]!r}: the only label of components is {LATEST!r}",
            code="invalid_label",
            field=field,
        )
    return ComponentRef(found.group("name"), found.group("version"), label, registry)
