"""Security headers on every response and a structured HTTP access log line per request.

Pure ASGI (no ``BaseHTTPMiddleware``: it costs a task and a queue per request). The access log is one JSON
object per line on the ``tertib.console.access`` logger — time, client address (proxy-aware, see
:func:`console.limiter.client_address`), user, method, path, status, bytes, duration, user agent;
``tertib serve`` writes it to ``<data dir>/logs/console-access.jsonl`` (``--access-log``). Query strings are
left out (they carry search words and positions, not who did what), so are cookies and headers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.limiter import Network, client_address

access_log = logging.getLogger("tertib.console.access")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
_ENCODED = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]
_NO_STORE = (b"cache-control", b"no-store")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def scope_client(scope: Scope, trusted: Sequence[Network]) -> str:
    """The client address for a request scope (the trusted-proxy rules of :func:`client_address`)."""
    peer = scope.get("client")
    host = str(peer[0]) if peer else "?"
    return client_address(host, _header(scope, b"x-forwarded-for"), trusted)


class ConsoleMiddleware:
    """Adds :data:`SECURITY_HEADERS` (and ``Cache-Control: no-store`` outside ``/static``), records the
    client address in ``scope["tertib_client"]`` and writes the access log line."""

    def __init__(self, app: ASGIApp, trusted: Callable[[], Sequence[Network]]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        client = scope_client(scope, self.trusted())
        scope["tertib_client"] = client
        path: str = scope.get("path", "")
        static = path.startswith("/static/")
        state: dict[str, Any] = {"status": 500, "bytes": 0}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = list(message.get("headers") or [])
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in _ENCODED if k not in present)
                if not static and b"cache-control" not in present:
                    headers.append(_NO_STORE)
                message["headers"] = headers
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body") or b"")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                user = scope.get("tertib_user")
                access_log.info(
                    json.dumps(
                        {
                            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                            "client": client,
                            "user": getattr(user, "name", None),
                            "method": scope.get("method"),
                            "path": path,
                            "status": state["status"],
                            "bytes": state["bytes"],
                            "ms": round((time.perf_counter() - started) * 1000, 1),
                            "agent": (_header(scope, b"user-agent") or "")[:200],
                        },
                        ensure_ascii=False,
                    )
                )
