"""How the app is served over HTTP: uvicorn's settings, one place for ``shipyard server`` and
for the servers the tests start, so the tests meet the connections users meet."""

from __future__ import annotations

from typing import TYPE_CHECKING

import uvicorn

from shipyard.api.http_protocol import PassThroughBodyProtocol

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from shipyard.settings import Settings


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # configure_logging set the handlers
        access_log=False,  # the request middleware writes its own access log
        timeout_graceful_shutdown=int(settings.graceful_shutdown_seconds),
        # uvicorn's own 5 s closes a client's pooled connection between two calls of a training
        # loop that logs every few seconds; a request sent just as the server closes meets a
        # reset ("Connection reset by peer"), which a client with no retries reports as an
        # error. Kept open past the idle timeouts of the usual proxies (60 s), as nginx does.
        timeout_keep_alive=settings.keep_alive_seconds,
        server_header=False,
        http=PassThroughBodyProtocol,  # uvicorn's httptools protocol, minus two body copies
    )
