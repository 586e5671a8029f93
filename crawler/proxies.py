"""Egress proxies: per-platform pools, rotation, cool-down and retirement, and the SOCKS5 bridge.

A patrol from a datacentre address is blocked by Indonesian marketplaces within minutes, and some show
nothing outside Indonesia: platform traffic goes out through configured proxies (often Indonesian
residential or mobile ones). No proxy configured → direct, as before.

Settings (``crawler/config.py``): ``TERTIB_PROXIES`` (every platform, comma-separated),
``TERTIB_PROXIES_<PLATFORM>`` (one platform; replaces the shared list for it), ``TERTIB_PROXIES_FILE`` (one
proxy per line: ``URL`` for every platform or ``PLATFORM URL``; ``#`` comments), the same keys in
``tertib.toml`` (``proxies = [...]``, ``[proxies_by_platform]``, ``proxies_file``), ``TERTIB_PROXY_ROTATION``
(``request``: the next healthy proxy for every request, or ``sticky``: one proxy per platform until it
fails), ``TERTIB_PROXY_COOLDOWN`` (seconds, doubled at each cool-down) and ``TERTIB_PROXY_MAX_FAILURES``
(failures in a row that cool a proxy down).

- URLs: ``http://``, ``https://`` and ``socks5://`` (``socks5h://``), with ``user:password@``. A malformed one
  is a :class:`~crawler.config.ConfigError` naming it with the password hidden.
- Health, per platform and proxy: an answer that is a block page (captcha, 403, 429 …, judged by the
  parsers) or a connection error is a failure; ``max_failures`` in a row cool the proxy down for
  ``cooldown`` seconds (doubling); a proxy that fails again after two cool-downs, or is unreachable at the
  start (:meth:`ProxyPool.preflight`), is **retired** for the run. Requests it failed are retried through
  another proxy (Scrapy's retry and the spider's polite block retries pick a proxy again), so no listing
  is lost while one proxy is left. The state of every proxy is in the run's stats (``proxies``), its
  health messages and ``tertib status``.
- Browser pages (Playwright) use one proxy per context, sticky: a logged-in browser profile keeps its
  egress address (a session that hops between addresses looks stolen); an anonymous context moves to a
  new context on the next proxy when its proxy is retired. Playwright's per-context proxy also carries
  loopback traffic (checked against the sandbox: no ``--proxy-bypass-list`` needed).
- SOCKS5: neither Scrapy nor Chromium speaks SOCKS5 with a password, so each SOCKS5 proxy is reached
  through a local HTTP bridge on 127.0.0.1 (:class:`SocksBridge`, the ``pproxy`` library in a thread).
- Evidence names the egress: ``meta["tertib_egress"]`` (the proxy URL without credentials, or ``direct``)
  becomes the ``Tertib-Egress`` header of the WARC records and ``egress`` in the metadata record; the
  ``Proxy-Authorization`` header is never recorded.

To add a proxy kind: extend :data:`SCHEMES`, and give :meth:`ProxySpec.endpoint` a way to reach it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from crawler.config import ConfigError, Settings
from crawler.errors import TertibError

log = logging.getLogger(__name__)

SCHEMES = ("http", "https", "socks5", "socks5h")
ROTATIONS = ("request", "sticky")
RETIRE_AFTER_COOLDOWNS = 2  # a proxy that fails again after this many cool-downs is retired
OK, BLOCK, ERROR = "ok", "block", "error"


class ProxyError(TertibError):
    """The configured proxies cannot carry the crawl (none reachable for a platform)."""


# --------------------------------------------------------------------------------------------------
# Proxy URLs
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProxySpec:
    scheme: str
    host: str
    port: int
    username: str = ""
    password: str = ""

    @property
    def label(self) -> str:
        """The proxy as shown and recorded: never its credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def is_socks(self) -> bool:
        return self.scheme.startswith("socks")

    def url(self) -> str:
        """The URL with credentials (for Scrapy's ``meta["proxy"]``; never logged)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@" if self.username else ""
        return f"{self.scheme}://{auth}{host}:{self.port}"


def redact(text: str) -> str:
    """A proxy URL as it may be printed: ``http://user:***@host:port``."""
    try:
        parts = urlsplit(text.strip())
        if parts.password:
            return text.replace(f":{parts.password}@", ":***@", 1)
    except ValueError:
        pass
    return text.strip()


def parse_proxy(text: str, where: str = "") -> ProxySpec:
    """``http://user:pass@host:3128`` → :class:`ProxySpec`; anything else is a one-line ConfigError."""
    origin = f" (from {where})" if where else ""
    shown = redact(text)

    def bad(reason: str) -> ConfigError:
        return ConfigError(f"malformed proxy URL {shown!r}{origin}: {reason}")

    raw = text.strip()
    if "://" not in raw:
        raise bad(f"no scheme; write it as {SCHEMES[0]}://host:port (or {', '.join(SCHEMES[1:])})")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise bad(str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise bad(f"unsupported scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if not parts.hostname:
        raise bad("no host")
    if port is None:
        raise bad("no port (proxies have no default port here: write host:port)")
    if not 0 < port < 65536:
        raise bad(f"port {port} is out of range")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise bad("a proxy URL has no path, query or fragment")
    if parts.username is not None and parts.password is None:
        raise bad("a user name without a password")
    return ProxySpec(
        scheme=scheme,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def read_proxies_file(path: Path, platforms: Iterable[str]) -> tuple[list[str], dict[str, list[str]]]:
    """``URL`` lines (every platform) and ``PLATFORM URL`` lines (that platform, one of ``platforms``: the
    registry's); ``#`` comments."""
    known = tuple(platforms)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read proxies file {path}: {exc.strerror or exc}") from None
    shared: list[str] = []
    by_platform: dict[str, list[str]] = {}
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not text:
            continue
        words = text.split()
        if len(words) == 1:
            shared.append(words[0])
        elif len(words) == 2 and words[0].lower() in known:
            by_platform.setdefault(words[0].lower(), []).append(words[1])
        else:
            raise ConfigError(
                f"{path} line {number}: expected 'URL' or 'PLATFORM URL' (platforms: {', '.join(known)})"
            )
    return shared, by_platform


# --------------------------------------------------------------------------------------------------
# The SOCKS5 bridge
# --------------------------------------------------------------------------------------------------
class SocksBridge:
    """A local HTTP proxy on 127.0.0.1 that forwards through one SOCKS5 proxy (with its password).

    Scrapy speaks only HTTP proxies and Chromium no SOCKS5 authentication, so both talk to this bridge;
    the credentials stay in this process (no command line shows them). ``pproxy`` runs in a daemon thread
    with its own event loop, so it keeps serving whatever the crawl's reactor is doing.
    """

    def __init__(self, spec: ProxySpec) -> None:
        self.spec = spec
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> int:
        import pproxy

        ready = threading.Event()
        errors: list[BaseException] = []
        remote = f"socks5://{self.spec.host}:{self.spec.port}"
        if self.spec.username:
            remote += f"#{self.spec.username}:{self.spec.password}"

        async def serve() -> None:
            server = pproxy.Server("http://127.0.0.1:0")
            self._server = await server.start_server({"rserver": [pproxy.Connection(remote)]})
            self.port = int(self._server.sockets[0].getsockname()[1])
            ready.set()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(serve())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"socks-bridge-{self.spec.port}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or errors:
            raise ProxyError(
                f"cannot start the local bridge to {self.spec.label}: {errors[0] if errors else 'timeout'}"
            )
        return self.port

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None:
            return
        if server is not None:
            loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop = None


# --------------------------------------------------------------------------------------------------
# The pool
# --------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class ProxyState:
    """One proxy as one platform sees it."""

    spec: ProxySpec
    number: int
    requests: int = 0
    ok: int = 0
    blocks: int = 0
    errors: int = 0
    in_a_row: int = 0
    cooldowns: int = 0
    cooling_until: float = 0.0
    retired: bool = False
    reason: str = ""
    last_failure: str = ""

    @property
    def label(self) -> str:
        return self.spec.label

    def state(self, now: float) -> str:
        if self.retired:
            return "retired"
        return "cooling" if self.cooling_until > now else "active"


@dataclass(slots=True)
class Choice:
    """What the middleware (or a browser) gets for one request: where to send it and how to name it."""

    platform: str
    state: ProxyState
    endpoint: str  # the URL Scrapy uses (credentials, or the local SOCKS bridge)
    playwright: dict[str, str]  # Playwright's proxy option for a browser context

    @property
    def label(self) -> str:
        return self.state.label


@dataclass
class ProxyPool:
    """Per-platform proxy pools with rotation, cool-down and retirement (thread-safe)."""

    pools: dict[str, list[ProxyState]]
    rotation: str = "request"
    cooldown: float = 60.0
    max_failures: int = 3
    clock: Callable[[], float] = time.monotonic
    _cursor: dict[str, Iterable[int]] = field(default_factory=dict)
    _sticky: dict[tuple[str, str], ProxyState] = field(default_factory=dict)
    _bridges: dict[ProxySpec, SocksBridge] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __deepcopy__(self, memo: dict[int, Any]) -> ProxyPool:
        # Scrapy copies its settings; the run's one pool (its locks, its bridges, what it has learnt)
        # must stay shared by the middleware, the spider, the screenshots and the health check
        return self

    # -- building ----------------------------------------------------------------------------------
    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        platforms: Iterable[str] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> ProxyPool:
        """The pools for ``platforms`` (default: every registered platform) from every source (see the
        module docstring); validated."""
        known = settings.registry.names
        platforms = known if platforms is None else platforms
        if settings.proxy_rotation not in ROTATIONS:
            raise ConfigError(
                f"proxy rotation must be one of {', '.join(ROTATIONS)}, not {settings.proxy_rotation!r}"
            )
        if settings.proxy_cooldown < 0 or settings.proxy_max_failures < 1:
            raise ConfigError("proxy cooldown must be >= 0 seconds and max failures >= 1")
        shared = [(url, "TERTIB_PROXIES") for url in settings.proxies]
        by_platform: dict[str, list[tuple[str, str]]] = {
            p: [(url, f"TERTIB_PROXIES_{p.upper()}") for url in urls]
            for p, urls in settings.proxies_by_platform.items()
        }
        unknown = sorted(set(by_platform) - set(known))
        if unknown:
            raise ConfigError(
                f"proxies for unknown platform(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        if settings.proxies_file:
            path = Path(settings.proxies_file).expanduser()
            file_shared, file_by = read_proxies_file(path, known)
            shared += [(url, str(path)) for url in file_shared]
            for p, urls in file_by.items():
                by_platform.setdefault(p, []).extend((url, str(path)) for url in urls)
        specs: dict[str, ProxySpec] = {}
        pools: dict[str, list[ProxyState]] = {}
        for platform in platforms:
            entries = by_platform.get(platform) or shared
            states: list[ProxyState] = []
            for url, where in entries:
                spec = specs.setdefault(url, parse_proxy(url, where))
                if all(s.spec != spec for s in states):
                    states.append(ProxyState(spec, number=len(states) + 1))
            if states:
                pools[platform] = states
        return cls(
            pools=pools,
            rotation=settings.proxy_rotation,
            cooldown=settings.proxy_cooldown,
            max_failures=settings.proxy_max_failures,
            clock=clock or time.monotonic,
        )

    @classmethod
    def for_run(cls, settings: Settings, platforms: Iterable[str]) -> ProxyPool:
        """The pools of a crawl, checked with :meth:`preflight` before it starts when any is configured."""
        pool = cls.from_settings(settings, list(platforms))
        if pool.configured:
            pool.preflight()
        return pool

    @property
    def configured(self) -> bool:
        return bool(self.pools)

    def enabled(self, platform: str) -> bool:
        return platform in self.pools

    def proxies(self) -> list[ProxySpec]:
        seen: dict[ProxySpec, None] = {}
        for states in self.pools.values():
            for s in states:
                seen.setdefault(s.spec)
        return list(seen)

    # -- start and stop ----------------------------------------------------------------------------
    def preflight(self, timeout: float = 5.0) -> list[str]:
        """Connect to every proxy once: an unreachable one is retired; a platform left with none is an
        error (one line, before anything is crawled). Starts the SOCKS5 bridges. Returns the problems."""
        problems: list[str] = []
        for spec in self.proxies():
            reason = _unreachable(spec, timeout)
            if reason:
                problems.append(f"proxy {spec.label} is unreachable ({reason})")
                for states in self.pools.values():
                    for state in states:
                        if state.spec == spec:
                            # quietly: the run's health lists it, and a platform left without any is
                            # the one error line below
                            self._retire(state, f"unreachable at the start ({reason})", quiet=True)
            elif spec.is_socks and spec not in self._bridges:
                bridge = SocksBridge(spec)
                bridge.start()
                self._bridges[spec] = bridge
        dead = [p for p, states in self.pools.items() if all(s.retired for s in states)]
        if dead:
            detail = "; ".join(problems) or "every proxy retired"
            raise ProxyError(f"no reachable proxy for {', '.join(dead)}: {detail}")
        return problems

    def close(self) -> None:
        for bridge in self._bridges.values():
            bridge.stop()
        self._bridges.clear()

    # -- choosing ----------------------------------------------------------------------------------
    def choose(
        self, platform: str, *, sticky: str | None = None, keep: bool = False, avoid: str = ""
    ) -> Choice | None:
        """A proxy for the next request of ``platform`` (None: no proxy configured → direct).

        ``avoid``: a proxy that just failed this request (its retry leaves through another one when there
        is another). ``sticky``: a key (a browser context) that keeps its proxy while it is usable; ``keep``:
        keep it even when it is retired (a logged-in profile must not change address) — the caller's
        requests then fail and are recorded, and health says why. Raises :class:`ProxyError` when every
        proxy of the platform is retired.
        """
        states = self.pools.get(platform)
        if not states:
            return None
        with self._lock:
            now = self.clock()
            key = (platform, sticky) if sticky is not None else None
            if key is None and self.rotation == "sticky":
                key = (platform, "")
            if key is not None:
                held = self._sticky.get(key)
                if held is not None and (keep or (not held.retired and held.cooling_until <= now)):
                    return self._choice(platform, held)
            usable = [s for s in states if not s.retired]
            if not usable:
                raise ProxyError(f"every proxy for {platform} is retired")
            ready = [s for s in usable if s.cooling_until <= now]
            if avoid and len(ready) > 1:
                ready = [s for s in ready if s.label != avoid] or ready
            if ready:
                cursor = self._cursor.setdefault(platform, itertools.count())
                chosen = ready[next(cursor) % len(ready)]  # type: ignore[call-overload]
            else:  # all resting: the one back soonest
                chosen = min(usable, key=lambda s: s.cooling_until)
            if key is not None:
                self._sticky[key] = chosen
            chosen.requests += 1
            return self._choice(platform, chosen)

    def _choice(self, platform: str, state: ProxyState) -> Choice:
        spec = state.spec
        bridge = self._bridges.get(spec)
        if bridge is not None:
            endpoint = f"http://127.0.0.1:{bridge.port}"
            playwright = {"server": endpoint}
        else:
            endpoint = spec.url()
            playwright = {"server": f"{spec.scheme}://{spec.host}:{spec.port}"}
            if spec.username:
                playwright.update(username=spec.username, password=spec.password)
        return Choice(platform, state, endpoint, playwright)

    # -- feedback ----------------------------------------------------------------------------------
    def report(self, platform: str, label: str, outcome: str, detail: str = "") -> None:
        """An answer through ``label`` for ``platform`` was content (``ok``), a block page (``block``) or
        a connection error (``error``)."""
        with self._lock:
            state = next((s for s in self.pools.get(platform, []) if s.label == label), None)
            if state is None or state.retired:
                return
            if outcome == OK:
                state.ok += 1
                state.in_a_row = 0
                state.cooldowns = 0
                return
            if outcome == BLOCK:
                state.blocks += 1
            else:
                state.errors += 1
            state.in_a_row += 1
            state.last_failure = detail or outcome
            if state.in_a_row < self.max_failures:
                return
            what = "block pages" if outcome == BLOCK else "connection errors"
            if state.cooldowns >= RETIRE_AFTER_COOLDOWNS:
                why = f"{state.in_a_row} {what} in a row after {state.cooldowns} cool-downs"
                self._retire(state, f"{why} ({state.last_failure})")
                return
            state.cooldowns += 1
            pause = self.cooldown * (2 ** (state.cooldowns - 1))
            state.cooling_until = self.clock() + pause
            state.in_a_row = 0
            log.warning(
                "proxy %s cooled down for %s (%g s): %s", state.label, platform, pause, state.last_failure
            )

    def _retire(self, state: ProxyState, reason: str, *, quiet: bool = False) -> None:
        state.retired = True
        state.reason = reason
        log.log(logging.INFO if quiet else logging.WARNING, "proxy %s retired: %s", state.label, reason)

    # -- reporting ---------------------------------------------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        """Every (platform, proxy) with its state and counters — for the run's stats and ``tertib status``."""
        now = self.clock()
        with self._lock:
            return [
                {
                    "platform": platform,
                    "proxy": s.label,
                    "state": s.state(now),
                    "requests": s.requests,
                    "ok": s.ok,
                    "blocks": s.blocks,
                    "errors": s.errors,
                    "cooldowns": s.cooldowns,
                    "reason": s.reason or (s.last_failure if s.state(now) == "cooling" else ""),
                }
                for platform, states in sorted(self.pools.items())
                for s in states
            ]

    def health_messages(self) -> list[str]:
        """Needs-attention lines: retired proxies, and platforms whose every proxy is retired."""
        messages = []
        for platform, states in sorted(self.pools.items()):
            for s in states:
                if s.retired:
                    messages.append(f"{platform}: proxy {s.label} retired — {s.reason}")
            if states and all(s.retired for s in states):
                messages.append(f"{platform}: every proxy retired; its requests could not go out")
        return messages


def _unreachable(spec: ProxySpec, timeout: float) -> str:
    """Why a TCP connection to the proxy fails, or "" when it connects."""
    try:
        with socket.create_connection((spec.host, spec.port), timeout=timeout):
            return ""
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def platform_of(meta: Mapping[str, Any]) -> str | None:
    platform = meta.get("platform")
    return str(platform) if platform else None
