"""One HTTP exchange as received — the unit of wire-level evidence — and what is derived from it.

:class:`Exchange` is the only exchange type: Scrapy responses (:meth:`Exchange.from_scrapy`), the API
responses a browser page receives and the documents the screenshotter loads
(:meth:`Exchange.from_playwright`) all become one before anything downstream sees them. Spiders put them on
items (``Listing.exchanges``, ``BlockedAttempt.exchange``); the evidence recorder
(:mod:`crawler.evidence.capture`) writes them as WARC request/response pairs.

``body`` is the entity body as received. When the body could only be read decoded (Playwright's
``response.body()`` removes content- and transfer-encoding) ``decoded`` is True, and the WARC writer renames
``Content-Encoding``/``Transfer-Encoding``/``Content-Length`` to ``X-Archive-Orig-*`` (pywb's convention) so
the stored headers describe the stored bytes truthfully.

Block pages are not evidence: :func:`detect_block` names a block, captcha or login wall from generic markers
(docs/contracts.md "Block markers"; the site profiles in ``spiders/`` decide first and more precisely).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crawler.evidence.warc import warc_digest

if TYPE_CHECKING:  # items stay importable without Scrapy (parsers, sandbox, CLI)
    from scrapy.http import Response

_DECODED_HEADERS = ("content-encoding", "transfer-encoding", "content-length")


@dataclass(frozen=True)
class Exchange:
    """One HTTP request and its response as received (see the module docstring for ``decoded``)."""

    url: str
    method: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    status: int
    reason: str
    response_headers: list[tuple[str, str]]
    body: bytes
    fetched_at: datetime
    protocol: str = "HTTP/1.1"
    decoded: bool = False
    egress: str = ""  # which proxy fetched it ("http://host:port", never credentials), "direct", or unknown

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.response_headers if k.lower() == lname), None)

    def header_map(self) -> dict[str, str]:
        """Response headers as one mapping (repeated names joined with commas), as parsers read them."""
        out: dict[str, str] = {}
        for key, value in self.response_headers:
            out[key] = f"{out[key]},{value}" if key in out else value
        return out

    # Derived once per exchange: a search response shared by many candidates is one Exchange object, so
    # its digest, block check and HTTP blocks are computed once, not per candidate.
    @cached_property
    def payload_digest(self) -> str:
        return warc_digest(self.body)

    @cached_property
    def block_reason(self) -> str | None:
        return detect_block(self)

    @cached_property
    def response_block(self) -> tuple[bytes, int]:
        return http_response_block(self)

    # -- constructors --------------------------------------------------------------------------------
    @classmethod
    def from_scrapy(cls, response: Response) -> Exchange:
        """A Scrapy response and the request that asked for it (at the time of this call); its egress is
        the one the proxy middleware named (``meta["tertib_egress"]``)."""
        request = response.request
        return cls(
            url=response.url,
            method=request.method if request is not None else "GET",
            request_headers=_without_credentials(_scrapy_pairs(request.headers))
            if request is not None
            else [],
            request_body=(request.body or b"") if request is not None else b"",
            status=response.status,
            reason="",
            response_headers=_scrapy_pairs(response.headers),
            body=response.body,
            fetched_at=datetime.now(UTC),
            protocol=str(getattr(response, "protocol", None) or "HTTP/1.1"),
            egress=str(response.meta.get("tertib_egress") or ""),
        )

    @classmethod
    async def from_playwright(
        cls, response: Any, *, fetched_at: datetime | None = None, egress: str = ""
    ) -> Exchange:
        """A response a browser page received (``playwright.async_api.Response``); ``egress``: the proxy the
        page's context goes out through.

        Chromium hands over decoded bodies (``decoded=True``); a redirect has no body to read.
        """
        request = response.request
        status = int(response.status)
        body = b"" if 300 <= status < 400 else await response.body()
        request_headers = await request.headers_array()
        response_headers = await response.headers_array()
        return cls(
            url=response.url,
            method=request.method,
            request_headers=_without_credentials([(h["name"], h["value"]) for h in request_headers]),
            request_body=request.post_data_buffer or b"",
            status=status,
            reason=response.status_text or "",
            response_headers=[(h["name"], h["value"]) for h in response_headers],
            body=body,
            fetched_at=fetched_at or datetime.now(UTC),
            decoded=True,
            egress=egress,
        )


def _without_credentials(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Never a proxy's credentials in the evidence (the proxy middleware puts them in the request)."""
    return [(k, v) for k, v in headers if k.lower() != "proxy-authorization"]


def _scrapy_pairs(headers: Any) -> list[tuple[str, str]]:
    return [
        (key.decode("latin-1"), value.decode("latin-1"))
        for key, values in headers.items()
        for value in values
    ]


# Generic block markers (docs/contracts.md "Block markers"); site profiles in spiders/ are more precise.
# Each marker has literals that must occur for its pattern to match (checked first with a plain substring
# search — case-folded for the re.I patterns — so a normal page costs no regex scan of its 200 KB head).
_BLOCK_TEXT: list[tuple[tuple[bytes, ...], bool, re.Pattern[bytes], str]] = [
    ((b"verify you are human",), True, re.compile(rb"verify you are human", re.I), "captcha"),
    ((b"access denied",), True, re.compile(rb"<title>\s*Access Denied", re.I), "akamai"),
    ((b"security check",), True, re.compile(rb"<title>\s*Security Check", re.I), "captcha"),
    (
        (b"captcha_container", b"g-recaptcha", b"h-captcha"),
        True,
        re.compile(rb"captcha_container|g-recaptcha|h-captcha", re.I),
        "captcha",
    ),
    ((b"slide to verify", b"x5secdata"), True, re.compile(rb"slide to verify|x5secdata", re.I), "slider"),
    ((b'"rgv587_flag"',), False, re.compile(rb'"rgv587_flag"'), "slider"),
    ((b"90309999",), False, re.compile(rb'"error"\s*:\s*90309999'), "signature"),
]
_BLOCK_PATHS = [
    (re.compile(r"/verify/(captcha|traffic)"), "captcha"),
    (re.compile(r"/buyer/login|/login/|/accounts/login"), "login_wall"),
]


def detect_block(exchange: Exchange) -> str | None:
    """A short reason when the exchange is a block/captcha/login page rather than content, else None."""
    if exchange.status == 429:
        return "rate_limited"
    if exchange.status >= 500:
        return f"http_{exchange.status}"
    if exchange.status in (401, 403, 407):
        return f"http_{exchange.status}"
    location = exchange.header("location") or ""
    path = urlsplit(exchange.url).path
    for pattern, reason in _BLOCK_PATHS:
        if pattern.search(path) or (300 <= exchange.status < 400 and pattern.search(location)):
            return reason
    head = exchange.body[:200_000]
    folded = head.lower()
    for literals, fold, text_pattern, reason in _BLOCK_TEXT:
        haystack = folded if fold else head
        if any(literal in haystack for literal in literals) and text_pattern.search(head):
            return reason
    return None


def _request_target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def http_request_block(ex: Exchange) -> tuple[bytes, int]:
    """The request as HTTP/1 bytes (the WARC ``request`` record's block) and where its payload starts."""
    headers = list(ex.request_headers)
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", urlsplit(ex.url).netloc))
    head = f"{ex.method.upper()} {_request_target(ex.url)} {ex.protocol}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers if not k.startswith(":")) + "\r\n"
    raw = head.encode("iso-8859-1", "replace")
    return raw + ex.request_body, len(raw)


def http_response_block(ex: Exchange) -> tuple[bytes, int]:
    """The response as HTTP/1 bytes (the WARC ``response`` record's block) and where its payload starts."""
    headers: list[tuple[str, str]] = []
    for name, value in ex.response_headers:
        if name.startswith(":"):
            continue  # HTTP/2 pseudo-headers are not HTTP/1 header lines
        if ex.decoded and name.lower() in _DECODED_HEADERS:
            name = f"X-Archive-Orig-{name}"
        headers.append((name, value.replace("\r", " ").replace("\n", " ")))
    if ex.decoded:
        headers.append(("Content-Length", str(len(ex.body))))
    protocol = ex.protocol if ex.protocol.upper().startswith("HTTP/") else "HTTP/1.1"
    head = f"{protocol} {ex.status} {ex.reason or ''}".rstrip() + "\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    raw = head.encode("iso-8859-1", "replace")
    return raw + ex.body, len(raw)


__all__ = ["Exchange", "detect_block", "http_request_block", "http_response_block"]
