"""Control endpoints of the sandbox (``/_sandbox/*``): clock, takedowns, truth, faults, request log.

These are for tests and the demo's scoring only; spiders must never request them (a downloader
middleware refuses them, and ``GET /_sandbox/requests`` lets a test check that no spider User-Agent did).

- ``GET /_sandbox/clock`` → ``{"day", "now"}``; ``POST /_sandbox/clock`` ``{"advance_days": n}`` moves it.
- ``POST /_sandbox/takedowns`` ``{"urls": [...]}`` → per URL ``{url, key, accepted, reason?}``; each platform
  then removes (or hides, or ignores) with its own rate and delay (``sandbox.state.TAKEDOWN_POLICY``).
- ``GET /_sandbox/truth`` (``?listings=0`` to omit the per-listing rows) → ground truth and states.
- ``GET|POST /_sandbox/blocklist`` ``{"platform": "tokopedia", "add": ["word"]}`` — words a platform starts
  refusing to search (Tokopedia answers ``isQuerySafe=false``), besides ``sandbox.state.BLOCKLISTS``.
- ``GET /_sandbox/faults`` / ``POST /_sandbox/faults`` ``{"profile": "none|realistic|hostile",
  "platforms": [...]?, "force": {"tokopedia": ["block_page", ...]}?}``.
- ``GET /_sandbox/latency`` / ``POST /_sandbox/latency`` ``{"seconds": 0.25}`` → every replica answer waits
  that long (a marketplace's response time; 0 by default).
- ``GET /_sandbox/requests`` → hit counts per path prefix and User-Agent.
- ``GET /_sandbox/health`` → ``{"ok": true, "size": n}``.

Requests here are counted (under the ``/_sandbox`` prefix) but never receive injected faults.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from crawler.errors import TertibError
from sandbox.platforms import json_response
from sandbox.state import FAULT_KINDS, FAULT_PROFILES, SandboxState


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise _BadRequest("body is not JSON") from None
    if not isinstance(data, dict):
        raise _BadRequest("body must be a JSON object")
    return data


class _BadRequest(Exception):
    pass


def routes(state: SandboxState) -> list[BaseRoute]:
    def endpoint(fn: Any) -> Any:
        async def run(request: Request) -> Response:
            state.record_request(request.url.path, request.headers.get("user-agent", ""))
            try:
                return await fn(request)
            except (_BadRequest, TertibError) as exc:
                return json_response({"error": str(exc)}, 400)

        return run

    @endpoint
    async def clock(request: Request) -> Response:
        if request.method == "POST":
            body = await _json(request)
            days = body.get("advance_days", 0)
            if not isinstance(days, int) or isinstance(days, bool) or days < 0:
                raise _BadRequest("advance_days must be a non-negative integer")
            with state.lock:
                state.clock.advance(days)
                state.clear_cache()
        return json_response({"day": state.clock.day, "now": state.clock.now().isoformat()})

    @endpoint
    async def takedowns(request: Request) -> Response:
        if request.method == "GET":
            return json_response({"takedowns": [t.to_dict() for t in state.takedowns()]})
        body = await _json(request)
        urls = body.get("urls")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise _BadRequest("urls must be a list of strings")
        results = state.takedown(urls)
        return json_response(
            {"day": state.clock.day, "accepted": sum(1 for r in results if r["accepted"]), "results": results}
        )

    @endpoint
    async def truth(request: Request) -> Response:
        include = request.query_params.get("listings", "1") not in ("0", "false", "no")
        return json_response(state.truth(include_listings=include))

    @endpoint
    async def faults(request: Request) -> Response:
        if request.method == "POST":
            body = await _json(request)
            profile = body.get("profile")
            platforms = body.get("platforms")
            if profile is not None:
                if platforms is not None and not isinstance(platforms, list):
                    raise _BadRequest("platforms must be a list")
                state.set_faults(str(profile), [str(p) for p in platforms] if platforms else None)
            force = body.get("force") or {}
            if not isinstance(force, dict):
                raise _BadRequest("force must map platform -> list of fault kinds")
            for platform, kinds in force.items():
                if not isinstance(kinds, list):
                    raise _BadRequest("force must map platform -> list of fault kinds")
                state.force_faults(str(platform), [str(k) for k in kinds])
        return json_response(
            {
                "profile": state.default_fault_profile,
                "platforms": dict(state.fault_profiles),
                "profiles": {k: v["rates"] for k, v in FAULT_PROFILES.items()},
                "kinds": list(FAULT_KINDS),
            }
        )

    @endpoint
    async def blocklist(request: Request) -> Response:
        if request.method == "POST":
            body = await _json(request)
            platform, words = body.get("platform"), body.get("add")
            if not isinstance(platform, str) or not isinstance(words, list):
                raise _BadRequest('expected {"platform": "tokopedia", "add": ["word", …]}')
            state.block_words(platform, [str(w) for w in words])
        return json_response({"extra": dict(state.extra_blocklist)})

    @endpoint
    async def latency(request: Request) -> Response:
        if request.method == "POST":
            seconds = (await _json(request)).get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise _BadRequest("seconds must be a number")
            state.set_latency(float(seconds))
        return json_response({"seconds": state.latency})

    @endpoint
    async def requests(request: Request) -> Response:
        return json_response(state.requests_report())

    @endpoint
    async def health(request: Request) -> Response:
        return json_response({"ok": True, "size": len(state.catalog), "day": state.clock.day})

    return [
        Route("/clock", clock, methods=["GET", "POST"]),
        Route("/takedowns", takedowns, methods=["GET", "POST"]),
        Route("/truth", truth, methods=["GET"]),
        Route("/faults", faults, methods=["GET", "POST"]),
        Route("/latency", latency, methods=["GET", "POST"]),
        Route("/blocklist", blocklist, methods=["GET", "POST"]),
        Route("/requests", requests, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
