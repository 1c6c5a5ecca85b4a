"""The HTTP session every operation group shares: base URL, token, and error mapping."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from shipyard.domain.errors import ShipyardError, UnavailableError, error_for_status
from shipyard.schemas.common import Page

M = TypeVar("M", bound=BaseModel)


class HttpSession:
    def __init__(self, url: str, token: str | None, *, timeout: float, user_agent: str) -> None:
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
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
