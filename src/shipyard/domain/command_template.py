"""A job's ``command``: Azure ML's expressions, substituted so values stay literal.

A command is a shell command line the user wrote (``python train.py --lr ${{inputs.lr}}``),
run by ``bash -c`` as Azure ML runs it, so pipes, ``&&`` and ``$VARS`` work unchanged. The
values put into it are not the user's program text, though: an input value such as
``; rm -rf /`` or ``$(id)`` must reach the program as one literal argument. Each expression is
therefore replaced by its value quoted for the exact place it stands in: outside quotes it
becomes one single-quoted word, inside double quotes the characters double quotes still
interpret (``\\ " $ ` ``) are escaped, and inside single quotes the quote is closed, the
value added as a single-quoted word, and the quote reopened.

``$[[ ... ]]`` wraps a fragment that is dropped whole when an optional input it names has no
value (``$[[--lr ${{inputs.lr}}]]``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from shipyard.domain.errors import InvalidInputError

_EXPRESSION = re.compile(r"\$\{\{\s*(?P<body>[^{}]*?)\s*\}\}")
_REFERENCE = re.compile(r"^(?P<kind>inputs|outputs)\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")
_OPTIONAL = re.compile(r"\$\[\[(?P<body>.*?)\]\]", re.DOTALL)


@dataclass(frozen=True)
class Reference:
    kind: str  # inputs | outputs
    name: str


def references(command: str, *, field: str = "command") -> list[Reference]:
    """Every ``${{inputs.x}}`` / ``${{outputs.y}}`` in the command, in order; anything else
    inside ``${{ }}`` is an error naming it."""
    found: list[Reference] = []
    for match in _EXPRESSION.finditer(command):
        found.append(_parse(match.group("body"), field))
    return found


def _parse(body: str, field: str) -> Reference:
    parsed = _REFERENCE.match(body)
    if parsed is None:
        raise InvalidInputError(
            f"unknown expression ${{{{{body}}}}} in the command: a command may use "
            "${{inputs.<name>}} and ${{outputs.<name>}}",
            code="invalid_expression",
            field=field,
        )
    return Reference(parsed.group("kind"), parsed.group("name"))


def check(
    command: str,
    inputs: Mapping[str, object],
    outputs: Mapping[str, object],
    *,
    field: str = "command",
) -> None:
    """Refuse a command that names an input or output the job does not declare."""
    declared = {"inputs": inputs, "outputs": outputs}
    for ref in references(command, field=field):
        if ref.name not in declared[ref.kind]:
            raise InvalidInputError(
                f"the command uses ${{{{{ref.kind}.{ref.name}}}}} but the job has no "
                f"{ref.kind[:-1]} named {ref.name!r}",
                code="undefined_reference",
                field=f"{field}",
            )


def render(
    command: str,
    inputs: Mapping[str, str | None],
    outputs: Mapping[str, str],
    *,
    field: str = "command",
) -> str:
    """The command with every expression replaced by its quoted value.

    ``inputs`` maps each declared input to its value as text (a literal, or the path or URI
    a data input became), or None for an optional input left unset: a ``$[[ ]]`` fragment
    naming one is dropped; naming one anywhere else is an error.
    """
    check(command, inputs, outputs, field=field)

    def keep_fragment(match: re.Match[str]) -> str:
        body = match.group("body")
        unset = [r for r in references(body, field=field) if _value(r, inputs, outputs) is None]
        return "" if unset else body

    text = _OPTIONAL.sub(keep_fragment, command)
    return _substitute(text, inputs, outputs, field)


def _value(
    ref: Reference, inputs: Mapping[str, str | None], outputs: Mapping[str, str]
) -> str | None:
    return inputs.get(ref.name) if ref.kind == "inputs" else outputs.get(ref.name)


def _substitute(
    text: str, inputs: Mapping[str, str | None], outputs: Mapping[str, str], field: str
) -> str:
    out: list[str] = []
    state = ""  # "" outside quotes, "'" inside single quotes, '"' inside double quotes
    i = 0
    while i < len(text):
        match = _EXPRESSION.match(text, i)
        if match is not None:
            ref = _parse(match.group("body"), field)
            value = _value(ref, inputs, outputs)
            if value is None:
                raise InvalidInputError(
                    f"the optional input {ref.name!r} has no value; wrap the part of the "
                    f"command that uses it in $[[ ... ]] so it is left out",
                    code="unset_optional_input",
                    field=f"inputs.{ref.name}",
                )
            out.append(_quoted(value, state))
            i = match.end()
            continue
        char = text[i]
        out.append(char)
        if state == "'":
            if char == "'":
                state = ""
        elif char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])  # an escaped character means nothing to the scan
            i += 1
        elif state == '"':
            if char == '"':
                state = ""
        elif char in "'\"":
            state = char
        i += 1
    return "".join(out)


def _quoted(value: str, state: str) -> str:
    if state == "'":
        return "'" + shlex.quote(value) + "'"
    if state == '"':
        return re.sub(r'([\\"$`])', r"\\\1", value)
    return shlex.quote(value)
