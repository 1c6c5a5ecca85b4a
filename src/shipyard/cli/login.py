"""``shipyard login``: save a server URL and token as the profile the CLI and SDK use."""

from __future__ import annotations

import click

from shipyard.cli.output import output_option, print_one
from shipyard.sdk.client import Client
from shipyard.sdk.profile import DEFAULT_PROFILE, Profile, save_profile


@click.command("login")
@click.option("--url", required=True, help="The server, e.g. http://127.0.0.1:8765")
@click.option("--token", prompt=True, hide_input=True, help="Your token; asked for when not given.")
@click.option("--profile", default=DEFAULT_PROFILE, show_default=True, help="Profile name.")
@output_option
def login(url: str, token: str, profile: str, output: str) -> None:
    """Check the token against the server, then save it (file mode 0600)."""
    with Client(url, token) as c:
        me = c.users.me()
    path = save_profile(Profile(url=url.rstrip("/"), token=token), profile)
    click.echo(f"logged in to {url} as {me.name}; profile saved in {path}", err=True)
    print_one(me, output)
