"""A job's command: expressions replaced by values that stay literal wherever they stand."""

from __future__ import annotations

import json
import subprocess

import pytest

from shipyard.domain.command_template import check, references, render
from shipyard.domain.errors import InvalidInputError

HOSTILE = [
    "; rm -rf /",
    "$(id)",
    "`id`",
    "a\nb",
    'it\'s "quoted" \\ $HOME',
    "",
    "*",
    "--flag=x y",
    "' ; echo pwned ; '",
]
# Where an expression may stand in a command: bare, in double quotes, inside single quotes,
# and glued to other text.
TEMPLATES = {
    "bare": ('python -c "$PRINT" ${{inputs.x}}', "{}"),
    "double": ('python -c "$PRINT" "${{inputs.x}}"', "{}"),
    "single": ("python -c \"$PRINT\" 'pre${{inputs.x}}post'", "pre{}post"),
    "glued": ('python -c "$PRINT" --x=${{inputs.x}}', "--x={}"),
    "inside words": ('python -c "$PRINT" "a b ${{inputs.x}}"', "a b {}"),
}
PRINT = "import json, sys; print(json.dumps(sys.argv[1:]))"


def run_bash(command: str) -> list[str]:
    done = subprocess.run(
        ["/bin/bash", "-c", command],
        capture_output=True,
        text=True,
        env={"PRINT": PRINT, "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        check=True,
    )
    return list(json.loads(done.stdout))


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("where", sorted(TEMPLATES))
def test_a_value_reaches_the_program_as_one_literal_argument(value: str, where: str) -> None:
    template, expected = TEMPLATES[where]
    command = render(template.replace("python", "python3"), {"x": value}, {})
    assert run_bash(command) == [expected.format(value)]


def test_outputs_are_paths_quoted_the_same_way() -> None:
    path = "/data/a b/$(x)"
    command = render('python3 -c "$PRINT" ${{outputs.model}}', {}, {"model": path})
    assert run_bash(command) == [path]


def test_optional_fragments_are_dropped_when_their_input_is_unset() -> None:
    template = "train $[[--lr ${{inputs.lr}}]] --epochs ${{inputs.epochs}}"
    assert render(template, {"lr": None, "epochs": "3"}, {}) == "train  --epochs 3"
    assert render(template, {"lr": "0.1", "epochs": "3"}, {}) == "train --lr 0.1 --epochs 3"


def test_an_unset_optional_input_outside_a_fragment_is_refused() -> None:
    with pytest.raises(InvalidInputError) as caught:
        render("train --lr ${{inputs.lr}}", {"lr": None}, {})
    assert caught.value.field == "inputs.lr"


def test_undefined_references_name_the_input() -> None:
    with pytest.raises(InvalidInputError, match="nope") as caught:
        check("run ${{inputs.nope}}", {"x": 1}, {})
    assert caught.value.code == "undefined_reference"
    assert caught.value.field == "command"
    with pytest.raises(InvalidInputError, match=r"outputs\.model"):
        check("run ${{outputs.model}}", {}, {})


@pytest.mark.parametrize(
    "expression", ["${{inputs}}", "${{secrets.key}}", "${{inputs.a-b}}", "${{ parent.jobs.x }}"]
)
def test_unknown_expressions_are_refused(expression: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        references(f"run {expression}")
    assert caught.value.code == "invalid_expression"


def test_spaces_inside_the_braces_are_allowed() -> None:
    assert render("echo ${{ inputs.x }}", {"x": "a b"}, {}) == "echo 'a b'"
