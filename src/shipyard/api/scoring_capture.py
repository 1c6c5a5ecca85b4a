"""A copy of the answer the scoring gateway sends, for the data collector.

The gateway sends its answer in one place or another (the instance's, or its own problem:
504, 502, 503); wrapping ``send`` for a sampled request sees every one of them without
touching those paths, and a request that is not sampled pays nothing.
"""

from __future__ import annotations

from starlette.types import Message, Send


class CapturedSend:
    __slots__ = ("_chunks", "content_type", "send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0
        self.content_type: bytes | None = None
        self._chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            for key, value in message.get("headers", ()):
                if key == b"content-type":
                    self.content_type = bytes(value)
        elif message["type"] == "http.response.body":
            self._chunks.append(bytes(message.get("body", b"")))
        await self.send(message)

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)
