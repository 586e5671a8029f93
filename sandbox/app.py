"""The sandbox ASGI app: every replica host under ``/{host-key}``, control endpoints under ``/_sandbox``.

``create_app(state)`` mounts every replica of the state's registry (``state.replicas``, see
:mod:`sandbox.replicas`): each spec's ``mounts`` (host key → routes factory) under ``/{host key}``.
``GET /`` lists the mounted hosts.
Replica requests are answered after ``state.latency`` seconds (:class:`Latency`; 0 by default).
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox import control
from sandbox.platforms import json_response
from sandbox.state import SandboxState


def create_app(state: SandboxState) -> Starlette:
    mounts: list[BaseRoute] = [Mount("/_sandbox", routes=control.routes(state))]
    hosts: list[str] = []
    for spec in state.replicas:
        for host_key, factory in spec.mounts.items():
            mounts.append(Mount(f"/{host_key}", routes=factory(state)))
            hosts.append(host_key)

    async def index(request: Request) -> Response:
        return json_response({"sandbox": True, "hosts": sorted(hosts), "control": "/_sandbox"})

    app = Starlette(
        routes=[Route("/", index), *mounts],
        middleware=[Middleware(Arrivals, state=state), Middleware(Latency, state=state)],
    )
    app.state.sandbox = state
    app.state.hosts = sorted(hosts)
    return app


class Arrivals:
    """Pure ASGI middleware: counts every request by host prefix and its ``Via`` header (a proxy's mark;
    "" when it came directly) — ``GET /_sandbox/requests`` → ``by_prefix_and_via``."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            via = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"via"), "")
            self.state.record_arrival(scope["path"], via)
        await self.app(scope, receive, send)


class Latency:
    """Pure ASGI middleware: replica requests wait ``state.latency`` seconds (a non-blocking sleep, so
    concurrent requests overlap as they would against a real site); control endpoints never wait."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        delay = self.state.latency
        if delay > 0 and scope["type"] == "http" and not scope["path"].startswith("/_sandbox"):
            await asyncio.sleep(delay)
        await self.app(scope, receive, send)
