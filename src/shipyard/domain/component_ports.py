"""The typed ports of a component: its inputs and outputs, declared and checked, and the
values a step gives them, checked against the declarations and converted. Pure.

An input is a primitive (``string``, ``number``, ``integer``, ``boolean``, with ``default``,
``optional``, ``min``/``max`` for numbers and ``enum`` for strings) or a data or model port
(``uri_file``, ``uri_folder``, ``mltable``, ``mlflow_model``, ``custom_model``, with a
``mode``); an output is a data or model port. ``domain.components`` builds on these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from shipyard.domain.errors import InvalidInputError

PRIMITIVE_TYPES = ("string", "number", "integer", "boolean")
DATA_TYPES = ("uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model")
INPUT_TYPES = PRIMITIVE_TYPES + DATA_TYPES
INPUT_MODES = ("ro_mount", "download", "direct", "eval_mount", "eval_download")
OUTPUT_MODES = ("rw_mount", "upload", "direct", "mount")
# Input and output names that would clash with environment variables (Azure refuses them too).
RESERVED_IO_NAMES = frozenset(
    {"path", "ld_library_path", "user", "logname", "home", "pwd", "shell"}
)
MAX_TEXT = 10_000
MAX_IO = 500

_IO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_INPUT_KEYS = ("type", "default", "optional", "min", "max", "enum", "description", "mode")
_OUTPUT_KEYS = ("type", "description", "mode")
_DATA_VALUE_KEYS = ("type", "path", "mode")


@dataclass(frozen=True)
class InputSpec:
    """One declared input: a primitive (``string``, ``number``, ``integer``, ``boolean``)
    with its rules, or a data or model port."""

    type: str
    default: str | int | float | bool | None = None
    optional: bool = False
    min: int | float | None = None
    max: int | float | None = None
    enum: tuple[str, ...] | None = None
    description: str | None = None
    mode: str | None = None

    @property
    def is_data(self) -> bool:
        return self.type in DATA_TYPES

    @property
    def required(self) -> bool:
        """A step must give a value: not optional and no default to fall back on."""
        return not self.optional and self.default is None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "optional": self.optional}
        for key in ("default", "min", "max", "description", "mode"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        if self.enum is not None:
            body["enum"] = list(self.enum)
        return body

    def definition(self) -> dict[str, Any]:
        body = self.to_json()
        body.pop("description", None)
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InputSpec:
        enum = data.get("enum")
        return cls(
            type=data["type"],
            default=data.get("default"),
            optional=bool(data.get("optional", False)),
            min=data.get("min"),
            max=data.get("max"),
            enum=tuple(enum) if enum is not None else None,
            description=data.get("description"),
            mode=data.get("mode"),
        )


@dataclass(frozen=True)
class OutputSpec:
    type: str
    description: str | None = None
    mode: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type}
        if self.description is not None:
            body["description"] = self.description
        if self.mode is not None:
            body["mode"] = self.mode
        return body

    def definition(self) -> dict[str, Any]:
        body = self.to_json()
        body.pop("description", None)
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutputSpec:
        return cls(data["type"], data.get("description"), data.get("mode"))


# -- declarations ---------------------------------------------------------------------------


def parse_inputs(value: object, prefix: str) -> dict[str, InputSpec]:
    ports = _ports(value, f"{prefix}inputs")
    return {name: _input(name, body, f"{prefix}inputs.{name}") for name, body in ports.items()}


def parse_outputs(value: object, prefix: str) -> dict[str, OutputSpec]:
    ports = _ports(value, f"{prefix}outputs")
    return {name: _output(body, f"{prefix}outputs.{name}") for name, body in ports.items()}


def _ports(value: object, field: str) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid(field, "must be a mapping of names to declarations")
    if len(value) > MAX_IO:
        raise invalid(field, f"more than {MAX_IO} entries")
    seen: dict[str, str] = {}
    for name in value:
        where = f"{field}.{name}"
        if not isinstance(name, str) or not _IO_NAME.fullmatch(name):
            raise InvalidInputError(
                f"{str(name)[:60]!r} is not a valid name: a letter or '_', then letters, "
                "digits and '_'",
                code="invalid_name",
                field=where,
            )
        if name.lower() in RESERVED_IO_NAMES:
            raise InvalidInputError(
                f"{name!r} is reserved (it clashes with an environment variable); choose "
                "another name",
                code="reserved_name",
                field=where,
            )
        if name.lower() in seen:
            raise InvalidInputError(
                f"{name!r} and {seen[name.lower()]!r} differ only in case; names must differ "
                "in more than that",
                code="duplicate_name",
                field=where,
            )
        seen[name.lower()] = name
    return dict(value)


def _known(body: Mapping[str, Any], keys: tuple[str, ...], field: str, what: str) -> None:
    for key in body:
        if key not in keys:
            raise InvalidInputError(
                f"{str(key)[:60]!r} is not a field of {what} (allowed: {', '.join(keys)})",
                code="unknown_field",
                field=f"{field}.{key}",
            )


def _type(body: Mapping[str, Any], allowed: tuple[str, ...], field: str) -> str:
    kind = body.get("type")
    if kind is None:
        raise InvalidInputError(
            f"give a type: one of {', '.join(allowed)}",
            code="missing_field",
            field=f"{field}.type",
        )
    if kind not in allowed:
        raise InvalidInputError(
            f"type {str(kind)[:40]!r} is not one of {', '.join(allowed)}",
            code="invalid_type",
            field=f"{field}.type",
        )
    return str(kind)


def _input(name: str, body: object, field: str) -> InputSpec:
    if not isinstance(body, Mapping):
        raise invalid(field, "declare the input as a mapping with a type, e.g. {type: string}")
    _known(body, _INPUT_KEYS, field, "an input")
    kind = _type(body, INPUT_TYPES, field)
    optional = bool_field(body.get("optional", False), f"{field}.optional")
    description = text_field(body.get("description"), f"{field}.description", MAX_TEXT)
    for key in ("min", "max"):
        if body.get(key) is not None and kind not in ("number", "integer"):
            raise invalid(
                f"{field}.{key}",
                f"{key} applies to number and integer inputs only, not to a {kind} input",
                code="invalid_combination",
            )
    if body.get("enum") is not None and kind != "string":
        raise invalid(
            f"{field}.enum",
            f"enum applies to string inputs only, not to a {kind} input",
            code="invalid_combination",
        )
    mode = body.get("mode")
    if mode is not None:
        if kind not in DATA_TYPES:
            raise invalid(
                f"{field}.mode",
                f"mode applies to data and model inputs only, not to a {kind} input",
                code="invalid_combination",
            )
        _input_mode(mode, kind, f"{field}.mode")
    if kind in DATA_TYPES:
        default = body.get("default")
        if default is not None and (not isinstance(default, str) or not default.strip()):
            raise invalid(f"{field}.default", "the default of a data input is a path (text)")
        return InputSpec(kind, default, optional, description=description, mode=mode)
    probe = InputSpec(kind)
    low = _number_bound(probe, body.get("min"), f"{field}.min")
    high = _number_bound(probe, body.get("max"), f"{field}.max")
    if low is not None and high is not None and low > high:
        raise invalid(f"{field}.max", f"max {high} is below min {low}", code="invalid_range")
    enum = _enum(body.get("enum"), f"{field}.enum")
    spec = InputSpec(kind, None, optional, low, high, enum, description)
    default = body.get("default")
    if default is not None:
        checked = coerce_value(spec, default, f"{field}.default", name)
        assert isinstance(checked, str | int | float | bool)
        spec = replace(spec, default=checked)
    return spec


def _number_bound(spec: InputSpec, value: object, field: str) -> int | float | None:
    if value is None:
        return None
    bound = _primitive(spec, value, field, "the bound")
    assert isinstance(bound, int | float)
    return bound


def _enum(value: object, field: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise invalid(field, "enum must be a non-empty list of the allowed values")
    probe = InputSpec("string")
    return tuple(
        str(_primitive(probe, item, f"{field}.{i}", "an enum value"))
        for i, item in enumerate(value)
    )


def _input_mode(mode: object, kind: str, field: str) -> str:
    if mode not in INPUT_MODES:
        raise invalid(field, f"mode {str(mode)[:40]!r} is not one of {', '.join(INPUT_MODES)}")
    if mode in ("eval_mount", "eval_download") and kind != "mltable":
        raise invalid(field, f"mode {mode} is for mltable inputs only", code="invalid_combination")
    return str(mode)


def _output(body: object, field: str) -> OutputSpec:
    if not isinstance(body, Mapping):
        raise invalid(field, "declare the output as a mapping with a type, e.g. {type: uri_folder}")
    _known(body, _OUTPUT_KEYS, field, "an output")
    kind = body.get("type")
    if kind in PRIMITIVE_TYPES:
        raise invalid(
            f"{field}.type",
            f"a {kind} output is a control output, which Shipyard does not support; outputs "
            f"are {', '.join(DATA_TYPES)}",
            code="invalid_type",
        )
    kind = _type(body, DATA_TYPES, field)
    mode = body.get("mode")
    if mode is not None and mode not in OUTPUT_MODES:
        raise invalid(
            f"{field}.mode", f"mode {str(mode)[:40]!r} is not one of {', '.join(OUTPUT_MODES)}"
        )
    return OutputSpec(
        kind, text_field(body.get("description"), f"{field}.description", MAX_TEXT), mode
    )


def text_field(value: object, field: str, limit: int, *, empty: bool = True) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, "must be text")
    if not empty and not value.strip():
        raise invalid(field, "must not be empty")
    if len(value) > limit:
        raise invalid(field, f"longer than {limit} characters")
    if "\x00" in value:
        raise invalid(field, "holds a NUL character")
    return value


def bool_field(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(field, f"must be true or false, not {str(value)[:40]!r}")
    return value


def invalid(field: str | None, detail: str, *, code: str = "invalid_field") -> InvalidInputError:
    return InvalidInputError(detail, code=code, field=field)


# -- values ---------------------------------------------------------------------------------


def coerce_value(spec: InputSpec, value: object, field: str, name: str = "") -> object:
    """One input's value, checked against its declaration and converted to its type."""
    if spec.is_data:
        return _data_value(spec, value, field)
    what = f"input {name!r}" if name else "the value"
    converted = _primitive(spec, value, field, what)
    problem = None
    if isinstance(converted, int | float) and not isinstance(converted, bool):
        if spec.min is not None and converted < spec.min:
            problem = f"is below the minimum {spec.min}"
        elif spec.max is not None and converted > spec.max:
            problem = f"is above the maximum {spec.max}"
    if problem is not None:
        raise invalid(
            field,
            f"{what}: {converted!r} {problem} (expected {expected(spec)})",
            code="out_of_range",
        )
    if spec.enum is not None and converted not in spec.enum:
        allowed = ", ".join(repr(v) for v in spec.enum)
        raise invalid(field, f"{what}: {converted!r} is not one of {allowed}", code="not_in_enum")
    return converted


def _primitive(spec: InputSpec, value: object, field: str, what: str) -> str | int | float | bool:
    kind = spec.type
    found: str | int | float | bool | None = None
    if kind == "string":
        if isinstance(value, str):
            found = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found = str(value)
    elif kind == "boolean":
        if isinstance(value, bool):
            found = value
        elif isinstance(value, str) and value.strip().lower() in ("true", "false"):
            found = value.strip().lower() == "true"
    elif kind == "integer":
        found = _integer(value)
    elif kind == "number":
        found = _number(value)
    if found is None:
        hint = ""
        if kind == "string" and isinstance(value, bool):
            hint = "; quote it: YAML reads yes/no/true/false/on/off as booleans"
        raise invalid(
            field,
            f"{what} expects {expected(spec)}, not {_shown(value)}{hint}",
            code="invalid_value",
        )
    return found


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = _number(value)
    if number is None or not float(number).is_integer():
        return None
    return int(number)


def _number(value: object) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            parsed = float(text)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def _data_value(spec: InputSpec, value: object, field: str) -> dict[str, Any]:
    if isinstance(value, str):
        if not value.strip():
            raise invalid(field, f"expects {expected(spec)}, not an empty path")
        bound: dict[str, Any] = {"type": spec.type, "path": value}
        if spec.mode is not None:
            bound["mode"] = spec.mode
        return bound
    if not isinstance(value, Mapping):
        raise invalid(field, f"expects {expected(spec)}, not {_shown(value)}", code="invalid_value")
    _known(value, _DATA_VALUE_KEYS, field, "a data input")
    kind = value.get("type", spec.type)
    if kind != spec.type:
        raise invalid(
            f"{field}.type",
            f"the input is declared {spec.type}, not {str(kind)[:40]}",
            code="type_mismatch",
        )
    path = value.get("path")
    if not isinstance(path, str) or not path.strip():
        raise InvalidInputError(
            f"a {spec.type} input needs a path", code="missing_field", field=f"{field}.path"
        )
    bound = {"type": spec.type, "path": path}
    mode = value.get("mode", spec.mode)
    if mode is not None:
        bound["mode"] = _input_mode(mode, spec.type, f"{field}.mode")
    return bound


def expected(spec: InputSpec) -> str:
    if spec.is_data:
        return f"a {spec.type} path (a datastore URI, an asset such as azureml:<name>:<version>...)"
    text = {
        "string": "text",
        "number": "a number",
        "integer": "a whole number",
        "boolean": "true or false",
    }[spec.type]
    if spec.enum is not None:
        text += " among " + ", ".join(repr(v) for v in spec.enum)
    if spec.min is not None and spec.max is not None:
        text += f" from {spec.min} to {spec.max}"
    elif spec.min is not None:
        text += f" of at least {spec.min}"
    elif spec.max is not None:
        text += f" of at most {spec.max}"
    return text


def _shown(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
