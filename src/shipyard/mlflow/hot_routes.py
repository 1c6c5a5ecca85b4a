"""MLflow's hottest methods served without FastAPI's routing and dependency solving.

A training script calls ``log-metric``, ``log-batch`` and ``runs/create`` thousands of times.
For a single metric, FastAPI's work around the handler (matching the path against every
included router, twice; solving the dependency graph; one hand-off to a worker thread for
the authorization dependency and another for the endpoint) cost more than the database. This
middleware sits inside the request context middleware (request id, body limit, access and
audit log) and serves those routes itself, with the routes' own parts:

- the path finds the app's own ``APIRoute``; its declared requirement (the one authorization
  dependency, ``RequireAction``) authenticates and authorizes, with the same bearer
  credentials and services FastAPI would give it, and starts the audit entry;
- the body goes through the endpoint's own body model, and the endpoint itself runs, in the
  same worker thread as the requirement (one hand-off, not two, and the event loop's own
  executor rather than anyio's);
- what the requirement or the endpoint raise goes through the app's own exception handlers
  (so MLflow's error shape and the 401 header are the app's);
- anything else off the happy path *before* either runs (a body that is not JSON or fails
  its model, a content type other than JSON, a body the limit refuses, a client that went
  away) goes to the app unchanged, with the body replayed: every such error is the app's
  own answer, nothing here reimplements it.

Only routes whose endpoint answers a ``Response`` itself and takes nothing but the path's
``workspace``, the body, the principal, the request and the services are served here;
anything else stays with FastAPI.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, get_type_hints

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.api.authz import RequireAction, iter_routes, requirement
from shipyard.api.deps import get_services
from shipyard.mlflow.paths import API_PREFIX, TRACKING_PATH

#: The MLflow methods (``runs/log-metric`` is ``{tracking URI}/api/2.0/mlflow/runs/log-metric``)
#: served here when the app serves them: what a training loop calls per step or per run, and
#: the search a comparison of runs starts with.
HOT_METHODS = frozenset(
    {
        "runs/create",
        "runs/log-metric",
        "runs/log-batch",
        "runs/log-parameter",
        "runs/set-tag",
        "runs/search",
    }
)

_HEAD = TRACKING_PATH.split("{workspace}")[0]  # "/mlflow/workspaces/"
_API = API_PREFIX.split("{workspace}")[1] + "/"  # "/api/2.0/mlflow/"
# The requirement's own bearer dependency (``credentials = Depends(...)`` in its signature).
_CREDENTIALS: Callable[[Request], Any] = (
    inspect.signature(RequireAction.__call__).parameters["credentials"].default.dependency
)
_ARGUMENTS = frozenset({"workspace", "body", "principal", "request", "services"})


@dataclass(frozen=True)
class HotRoute:
    route: APIRoute
    requirement: RequireAction
    body: type[BaseModel]
    arguments: frozenset[str]  # which of _ARGUMENTS the endpoint takes


def hot_routes(routes: Iterable[Any], methods: frozenset[str] = HOT_METHODS) -> dict[str, HotRoute]:
    """The app's routes for ``methods`` that can be served here, by the path after the
    workspace (``/api/2.0/mlflow/runs/log-metric``)."""
    found: dict[str, HotRoute] = {}
    for route in iter_routes(routes):
        if not isinstance(route, APIRoute) or route.methods != {"POST"}:
            continue
        head, _, tail = route.path.partition("{workspace}")
        if head != _HEAD or not tail.startswith(_API) or tail[len(_API) :] not in methods:
            continue
        hot = _hot_route(route)
        if hot is not None:
            found.setdefault(tail, hot)  # the first route wins, as in the router
    return found


def _hot_route(route: APIRoute) -> HotRoute | None:
    needed = requirement(route)
    signature = inspect.signature(route.endpoint)
    arguments = frozenset(signature.parameters)
    if needed is None or not arguments <= _ARGUMENTS or "body" not in arguments:
        return None
    hints = get_type_hints(route.endpoint)
    body, answer = hints.get("body"), hints.get("return")
    if not (inspect.isclass(body) and issubclass(body, BaseModel)):
        return None
    if not (inspect.isclass(answer) and issubclass(answer, Response)):
        return None
    return HotRoute(route, needed, body, arguments)


class HotRoutes:
    """ASGI middleware: see the module's note. ``api`` is the app whose routes and exception
    handlers it uses (read at the first request, after every route is added)."""

    def __init__(self, app: ASGIApp, *, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self._routes: dict[str, HotRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._match(scope) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        workspace, hot = found
        messages, error = await _read(receive)
        body = None if error is not None else _parse(scope, messages, hot.body)
        if body is None:
            await self.app(scope, _replay(messages, error, receive), send)
            return
        await self._serve(scope, receive, send, workspace, hot, body)

    def _match(self, scope: Scope) -> tuple[str, HotRoute] | None:
        if scope["method"] != "POST":
            return None
        path = _route_path(scope)
        if not path.startswith(_HEAD):
            return None
        workspace, slash, rest = path[len(_HEAD) :].partition("/")
        if not workspace or not slash:
            return None
        if self._routes is None:
            self._routes = hot_routes(self.api.routes)
        hot = self._routes.get("/" + rest)
        return None if hot is None else (workspace, hot)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        workspace: str,
        hot: HotRoute,
        body: BaseModel,
    ) -> None:
        # What the router would have put in the scope for this route.
        scope["path_params"] = {**scope.get("path_params", {}), "workspace": workspace}
        scope["route"], scope["endpoint"] = hot.route, hot.route.endpoint
        request = Request(scope, receive)
        credentials = await _CREDENTIALS(request)
        services = await get_services(request)

        def call() -> Response:
            principal = hot.requirement(request, credentials, services)
            values = {
                "workspace": workspace,
                "body": body,
                "principal": principal,
                "request": request,
                "services": services,
            }
            answer: Response = hot.route.endpoint(**{name: values[name] for name in hot.arguments})
            return answer

        try:
            # The event loop's own executor, with the request's context (request id): anyio's
            # thread hand-off (what ``run_in_threadpool`` uses) cost the event loop several
            # times more per call. Its pool is shut down with the loop.
            context = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(None, context.run, call)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:  # the app's outermost handler answers it, as for any route
                raise
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Callable[[Request, Exception], Any] | None:
        """The handler the app's exception middleware would pick (by the error's class;
        ``Exception`` itself belongs to the outermost middleware, not this one)."""
        handlers = self.api.exception_handlers
        for kind in type(exc).__mro__:
            if kind is Exception:
                return None
            if kind in handlers:
                return handlers[kind]
        return None


async def _read(receive: Receive) -> tuple[list[Message], Exception | None]:
    """The request's messages up to the end of its body, or up to what went wrong (the body
    limit raises from ``receive``)."""
    messages: list[Message] = []
    try:
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                return messages, None
    except Exception as exc:  # replayed to the app, which answers it as it always does
        return messages, exc


def _replay(messages: list[Message], error: Exception | None, receive: Receive) -> Receive:
    """``receive`` for the app: the messages already read, then the error reading stopped
    at, then the client's own stream."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        if error is not None:
            raise error
        return await receive()

    return replay


def _parse(scope: Scope, messages: list[Message], model: type[BaseModel]) -> BaseModel | None:
    """The body as ``model``, or None for anything the app should answer itself."""
    if not messages or messages[-1]["type"] != "http.request" or not _json(scope):
        return None
    raw = b"".join(m.get("body", b"") for m in messages)
    try:
        # As FastAPI reads a JSON body: json.loads, then the model checks the Python values.
        return model.model_validate(json.loads(raw))
    except (ValueError, ValidationError):  # not JSON, not UTF-8, or not a valid body
        return None


def _json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value.split(b";")[0].strip().lower() == b"application/json")
    return False


def _route_path(scope: Scope) -> str:
    """The path the router matches: without the prefix the app is mounted at, if any."""
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path
