"""uvicorn's HTTP/1.1 protocol (httptools) with a request body's pieces passed on as they come.

uvicorn (0.45 and later) gathers the body pieces of a request in a ``bytearray`` and hands
the app ``bytes`` of it: every byte of an upload copied twice on the event loop, which a
big upload's loop has no CPU to spare for. Each gathering here starts from an empty
``bytes`` instead, and the first piece then goes through untouched (``b"" + piece`` and
``bytes(piece)`` are ``piece`` itself). Past 64 KiB uvicorn pauses reading until the app
takes what is gathered, so nearly every piece of a big body is the only one; small pieces
that do meet are joined as before.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class PassThroughBodyProtocol(HttpToolsProtocol):
    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if not cycle.body:
            # An empty bytes, not uvicorn's bytearray: its += returns the piece itself.
            cycle.body = b""  # type: ignore[assignment]
        super().on_body(body)
