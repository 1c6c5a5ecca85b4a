"""What the online and batch endpoint commands share: their options and how an endpoint or
deployment YAML file is read, with ``-n``/``-e`` overriding the file's names (and flagged,
so an error about a name points at the option rather than at a line of the file)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from shipyard.sdk.yaml import YamlDocument, load_yaml_file

workspace_option = click.option(
    "-w", "--workspace", required=True, help="The workspace the endpoint belongs to."
)
file_required = click.option(
    "-f",
    "--file",
    "file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The YAML file (Azure ML's shape).",
)
name_override = click.option("-n", "--name", help="The name (overrides the file's).")
Command = TypeVar("Command", bound=Callable[..., Any])
endpoint_override = click.option(
    "-e", "--endpoint-name", "endpoint", help="The endpoint (overrides the file's)."
)


def required_endpoint_option(kind: str) -> Callable[[Command], Command]:
    """``-e ENDPOINT``, required: the endpoint a deployment command acts in."""
    return click.option(
        "-e", "--endpoint-name", "endpoint", required=True, help=f"The {kind} endpoint."
    )


def endpoint_spec(
    file: str, overrides: tuple[str, ...], name: str | None
) -> tuple[YamlDocument, dict[str, Any], frozenset[str]]:
    """An endpoint file as a spec, with the fields given on the command line."""
    document = load_yaml_file(file, overrides)
    spec: dict[str, Any] = dict(document.data)
    if name:
        spec["name"] = name
    if not spec.get("name"):
        raise click.UsageError("give the endpoint a name: in the file, or with -n NAME")
    return document, spec, frozenset({"name"} if name else set())


def endpoint_changes(
    file: str | None, overrides: tuple[str, ...]
) -> tuple[YamlDocument | None, dict[str, Any]]:
    """An endpoint update's changes read from its file, if one is given (``--set`` changes a
    file's fields, so it needs one); the caller adds what its own options change."""
    document = load_yaml_file(file, overrides) if file else None
    if document is None and overrides:
        raise click.UsageError("--set changes a file's fields: give the file with -f")
    changes: dict[str, Any] = dict(document.data) if document else {}
    changes.pop("$schema", None)
    return document, changes


def deployment_spec(
    file: str, overrides: tuple[str, ...], name: str | None, endpoint: str | None
) -> tuple[YamlDocument, dict[str, Any], frozenset[str]]:
    """A deployment file as a spec, with the fields given on the command line."""
    document = load_yaml_file(file, overrides)
    spec: dict[str, Any] = dict(document.data)
    flags: set[str] = set()
    if name:
        spec["name"] = name
        flags.add("name")
    if endpoint:
        spec["endpoint_name"] = endpoint
        flags.add("endpoint_name")
    if not spec.get("name"):
        raise click.UsageError("give the deployment a name: in the file, or with -n NAME")
    if not spec.get("endpoint_name"):
        raise click.UsageError("name its endpoint: endpoint_name in the file, or -e ENDPOINT")
    return document, spec, frozenset(flags)
