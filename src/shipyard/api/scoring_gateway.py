"""The scoring gateway: ``POST <scoring_uri>`` to a deployment's instances.

``/api/v1/workspaces/{ws}/onlineEndpoints/{name}/score`` is served here, as a raw ASGI
middleware ahead of FastAPI's routing (as ``mlflow/hot_routes.py`` serves MLflow's hottest
methods), inside the request context middleware (request id, body limit, access log). Unlike
those methods it has no FastAPI route to reuse: its credential is the endpoint's key or token,
not a workspace role, and its body is passed on untouched, so there is no model to parse and
no dependency to solve; what FastAPI would add per request is routing over every route.

A request is authenticated (``EndpointAuthenticator``: cached hashes, no store round trip
on the hot path), a deployment picked (the ``azureml-model-deployment`` header, else the
live traffic split among deployments with a ready instance), an instance picked (round
robin), and the body forwarded over pooled keep-alive connections. The instance's status,
body and content type come back as they are (its 400, 413, 429, 500, 504; a Ray Serve
application's backpressure 503 becomes 429); a refused
connection or an instance that is stopping is retried once on another instance. A share of
the requests is copied to the mirrored deployment without waiting for it. A deployment with
a ``data_collector`` has its sampled requests and answers handed to the collector, which
only buffers them (``services.data_collector``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Iterable
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.api.instance_client import (
    InstanceAnswerError,
    InstanceClient,
    InstanceUnavailableError,
)
from shipyard.api.logging import request_id_var
from shipyard.api.problems import PROBLEM_JSON
from shipyard.api.scoring_capture import CapturedSend
from shipyard.services.collected_rows import Sample
from shipyard.services.data_collector import DataCollector
from shipyard.services.deployment_runtime import (
    DeploymentRoute,
    DeploymentRuntime,
    EndpointRoutes,
)
from shipyard.services.endpoint_keys import EndpointAuthenticator
from shipyard.services.scoring_stats import ScoringStats
from shipyard.serving.spec import Address

DEPLOYMENT_HEADER = b"azureml-model-deployment"
_HEAD = "/api/v1/workspaces/"
_MIDDLE = "onlineEndpoints"
_TAIL = "score"
# Mirrored copies in flight at most: mirroring must never hold up or starve live traffic.
MAX_MIRRORED = 64
# Serve's proxy refuses a request past the application's queue (``max_queued_requests``)
# with a 503 saying so; to the client that is the 429 a busy local instance answers.
_SERVE_BACKPRESSURE = b"dropped due to backpressure"
# Past the instance's own timeout (it answers 504 itself), a little slack for the hop.
_TIMEOUT_SLACK_SECONDS = 5.0


class ScoringGateway:
    def __init__(
        self,
        app: ASGIApp,
        *,
        runtime: DeploymentRuntime | None,
        auth: EndpointAuthenticator,
        stats: ScoringStats,
        forwarder: InstanceClient,
        collector: DataCollector | None = None,
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.auth = auth
        self.stats = stats
        self.forwarder = forwarder
        self.collector = collector  # data_collector sampling (services.data_collector)
        self._turns: dict[str, itertools.count[int]] = {}
        self._mirrored: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = _match(scope) if scope["type"] == "http" else None
        if target is None:
            await self.app(scope, receive, send)
            return
        workspace, endpoint = target
        # Authenticated before the body is read: a caller without a key sends nothing on.
        # The check reads the store at most once a second per endpoint (its cache), so it
        # runs on the event loop rather than paying a thread hand-off per request.
        caller = self.auth.authenticate(workspace, endpoint, _bearer(scope))
        if caller is None:
            await _problem(
                send,
                401,
                "invalid_endpoint_credentials",
                f"a valid key or token of online endpoint {endpoint!r} is required "
                "(Authorization: Bearer <key>)",
                headers=[(b"www-authenticate", b"Bearer")],
            )
            return
        try:
            body = await _read_body(receive)
        except HTTPException as exc:  # the body limit (413)
            await _problem(send, exc.status_code, "payload_too_large", str(exc.detail))
            return
        if body is None:  # the client went away
            return
        await self._score(scope, send, workspace, endpoint, body, caller.credential)

    async def _score(
        self,
        scope: Scope,
        send: Send,
        workspace: str,
        endpoint: str,
        body: bytes,
        credential: str,
    ) -> None:
        routes = self.runtime.routes(workspace, endpoint) if self.runtime else None
        wanted = _header(scope, DEPLOYMENT_HEADER)
        if wanted is not None:
            name = wanted.decode("latin-1")
            chosen = routes.deployments.get(name) if routes else None
            if chosen is None:
                await _problem(
                    send,
                    404,
                    "deployment_not_found",
                    f"online endpoint {endpoint!r} has no deployment {name[:64]!r}",
                    field="azureml-model-deployment",
                )
                return
        else:
            chosen = self._weighted(routes.traffic) if routes else None
            if chosen is None:
                await _problem(send, 503, "no_ready_deployment", _unavailable(endpoint, routes))
                return
        content_type = _header(scope, b"content-type") or b"application/json"
        captured: CapturedSend | None = None
        if self.collector is not None and self.collector.sampled(chosen.id):
            send = captured = CapturedSend(send)
        started = time.perf_counter()
        status = await self._forward(send, chosen, body, content_type)
        elapsed = time.perf_counter() - started
        self.stats.record(chosen.id, status, elapsed, credential)
        if captured is not None:
            self._collect(chosen, body, content_type, captured, elapsed)
        if wanted is None and routes is not None and routes.mirror is not None:
            self._mirror(routes.mirror, body, content_type)

    def _collect(
        self,
        route: DeploymentRoute,
        body: bytes,
        content_type: bytes,
        answer: CapturedSend,
        elapsed: float,
    ) -> None:
        assert self.collector is not None
        sample = Sample(
            deployment_id=route.id,
            time=time.time() - elapsed,
            request_id=request_id_var.get(),
            request=body,
            request_type=content_type,
            status=answer.status,
            response=answer.body,
            response_type=answer.content_type,
            latency=elapsed,
        )
        self.collector.collect(sample)

    def _weighted(self, traffic: Iterable[tuple[DeploymentRoute, int]]) -> DeploymentRoute | None:
        """By the split's weights, among the deployments that have a ready instance: a new
        deployment that is not ready yet (or crash-loops) gets no traffic."""
        assert self.runtime is not None
        live = [(route, weight) for route, weight in traffic if self.runtime.ready(route.id)]
        total = sum(weight for _, weight in live)
        if not total:
            return None
        pick = random.random() * total  # noqa: S311 - a traffic split, not a secret
        for route, weight in live:
            pick -= weight
            if pick < 0:
                return route
        return live[-1][0]

    def _instances(self, deployment_id: str) -> list[Address]:
        ready = self.runtime.ready(deployment_id) if self.runtime else []
        if len(ready) > 1:
            turn = next(self._turns.setdefault(deployment_id, itertools.count()))
            start = turn % len(ready)
            ready = ready[start:] + ready[:start]
        return ready

    async def _forward(
        self, send: Send, route: DeploymentRoute, body: bytes, content_type: bytes
    ) -> int:
        """Send to an instance (another one once, when the first refused); the status the
        client got."""
        instances = self._instances(route.id)
        timeout = route.request_timeout_ms / 1000 + _TIMEOUT_SLACK_SECONDS
        for attempt, (host, port, path) in enumerate(instances[:2]):
            last = attempt == min(len(instances), 2) - 1
            try:
                answer = await self.forwarder.post(host, port, body, content_type, timeout, path)
            except InstanceUnavailableError:
                if last:
                    break
                continue
            except TimeoutError:
                return await _problem(
                    send, 504, "scoring_timeout", f"deployment {route.name!r} did not answer"
                )
            except (InstanceAnswerError, OSError) as exc:
                return await _problem(
                    send, 502, "instance_error", f"deployment {route.name!r} failed: {exc}"
                )
            if answer.status == 503 and not last:  # stopping or not ready: it ran nothing
                continue
            if answer.status == 503 and path and _SERVE_BACKPRESSURE in answer.body:
                return await _problem(
                    send,
                    429,
                    "too_many_requests",
                    f"deployment {route.name!r} is handling all the requests its replicas "
                    "take (max_concurrent_requests_per_instance) and has one waiting for each",
                )
            headers = [(DEPLOYMENT_HEADER, route.name.encode())]
            return await _respond(send, answer.status, answer.body, answer.content_type, headers)
        return await _problem(
            send,
            503,
            "no_ready_instance",
            f"deployment {route.name!r} has no instance ready to take the request; "
            "see `shipyard online-deployment show` and `get-logs`",
        )

    def _mirror(self, mirror: tuple[DeploymentRoute, int], body: bytes, kind: bytes) -> None:
        route, share = mirror
        sampled = random.random() * 100  # noqa: S311 - a traffic share, not a secret
        if len(self._mirrored) >= MAX_MIRRORED or sampled >= share:
            return
        ready = self._instances(route.id)
        if not ready:
            return
        task = asyncio.get_running_loop().create_task(self._copy(route, ready[0], body, kind))
        self._mirrored.add(task)
        task.add_done_callback(self._mirrored.discard)

    async def _copy(
        self, route: DeploymentRoute, address: Address, body: bytes, kind: bytes
    ) -> None:
        started = time.perf_counter()
        timeout = route.request_timeout_ms / 1000 + _TIMEOUT_SLACK_SECONDS
        try:
            host, port, path = address
            answer = await self.forwarder.post(host, port, body, kind, timeout, path)
            status = answer.status
        except (InstanceUnavailableError, InstanceAnswerError, OSError, TimeoutError):
            status = 502
        self.stats.record(route.id, status, time.perf_counter() - started)


def _match(scope: Scope) -> tuple[str, str] | None:
    """(workspace, endpoint) of a ``POST .../onlineEndpoints/{name}/score``."""
    if scope["method"] != "POST":
        return None
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    if root and path.startswith(root + "/"):
        path = path[len(root) :]
    if not path.startswith(_HEAD):
        return None
    parts = path[len(_HEAD) :].split("/")
    if len(parts) != 4 or parts[1] != _MIDDLE or parts[3] != _TAIL or not parts[0] or not parts[2]:
        return None
    return parts[0], parts[2]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _bearer(scope: Scope) -> str | None:
    value = _header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, credential = value.decode("latin-1").partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _unavailable(endpoint: str, routes: EndpointRoutes | None) -> str:
    if routes is None or not routes.deployments:
        return f"online endpoint {endpoint!r} has no deployment running"
    if not routes.traffic:
        return (
            f"online endpoint {endpoint!r} sends no traffic to any deployment: set its split "
            "(online-endpoint update --traffic) or name one in the azureml-model-deployment "
            "header"
        )
    names = ", ".join(route.name for route, _ in routes.traffic)
    return (
        f"no deployment of online endpoint {endpoint!r} taking traffic ({names}) has a "
        "ready instance"
    )


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes | None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> int:
    raw = [(b"content-length", str(len(body)).encode()), *(headers or [])]
    if content_type is not None:
        raw.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
    return status


async def _problem(
    send: Send,
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> int:
    """The API's problem body (``api.problems``), written straight to the client."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
        "field": field,
        "request_id": request_id_var.get(),
    }
    raw = json.dumps(body).encode()
    return await _respond(send, status, raw, PROBLEM_JSON.encode(), headers)
