"""A pipeline's shape: the bindings between its steps and the order they allow.

The dependency graph comes from the bindings alone (Azure ML's rule): a step that takes
``${{parent.jobs.prep.outputs.table}}`` runs after ``prep``; steps with no binding between
them run in parallel. Pure: no I/O, every error names the field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shipyard.domain.errors import InvalidInputError

_BINDING = re.compile(r"^\$\{\{\s*(?P<body>[^{}]*?)\s*\}\}$")
_PARENT_INPUT = re.compile(r"^parent\.inputs\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")
_PARENT_OUTPUT = re.compile(r"^parent\.outputs\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")
_STEP_PORT = re.compile(
    r"^parent\.jobs\.(?P<step>[A-Za-z_][A-Za-z0-9_-]*)\.(?P<kind>inputs|outputs)\."
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)$"
)
STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$")


@dataclass(frozen=True)
class ParentInput:
    name: str


@dataclass(frozen=True)
class ParentOutput:
    name: str


@dataclass(frozen=True)
class StepPort:
    step: str
    kind: str  # inputs | outputs
    name: str


Binding = ParentInput | ParentOutput | StepPort


def parse_binding(value: object, *, field: str) -> Binding | None:
    """The binding a value holds (``${{parent...}}`` as the whole value), or None for a
    literal or a data input object. A ``${{ }}`` that is not a binding is an error."""
    if not isinstance(value, str):
        return None
    found = _BINDING.match(value.strip())
    if found is None:
        if "${{" in value:
            raise InvalidInputError(
                f"{value[:120]!r} mixes a binding with other text: a step input is either a "
                "value or exactly one ${{parent...}} binding",
                code="invalid_binding",
                field=field,
            )
        return None
    body = found.group("body")
    if match := _PARENT_INPUT.match(body):
        return ParentInput(match.group("name"))
    if match := _PARENT_OUTPUT.match(body):
        return ParentOutput(match.group("name"))
    if match := _STEP_PORT.match(body):
        return StepPort(match.group("step"), match.group("kind"), match.group("name"))
    raise InvalidInputError(
        f"unknown binding ${{{{{body}}}}}: use ${{{{parent.inputs.<name>}}}}, "
        "${{parent.outputs.<name>}} or ${{parent.jobs.<step>.outputs.<name>}}",
        code="invalid_binding",
        field=field,
    )


def step_order(dependencies: Mapping[str, set[str]], *, prefix: str = "jobs.") -> list[str]:
    """The steps in an order where each comes after everything it depends on; a cycle is an
    error naming a step on it (``<prefix><step>``: ``jobs.train``, or inside a nested
    pipeline ``jobs.outer.jobs.train``)."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(step: str, path: list[str]) -> None:
        if state.get(step) == 2:
            return
        if state.get(step) == 1:
            cycle = " -> ".join([*path[path.index(step) :], step])
            raise InvalidInputError(
                f"the steps depend on each other in a cycle: {cycle}",
                code="pipeline_cycle",
                field=f"{prefix}{step}",
            )
        state[step] = 1
        for upstream in sorted(dependencies.get(step, set())):
            visit(upstream, [*path, step])
        state[step] = 2
        order.append(step)

    for step in sorted(dependencies):
        visit(step, [])
    return order


# A folder can feed a folder or an MLTable input (an MLTable is a folder), and a model is a
# folder too.
_FOLDERS = frozenset({"uri_folder", "mltable", "custom_model", "mlflow_model"})
_NUMBERS = frozenset({"integer", "number"})


def compatible(source_type: str, target_type: str) -> bool:
    """Whether a port of ``source_type`` (a step's output, or a pipeline component's input)
    can feed an input of ``target_type``: the same type; a folder into a ``uri_folder`` or
    ``mltable`` input; an integer into a number; any value into a string."""
    if source_type == target_type:
        return True
    if source_type in _FOLDERS:
        return target_type in ("uri_folder", "mltable")
    if source_type in _NUMBERS and target_type in _NUMBERS:
        return source_type == "integer"
    return target_type == "string" and source_type in ("integer", "number", "boolean")
