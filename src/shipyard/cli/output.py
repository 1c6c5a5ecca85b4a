"""Printing results as JSON, YAML or a rich table (``-o/--output``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click
import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "yaml")

output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="How to print the result.",
)


def _plain(item: BaseModel | dict[str, Any]) -> dict[str, Any]:
    return item.model_dump(mode="json") if isinstance(item, BaseModel) else item


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and key != "tags":
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def print_one(item: BaseModel | dict[str, Any], output: str) -> None:
    data = _plain(item)
    if output == "json":
        click.echo(json.dumps(data, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
    else:
        table = Table(show_header=False, box=None)
        for key, value in _flatten(data).items():
            table.add_row(f"[bold]{key}[/bold]", _cell(value))
        Console(soft_wrap=True).print(table)


def print_many(
    items: Iterable[BaseModel | dict[str, Any]], output: str, columns: Sequence[str]
) -> None:
    rows = [_plain(i) for i in items]
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(rows, sort_keys=False).rstrip())
    else:
        table = Table()
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            flat = _flatten(row)
            table.add_row(*(_cell(flat.get(c)) for c in columns))
        Console(soft_wrap=True).print(table)
