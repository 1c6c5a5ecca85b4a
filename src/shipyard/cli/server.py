"""``shipyard server`` and ``shipyard db``: the commands that run the server side.

The server side (FastAPI, uvicorn, SQLAlchemy) is imported inside these commands only, so the
client commands (``shipyard workspace list``...) start without loading it.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from shipyard.settings import Settings
    from shipyard.store.database import Database


def _store_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--config",
                "config_file",
                type=click.Path(dir_okay=False),
                help="A YAML/JSON/TOML settings file.",
            ),
            click.option(
                "--data-dir",
                type=click.Path(file_okay=False),
                help="Data folder (default: $SHIPYARD_HOME or ~/.shipyard).",
            ),
            click.option(
                "--db-url", help="Metadata store URL (default: SQLite in the data folder)."
            ),
        ]
    ):
        fn = option(fn)
    return fn


def load_settings(**flags: Any) -> Settings:
    """Settings from the flags given (None means "not given"), then env, then config file."""
    from pydantic import ValidationError

    from shipyard.settings import Settings

    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except (ValidationError, ValueError) as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc


def open_database(url: str, **options: Any) -> Database:
    """The store at ``url``; a URL that cannot be used is a message, not a traceback."""
    from sqlalchemy.exc import ArgumentError

    from shipyard.store.database import Database

    try:
        return Database(url, **options)
    except ArgumentError as exc:
        raise click.ClickException(f"the database URL cannot be used: {exc}") from exc
    except ImportError as exc:  # create_engine imports the URL's driver
        raise click.ClickException(
            f"the database URL needs a driver that is not installed: {exc}"
        ) from exc


@contextlib.contextmanager
def database_errors(url: str) -> Iterator[None]:
    """A store that cannot be reached: a message, not a traceback."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        reason = " ".join(str(exc.orig or exc).split())
        raise click.ClickException(f"cannot use the database {shown}: {reason}") from exc


@click.command("server")
@click.option("--host", help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (default 8765).")
@_store_options
@click.option("--artifact-root", help="Where workspace storage lives by default.")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), help="Log lines as text or JSON."
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Lowest level logged (default info).",
)
@click.option("--no-upgrade", is_flag=True, help="Do not migrate the database on start.")
def server(no_upgrade: bool, **flags: Any) -> None:
    """Run the Shipyard server (API and, later, the Studio, scheduler and gateway)."""
    import uvicorn

    from shipyard.api.app import create_app
    from shipyard.api.logging import configure_logging
    from shipyard.services.bootstrap import SchemaOutOfDateError, prepare

    if no_upgrade:
        flags["auto_upgrade"] = False
    settings = load_settings(**flags)
    configure_logging(settings.log_format, settings.log_level)
    with database_errors(settings.database_url):
        db = open_database(
            settings.database_url,
            sqlite_busy_timeout_seconds=settings.sqlite_busy_timeout_seconds,
        )
        try:
            result = prepare(settings, db)
        except SchemaOutOfDateError as exc:
            raise click.ClickException(str(exc)) from exc
    if result.generated_token:
        url = f"http://{settings.host}:{settings.port}"
        click.echo(
            "\nThe first admin's token (shown once; also saved, mode 0600, in "
            f"{result.token_file}):\n\n    {result.generated_token}\n\n"
            f"Log in with: shipyard login --url {url} --token <the token>\n",
            err=True,
        )
    app = create_app(settings, db)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # configure_logging set the handlers
        access_log=False,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_seconds),
        server_header=False,
    )
    runner = uvicorn.Server(config)

    def stop(signum: int, frame: object) -> None:
        runner.should_exit = True

    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal to the
    # handler that was there before it started; with the default handler a clean shutdown would
    # end as "killed by SIGTERM" (exit status 143). This handler lets it end with status 0, and
    # also stops the server if a signal comes before uvicorn has installed its own handlers.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    runner.run()


@click.group("db")
def db() -> None:
    """The metadata store."""


@db.command("upgrade")
@_store_options
def upgrade(**flags: Any) -> None:
    """Apply pending migrations (the server does this on start unless --no-upgrade)."""
    from shipyard.store import migrate

    settings = load_settings(**flags)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with database_errors(settings.database_url):
        database = open_database(settings.database_url)
        try:
            migrate.upgrade(database.engine)
            revision = migrate.current_revision(database.engine)
            click.echo(f"database at revision {revision}", err=True)
        finally:
            database.dispose()


@db.command("current")
@_store_options
def current(**flags: Any) -> None:
    """Print the database's migration revision and the newest one this version knows."""
    from shipyard.store import migrate

    settings = load_settings(**flags)
    with database_errors(settings.database_url):
        database = open_database(settings.database_url)
        try:
            click.echo(f"current: {migrate.current_revision(database.engine)}")
            click.echo(f"head:    {migrate.head_revision(database.engine)}")
        finally:
            database.dispose()
