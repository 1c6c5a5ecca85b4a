"""The HTTP session every operation group shares: base URL, token, and error mapping."""

from __future__ import annotations

import contextlib
import http.client
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel

from shipyard.domain.errors import (
    InvalidInputError,
    ShipyardError,
    UnavailableError,
    error_for_status,
)
from shipyard.schemas.common import Page

M = TypeVar("M", bound=BaseModel)

#: Files from this size on go up and down over a connection of their own (see put_file and
#: download_file).
DIRECT_BYTES = 4 * 1024 * 1024
#: The buffer a direct download reads into and writes from. Small enough to stay in a core's
#: L2 cache between the socket's copy into it and the file's copy out of it: a GiB took
#: 0.39 s with 256 KiB, 1.2 s with 1 MiB on the benchmark machine (measured).
DOWNLOAD_PIECE = 256 * 1024
#: The buffer a direct upload reads the file into and sends from (reused: see put_file).
UPLOAD_PIECE = 1024 * 1024


class HttpSession:
    def __init__(self, url: str, token: str | None, *, timeout: float, user_agent: str) -> None:
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self._headers = headers
        self._timeout = timeout
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise UnavailableError(
                f"cannot reach the Shipyard server at {self.url}: {exc}", code="unreachable"
            ) from exc
        if response.status_code >= 400:
            raise problem_error(response)
        return response

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A response whose body is read as it arrives (downloads); errors raise as above."""
        try:
            with self._client.stream(method, path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise problem_error(response)
                yield response
        except httpx.TransportError as exc:
            raise UnavailableError(
                f"cannot reach the Shipyard server at {self.url}: {exc}", code="unreachable"
            ) from exc

    def put_file(self, path: str, source: Path, *, size: int) -> httpx.Response:
        """PUT a file as the raw request body (its ``size`` as the Content-Length); returns
        the response, errors raising as ``request``'s do.

        A big file over plain HTTP without a proxy goes over a ``http.client`` connection of
        its own, read into one reused buffer and sent from it. Through httpx every piece is
        a new buffer: glibc gives the memory back to the kernel after each and takes it
        again for the next, and on the benchmark's virtual machine that churn slowed the
        server beside it too (same-run uploads of a GiB: 0.9-1.4 s from one buffer, 0.9-3.4 s
        through httpx, the server using up to twice the CPU). Small files share httpx's
        pooled connections; HTTPS and proxies go through httpx."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if size >= DIRECT_BYTES and self._direct():
            return self._put_direct(path, source, headers)
        with source.open("rb") as handle:
            return self.request("PUT", path, content=_pieces(handle), headers=headers)

    def _put_direct(self, path: str, source: Path, headers: dict[str, str]) -> httpx.Response:
        connection = self._connection()
        try:
            with source.open("rb", buffering=0) as handle:
                piece = bytearray(UPLOAD_PIECE)
                view = memoryview(piece)
                try:
                    connection.putrequest("PUT", self._target(path), skip_accept_encoding=True)
                    for name, value in {**self._headers, **headers}.items():
                        connection.putheader(name, value)
                    connection.endheaders()
                    left = int(headers["Content-Length"])
                    while left:
                        read = handle.readinto(view[: min(left, UPLOAD_PIECE)])
                        if not read:
                            raise InvalidInputError(
                                f"{source} got shorter while it was sent",
                                code="file_changed",
                                field="path",
                            )
                        connection.send(view[:read])
                        left -= read
                    answer = _whole(connection.getresponse())
                except (OSError, http.client.HTTPException) as exc:
                    raise self._unreachable(exc) from exc
        finally:
            connection.close()
        if answer.status_code >= 400:
            raise problem_error(answer)
        return answer

    def download_file(self, path: str, local: Path, *, size: int) -> None:
        """Write the file at ``path`` (its listed ``size``) to ``local``, through
        ``<name>.partial`` renamed once whole: a failed download leaves nothing behind.

        A big file over plain HTTP without a proxy comes over a ``http.client`` connection of
        its own, read straight into one reused buffer: httpx reads 64 KB at a time into new
        buffers and copies each through its parser, which made the client, not the server,
        the limit (1.1 s per GiB against 0.46 s, measured). Everything else (small files,
        which share httpx's pooled connections; HTTPS; proxies) goes through httpx."""
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(local.name + ".partial")
        try:
            with partial.open("wb") as out:
                if size >= DIRECT_BYTES and self._direct():
                    self._get_direct(path, out)
                else:
                    with self.stream("GET", path) as response:
                        for chunk in response.iter_bytes():
                            out.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(local)

    def _direct(self) -> bool:
        """Plain HTTP that no proxy setting applies to (httpx reads the same variables)."""
        parts = urlsplit(self.url)
        if parts.scheme != "http":
            return False
        proxies = urllib.request.getproxies()
        if not proxies.get("http") and not proxies.get("all"):
            return True
        return bool(urllib.request.proxy_bypass(parts.hostname or ""))

    def _connection(self) -> http.client.HTTPConnection:
        parts = urlsplit(self.url)
        return http.client.HTTPConnection(
            parts.hostname or "", parts.port or 80, timeout=self._timeout
        )

    def _target(self, path: str) -> str:
        """The request target of ``path`` (relative to the base URL, as httpx joins them)."""
        target = urlsplit(self.url + path)
        return target.path + (f"?{target.query}" if target.query else "")

    def _get_direct(self, path: str, out: BinaryIO) -> None:
        connection = self._connection()
        try:
            try:
                connection.request("GET", self._target(path), headers=self._headers)
                response = connection.getresponse()
                if response.status >= 400:
                    raise problem_error(_whole(response))
            except (OSError, http.client.HTTPException) as exc:
                raise self._unreachable(exc) from exc
            piece = bytearray(DOWNLOAD_PIECE)
            view = memoryview(piece)
            while True:
                try:
                    read = response.readinto(piece)
                except (OSError, http.client.HTTPException) as exc:  # reset, cut short
                    raise self._unreachable(exc) from exc
                if not read:
                    return
                out.write(view[:read])  # a full disk is the caller's error, not the server's
        finally:
            connection.close()

    def _unreachable(self, exc: Exception) -> UnavailableError:
        return UnavailableError(
            f"cannot reach the Shipyard server at {self.url}: {exc!r}", code="unreachable"
        )

    def get_model(self, path: str, model: type[M], **kwargs: Any) -> M:
        return model.model_validate(self.request("GET", path, **kwargs).json())

    def send_model(self, method: str, path: str, model: type[M], body: Any = None) -> M:
        return model.model_validate(self.request(method, path, json=body).json())

    def iterate(
        self, path: str, model: type[M], params: dict[str, Any] | None = None
    ) -> Iterator[M]:
        """Every item of a paged list, fetching the next page only when it is reached."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        while True:
            page = Page[model].model_validate(self.request("GET", path, params=query).json())  # type: ignore[valid-type]
            yield from page.items
            if not page.next_page_token:
                return
            query["page_token"] = page.next_page_token

    def close(self) -> None:
        self._client.close()


def _whole(response: http.client.HTTPResponse) -> httpx.Response:
    """A ``http.client`` answer, read whole, as the httpx response the error mapping reads."""
    return httpx.Response(response.status, headers=response.getheaders(), content=response.read())


def _pieces(handle: BinaryIO) -> Iterator[bytes]:
    """A file's bytes for an upload's body through httpx (which would read 64 KiB at a time:
    bigger pieces cost the client less Python time)."""
    while piece := handle.read(UPLOAD_PIECE):
        yield piece


def problem_error(response: httpx.Response) -> ShipyardError:
    """The typed error for a problem response (or for any error body a proxy might send)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error_class = error_for_status(response.status_code)
    error = error_class(
        str(body.get("detail") or response.text or response.reason_phrase),
        code=body.get("code") or f"http_{response.status_code}",
        field=body.get("field"),
    )
    error.status = response.status_code
    error.request_id = body.get("request_id") or response.headers.get("x-request-id")
    return error
