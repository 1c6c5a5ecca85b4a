"""``shipyard server`` and ``shipyard db``: the commands that run the server side.

The server side (FastAPI, uvicorn, SQLAlchemy) is imported inside these commands only, so the
client commands (``shipyard workspace list``...) start without loading it.
"""

from __future__ import annotations

import contextlib
import gc
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
    from shipyard.api.http_server import uvicorn_config
    from shipyard.api.logging import configure_logging
    from shipyard.services.bootstrap import SchemaOutOfDateError, prepare
    from shipyard.services.master_key import MasterKeyError

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
    try:
        app = create_app(settings, db)
    except MasterKeyError as exc:  # the key vault's key: missing, malformed or exposed
        raise click.ClickException(str(exc)) from exc
    runner = uvicorn.Server(uvicorn_config(app, settings))
    # What starting made (modules, the app, its routes and schemas) lives as long as the
    # process: frozen, the collector stops walking it again on every full collection, which
    # cost about a tenth of a busy server's time.
    gc.collect()
    gc.freeze()

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


@click.group("admin")
def admin() -> None:
    """Server administration on the data folder and the database directly (run it on the
    server's host)."""


@admin.command("rotate-master-key")
@_store_options
@click.option(
    "--new-key-file",
    type=click.Path(dir_okay=False),
    help="Take the new key from this file (32 bytes in base64, mode 0600) instead of "
    "generating one.",
)
def rotate_master_key(new_key_file: str | None, **flags: Any) -> None:
    """Re-encrypt every secret with a new master key, and make it <data_dir>/master.key."""
    from pathlib import Path

    from shipyard.services.master_key import MasterKeyError, read_key_file
    from shipyard.services.secrets import rotate_key_files
    from shipyard.store import migrate

    settings = load_settings(**flags)
    with database_errors(settings.database_url):
        database = open_database(settings.database_url)
        try:
            if migrate.current_revision(database.engine) != migrate.head_revision(database.engine):
                raise click.ClickException(
                    "the database schema is not up to date: run `shipyard db upgrade` first"
                )
            new = read_key_file(Path(new_key_file)) if new_key_file else None
            done = rotate_key_files(database, settings.master_key, settings.data_dir, new)
        except MasterKeyError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            database.dispose()
    if done.finished_interrupted:
        click.echo(
            f"finished an interrupted rotation: the master key is now {done.new_key_id} "
            f"({done.key_file}); run the command again to rotate once more",
            err=True,
        )
        return
    click.echo(
        f"re-encrypted {done.secrets} secrets with master key {done.new_key_id}, now in "
        f"{done.key_file} (mode 0600); the old key is gone from it",
        err=True,
    )
    if settings.master_key is not None:
        click.echo(
            "the old key came from the master_key setting (SHIPYARD_MASTER_KEY): set it to the "
            f"new key in {done.key_file}, or unset it to use that file",
            err=True,
        )


@admin.command("gc-uploads")
@_store_options
@click.option(
    "--older-than",
    type=click.FloatRange(min=0, min_open=True),
    metavar="HOURS",
    help="Remove uploads nobody has begun for this many hours (default: the "
    "upload_abandon_after_hours setting, 24).",
)
def gc_uploads(older_than: float | None, **flags: Any) -> None:
    """Remove uploads of local files that were never committed, or that no data version,
    model version or job uses any more (rows and files)."""
    from datetime import timedelta

    from shipyard.api.app import build_services
    from shipyard.services.master_key import MasterKeyError
    from shipyard.store import migrate

    settings = load_settings(**flags)
    with database_errors(settings.database_url):
        database = open_database(settings.database_url)
        try:
            if migrate.current_revision(database.engine) != migrate.head_revision(database.engine):
                raise click.ClickException(
                    "the database schema is not up to date: run `shipyard db upgrade` first"
                )
            try:
                collector = build_services(settings, database).upload_gc
            except MasterKeyError as exc:  # datastores' keys are in the key vault
                raise click.ClickException(str(exc)) from exc
            age = None if older_than is None else timedelta(hours=older_than)
            sweep = collector.collect(older_than=age)
        finally:
            database.dispose()
    for removed in sweep.removed:
        files = "" if removed.files_removed else " (files kept)"
        click.echo(
            f"removed {removed.reason} {removed.purpose} upload {removed.digest[:12]} of "
            f"{removed.workspace} in {removed.datastore}{files}"
        )
    spared = ", ".join(f"{count} {why.replace('_', ' ')}" for why, count in sweep.spared.items())
    click.echo(
        f"removed {len(sweep.removed)} uploads" + (f"; spared {spared}" if spared else ""),
        err=True,
    )
    for failure in sweep.failed:
        click.echo(f"failed: {failure}", err=True)
    if sweep.failed:
        raise click.exceptions.Exit(1)
