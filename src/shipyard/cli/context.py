"""What every SDK-backed command shares: the client, and the options named like ``az ml``."""

from __future__ import annotations

import click

from shipyard.sdk.client import Client

name_option = click.option("-n", "--name", required=True, help="The resource's name.")
file_option = click.option(
    "-f", "--file", "file", type=click.Path(dir_okay=False), help="A YAML file describing it."
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a field of the file (repeatable), e.g. --set tags.team=nlp.",
)


def client() -> Client:
    """A client from SHIPYARD_URL / SHIPYARD_TOKEN or the saved profile."""
    return Client()


def parse_pairs(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} must look like key=value", param_hint=option)
        result[key] = value
    return result
