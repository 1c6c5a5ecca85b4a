"""docs/cli.md documents every command of the ``shipyard`` CLI, and every option of each."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from shipyard.cli.main import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
HEADING = re.compile(r"^### (.+?)\s*$", re.MULTILINE)


def command_paths(command: click.Command, path: str = "shipyard") -> dict[str, click.Command]:
    """Every runnable command under ``command``, by its full path ("shipyard workspace create")."""
    if not isinstance(command, click.Group):
        return {path: command}
    ctx = click.Context(command, info_name=path)
    found: dict[str, click.Command] = {}
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            found.update(command_paths(sub, f"{path} {name}"))
    return found


def sections(text: str) -> dict[str, str]:
    """The body of each ``### heading``, up to the next heading of any level."""
    result: dict[str, str] = {}
    for match in HEADING.finditer(text):
        rest = text[match.end() :]
        following = re.search(r"^#{1,3} ", rest, re.MULTILINE)
        result[match.group(1)] = rest[: following.start()] if following else rest
    return result


def missing_headings(root: click.Command, text: str) -> list[str]:
    headings = set(sections(text))
    return sorted(path for path in command_paths(root) if path not in headings)


def undocumented_options(root: click.Command, text: str) -> list[str]:
    bodies = sections(text)
    missing = []
    for path, command in command_paths(root).items():
        body = bodies.get(path, "")
        for param in command.params:
            if not isinstance(param, click.Option) or param.name == "help":
                continue
            longest = max(param.opts, key=len)
            if not re.search(rf"(?<![\w-]){re.escape(longest)}(?![\w-])", body):
                missing.append(f"{path} {longest}")
    return missing


def test_every_command_has_its_own_heading() -> None:
    paths = command_paths(cli)
    # The walk reaches the nested commands, not just the top-level groups.
    assert {"shipyard server", "shipyard login", "shipyard workspace create"} <= set(paths)
    assert "shipyard db upgrade" in paths
    assert "shipyard workspace" not in paths
    assert missing_headings(cli, DOC.read_text(encoding="utf-8")) == []


def test_every_option_is_documented_under_its_command() -> None:
    assert undocumented_options(cli, DOC.read_text(encoding="utf-8")) == []


def test_no_heading_names_a_command_that_does_not_exist() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = {h for h in sections(text) if h.startswith("shipyard")}
    assert documented - set(command_paths(cli)) == set()


@pytest.fixture
def tree_with_extra_command() -> click.Group:
    """The real tree plus commands docs/cli.md does not have."""

    @click.group()
    def root() -> None: ...

    for name, command in cli.commands.items():
        root.add_command(command, name)

    @root.command("work")  # "### shipyard workspace create" contains "shipyard work"
    def work() -> None: ...

    @root.group("workspace-extra")
    def extra() -> None: ...

    @extra.command("create")
    def extra_create() -> None: ...

    return root


def test_the_heading_check_fails_for_an_undocumented_command(
    tree_with_extra_command: click.Group,
) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert missing_headings(tree_with_extra_command, text) == [
        "shipyard work",
        "shipyard workspace-extra create",
    ]
    # A heading removed from the real document is noticed too.
    without = text.replace("### shipyard workspace recover\n", "")
    assert missing_headings(cli, without) == ["shipyard workspace recover"]


def test_the_option_check_fails_for_an_undocumented_option() -> None:
    text = DOC.read_text(encoding="utf-8")
    bodies = sections(text)
    body = bodies["shipyard workspace delete"]
    assert "--permanently-delete" in body
    broken = text.replace(body, body.replace("--permanently-delete", "--gone"))
    assert undocumented_options(cli, broken) == ["shipyard workspace delete --permanently-delete"]
