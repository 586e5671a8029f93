"""Shared machinery for the per-platform site profiles in ``spiders/<platform>.py``.

Nothing here knows a platform. It gives every platform module the same tools:

- :func:`load_json` — read a response body that is bytes, text or an already-parsed object; strips
  anti-JSON-hijacking prefixes (``for (;;);``, ``while(1);``, ``)]}'``) and JavaScript assignments
  (``window.__X__ = {...};``). Malformed input raises :class:`BodyError`, which parsers turn into a
  ``malformed`` block (UNOBSERVABLE), never into "no listings".
- :func:`unwrap_data` — the ``{"data": <body>}`` wrapper of the Blibli captures.
- :func:`extract_balanced` / :func:`extract_js_assignment` — brace-balanced extraction of objects such as
  ``var __moduleData__ = {...};`` from HTML (regexes cannot match nested braces).
- :func:`script_json` and :func:`json_ld` — JSON embedded in ``<script>`` tags.
- :class:`PathReader` — dotted-path getters that remember which *required* paths did not match, so a
  redesign shows up as ``SearchPage.shape_ok = False`` ("needs attention" in the sweep report).
- :func:`parse_price` / :func:`shopee_price` — whole rupiah from "Rp 1.250.000", "Rp5 jt", "12,5rb",
  numbers, and Shopee's IDR × 100000 integers.
- :func:`find_marker` / :func:`http_block` — block detection shared by every platform.
- :class:`SiteProfile` — the complete description of one platform (names, operator, hosts, page sizes,
  politeness, request builders and parse functions) that the rest of tertib reads through the registry
  (:mod:`crawler.registry`).

No Scrapy imports here: parsers are pure functions over bodies, so the sandbox, the CLI and the tests can
use them without a crawler. Settings that drive the profiles: only ``Settings.base_url(key)`` (every host
is built from it, which is how ``--sandbox`` redirects all traffic to loopback).

To add a platform: write ``spiders/<name>.py`` with ``parse_search``/``parse_detail`` and a module-level
``PROFILE = SiteProfile(...)``, add the module to ``crawler.registry.DEFAULT_PLATFORM_MODULES`` (or to
``TERTIB_PLATFORM_MODULES``), write its sandbox replica ``sandbox/platforms/<name>.py`` (one ``SPEC``) and
``tests/test_parsers_<name>.py`` with real or hand-made fixtures that fail when a path stops matching.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from crawler.items import Block, CheckResult, Listing, SearchPage, Verdict
from crawler.limits import JSON_MAX_DEPTH

if TYPE_CHECKING:  # crawler.config loads the registry, which loads this module: no import at run time
    from crawler.config import Settings

Body = bytes | str | dict[str, Any] | list[Any]

# Prefixes servers put in front of JSON so that a <script src> cannot read it.
_JSON_PREFIXES = ("for (;;);", "for(;;);", "while(1);", "while (1);", ")]}',", ")]}'")
_ASSIGNMENT = re.compile(r"^\s*(?:var|let|const|window\.)?\s*[\w$.\[\]\"']+\s*=\s*", re.S)


class BodyError(ValueError):
    """The body is not the JSON (or embedded JSON) we expected: a malformed response."""


class RequestSpec(NamedTuple):
    """What a spider needs to issue one request; unpacks as ``url, method, headers, body``."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = {}
    body: str | None = None


# --------------------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------------------
def body_text(body: Body) -> str:
    """The body as text (UTF-8, undecodable bytes replaced); parsed objects are re-serialised."""
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace").lstrip("\ufeff")
    if isinstance(body, str):
        return body.lstrip("\ufeff")
    return json.dumps(body, ensure_ascii=False)


def looks_like_html(text: str) -> bool:
    head = text.lstrip()[:512].lower()
    return head.startswith("<") and (
        "<html" in head or "<!doctype" in head or "<head" in head or "<body" in head
    )


def load_json(body: Body) -> Any:
    """Parse a JSON body, tolerating prefixes and ``name = {...};`` JavaScript assignments."""
    if isinstance(body, dict | list):
        return body
    text = body_text(body).strip()
    if not text:
        raise BodyError("empty body")
    for prefix in _JSON_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :].lstrip()
            break
    if text[0] not in "[{":
        match = _ASSIGNMENT.match(text)
        if not match or match.end() >= len(text) or text[match.end()] not in "[{":
            raise BodyError(f"not JSON (starts with {text[:40]!r})")
        try:
            text = extract_balanced(text, match.end())
        except BodyError:
            raise BodyError("unterminated JavaScript object") from None
    return parse_json_text(text)


def parse_json_text(text: str, what: str = "") -> Any:
    """``json.loads`` with a depth limit (:data:`crawler.limits.JSON_MAX_DEPTH`); errors are BodyError."""
    label = f"{what}: " if what else ""
    if json_depth(text) > JSON_MAX_DEPTH:
        raise BodyError(f"{label}JSON nested deeper than {JSON_MAX_DEPTH} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyError(f"{label}invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # a depth the count above missed (it cannot, but never a traceback)
        raise BodyError(f"{label}JSON nested too deeply") from None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(r"[\[\]{}]")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deep the brackets of a JSON text nest, strings skipped (linear; Python's parser would hit
    its recursion limit on a seller's 100,000-deep nesting)."""
    if text.count("[") + text.count("{") <= JSON_MAX_DEPTH:
        return 0  # too few brackets to be too deep
    steps = map(_BRACKET_STEP.__getitem__, _BRACKETS.findall(_JSON_STRING.sub("", text)))
    return max(accumulate(steps), default=0)


def unwrap_data(obj: Any, *, inner_keys: Iterable[str] = ("code", "status")) -> Any:
    """``{"data": {"code":…, "status":…, "data":…}}`` → the inner body (the Blibli capture wrapper)."""
    if isinstance(obj, dict) and set(obj) == {"data"} and isinstance(obj["data"], dict):
        inner = obj["data"]
        if any(k in inner for k in inner_keys):
            return inner
    return obj


def extract_balanced(text: str, start: int) -> str:
    """The ``{...}`` or ``[...]`` starting at ``text[start]``, counting brackets outside strings."""
    opener = text[start]
    if opener not in "{[":
        raise BodyError(f"expected {{ or [ at offset {start}")
    depth = 0
    in_string: str | None = None
    escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == in_string:
                in_string = None
            continue
        if ch in "\"'":
            in_string = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    raise BodyError("unbalanced brackets")


def extract_js_assignment(text: str, name: str) -> Any | None:
    """The JSON value assigned to ``name`` (``var name = {...};``, ``window.name = {...}``), or None.

    Returns None when the assignment is absent; raises :class:`BodyError` when it is present but broken.
    """
    match = re.search(r"(?:\bvar\s+|\blet\s+|\bconst\s+|\bwindow\.)?" + re.escape(name) + r"\s*=\s*", text)
    while match:
        pos = match.end()
        if pos < len(text) and text[pos] in "{[":
            return parse_json_text(extract_balanced(text, pos), name)
        match = re.compile(re.escape(name) + r"\s*=\s*").search(text, pos)
    return None


_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
_ATTR = re.compile(r"""([\w:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")


def _attrs(raw: str) -> dict[str, str]:
    return {m.group(1).lower(): (m.group(2) or m.group(3) or m.group(4) or "") for m in _ATTR.finditer(raw)}


def scripts(html: str, **wanted: str | None) -> list[str]:
    """Contents of ``<script>`` tags whose attributes match ``wanted`` (value None = attribute present).

    Attribute names use ``_`` for ``-`` (``data_sjs=None`` matches ``<script data-sjs>``).
    """
    found = []
    for match in _SCRIPT.finditer(html):
        attrs = _attrs(match.group(1))
        ok = True
        for key, value in wanted.items():
            name = key.replace("_", "-")
            if name not in attrs or (value is not None and attrs[name].lower() != value.lower()):
                ok = False
                break
        if ok:
            found.append(match.group(2))
    return found


def script_json(html: str, **wanted: str | None) -> list[Any]:
    """Parsed JSON of every matching ``<script>``; a matching script with broken JSON raises BodyError."""
    return [
        load_json(html_lib.unescape(s) if s.lstrip().startswith("&") else s) for s in scripts(html, **wanted)
    ]


def json_ld(html: str, type_name: str | None = None) -> list[dict[str, Any]]:
    """schema.org objects from ``application/ld+json`` scripts (``@graph`` flattened); broken ones skipped."""
    out: list[dict[str, Any]] = []
    for raw in scripts(html, type="application/ld+json"):
        try:
            data = load_json(raw)
        except BodyError:
            continue
        stack = data if isinstance(data, list) else [data]
        for obj in stack:
            if not isinstance(obj, dict):
                continue
            if isinstance(obj.get("@graph"), list):
                stack.extend(o for o in obj["@graph"] if isinstance(o, dict))
                continue
            kind = obj.get("@type")
            kinds = kind if isinstance(kind, list) else [kind]
            if type_name is None or type_name in kinds:
                out.append(obj)
    return out


_META = re.compile(r"<meta\b([^>]*)>", re.I)


def meta_tags(html: str) -> dict[str, str]:
    """``og:*``/``twitter:*``/named meta tags → content (first occurrence wins)."""
    out: dict[str, str] = {}
    for match in _META.finditer(html):
        attrs = _attrs(match.group(1))
        key = attrs.get("property") or attrs.get("name")
        if key and "content" in attrs and key not in out:
            out[key] = html_lib.unescape(attrs["content"])
    return out


def html_title(html: str) -> str:
    match = re.search(r"<title[^>]*>(.*?)</title>", html, re.S | re.I)
    return html_lib.unescape(match.group(1)).strip() if match else ""


_TAG = re.compile(r"<[^>]+>")


def html_to_text(fragment: str) -> str:
    """Visible text of an HTML fragment (descriptions), one line per block element."""
    if "<" not in fragment:
        return fragment.strip()
    fragment = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", "", fragment)
    fragment = re.sub(r"(?i)<br\s*/?>|</(p|li|div|h\d|tr)>", "\n", fragment)
    text = html_lib.unescape(_TAG.sub("", fragment)).replace("\xa0", " ")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def find_deep(obj: Any, key: str, *, limit: int = 10_000) -> list[Any]:
    """Every value stored under ``key`` anywhere in a nested JSON object (breadth-first)."""
    out: list[Any] = []
    queue = deque([obj])  # popleft is O(1): a list's pop(0) made a huge array quadratic
    seen = 0
    while queue and seen < limit:
        current = queue.popleft()
        seen += 1
        if isinstance(current, dict):
            if key in current:
                out.append(current[key])
            queue.extend(current.values())
        elif isinstance(current, list):
            queue.extend(current)
    return out


# --------------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------------
_MISSING = object()


def get_path(obj: Any, path: str, default: Any = None) -> Any:
    """``get_path(d, "data.products.0.name")``: dict keys and list indexes; ``default`` when absent."""
    current = obj
    if not path:
        return current
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part, _MISSING)
        elif isinstance(current, list) and (part.isdigit() or (part.startswith("-") and part[1:].isdigit())):
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else _MISSING
        else:
            current = _MISSING
        if current is _MISSING:
            return default
    return current


@dataclass
class PathReader:
    """Reads dotted paths and records required paths that did not match (→ ``shape_ok``)."""

    missing: list[str] = field(default_factory=list)

    def require(self, obj: Any, path: str, kind: type | tuple[type, ...] | None = None) -> Any:
        value = get_path(obj, path, _MISSING)
        if value is _MISSING or (kind is not None and not isinstance(value, kind)):
            self.missing.append(path)
            return None
        return value

    @property
    def ok(self) -> bool:
        return not self.missing


def missing_item_paths(items: Iterable[Any], paths: Iterable[str], prefix: str) -> list[str]:
    """The paths (``"shop.shopId|shop.id"``: alternatives) that *no* item of a non-empty list carries.

    A redesign often keeps the list and renames what is inside it (Tokopedia's web query says
    ``shop.shopId`` where the app says ``shop.id``): every item then loses its seller id or its id, and a
    parser reading the old name silently drops data. Reported as ``{prefix}[].{path}`` so sweep health
    and ``tertib calibrate`` name what changed. One item carrying a value is enough: fields that are
    empty on some items (an ad id, a seller hidden on one listing) are not a shape change.
    """
    rows = [item for item in items if isinstance(item, dict)]
    if not rows:
        return []
    missing = []
    for spec in paths:
        alternatives = spec.split("|")
        if not any(get_path(row, alt) not in (None, "", [], {}) for row in rows for alt in alternatives):
            missing.append(f"{prefix}[].{spec}")
    return missing


def text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def id_text(value: Any) -> str | None:
    """An id as text: ints stay exact, floats like ``123.0`` lose the ``.0``, empty/zero → None."""
    if value is None or value is False:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return None if text in ("", "0") else text


# --------------------------------------------------------------------------------------------------
# Where an item ships from
# --------------------------------------------------------------------------------------------------
# Location values platforms put in their own location fields (not seller text) for sellers outside
# Indonesia: Shopee's "Luar Negeri", Lazada's "Overseas" and country names of cross-border shops. Matched
# whole (case- and space-insensitive): a city such as "Kota Jakarta Barat" never matches.
ABROAD_LOCATIONS = frozenset(
    {
        "luar negeri", "overseas", "cross border", "crossborder", "cross-border", "international",
        "mainland china", "china", "tiongkok", "hong kong", "hong kong sar china", "taiwan", "korea",
        "south korea", "korea selatan", "japan", "jepang", "malaysia", "singapore", "singapura",
        "thailand", "vietnam", "philippines", "filipina", "united states", "usa",
    }
)  # fmt: skip


def abroad_location(value: Any) -> bool:
    """True when a platform location field names a place outside Indonesia ("Luar Negeri", "Overseas")."""
    if not isinstance(value, str):
        return False
    return " ".join(value.replace("_", " ").lower().split()) in ABROAD_LOCATIONS


def set_origin(listing: Listing, abroad: bool | None, facts: Iterable[str]) -> Listing:
    """Record where the platform says ``listing`` ships from, with the platform's words as facts."""
    listing.ships_from_abroad = abroad
    listing.origin_facts = [f for f in facts if f]
    return listing


def origin_fact(platform: str, field_name: str, value: Any) -> str:
    """``shopee shop_location="Luar Negeri"``: a fact quoted as evidence (value shortened, quotes kept)."""
    if isinstance(value, str):
        return f'{platform} {field_name}="{value[:80]}"'
    return f"{platform} {field_name}={json.dumps(value, ensure_ascii=False)[:80]}"


# --------------------------------------------------------------------------------------------------
# Prices
# --------------------------------------------------------------------------------------------------
_PRICE = re.compile(
    r"(?P<num>\d+(?:[.,]\d+)*)\s*(?P<unit>juta|jt|ribu|rb|k)?\b",
    re.I,
)
_MULTIPLIER = {"juta": 1_000_000, "jt": 1_000_000, "ribu": 1_000, "rb": 1_000, "k": 1_000}


def parse_price(value: Any) -> int | None:
    """Whole rupiah from a number or an Indonesian price text; None when there is no price.

    "Rp 1.250.000" → 1250000; "Rp1,25 jt" → 1250000; "Rp5 jt" → 5000000; "12,5rb" → 12500;
    "85000.00" → 85000; "Rp 99.000 - Rp 120.000" → 99000 (the first, i.e. the lower bound).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return round(value) if value >= 0 else None
    text = str(value).strip()
    if not text:
        return None
    match = _PRICE.search(text.replace("\xa0", " "))
    if not match:
        return None
    num, unit = match.group("num"), (match.group("unit") or "").lower()
    if unit:
        # With a unit the separator is decimal: "1,25 jt", "1.5jt", "12,5rb".
        amount = float(
            num.replace(".", "").replace(",", ".") if num.count(",") == 1 else num.replace(",", "")
        )
        if num.count(".") == 1 and "," not in num:
            amount = float(num)
        return round(amount * _MULTIPLIER[unit])
    groups = re.split(r"[.,]", num)
    if len(groups) > 1 and len(groups[-1]) in (1, 2) and all(len(g) == 3 for g in groups[1:-1]):
        # trailing cents: "85000.00", "1.250.000,00"
        return int("".join(groups[:-1]))
    return int("".join(groups))


SHOPEE_PRICE_FACTOR = 100_000


def shopee_price(value: Any) -> int | None:
    """Shopee stores IDR × 100000 as integers (8500000000 → Rp 85.000)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    if number < 0:
        return None
    return number // SHOPEE_PRICE_FACTOR


# --------------------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------------------
def absolute_url(base: str, href: str | None) -> str | None:
    """``//host/path`` gets the base's scheme; ``/path`` is joined to the base (with its path prefix)."""
    if not href:
        return None
    href = href.strip()
    if href.startswith("//"):
        return f"{urlsplit(base).scheme or 'https'}:{href}"
    if href.startswith(("http://", "https://")):
        return href
    if href.startswith("/"):
        return base.rstrip("/") + href
    return urljoin(base.rstrip("/") + "/", href)


def strip_query(url: str, keep: Iterable[str] = ()) -> str:
    """The URL without tracking parameters (those in ``keep`` survive) and without a fragment."""
    parts = urlsplit(url)
    keep = set(keep)
    query = ""
    if keep and parts.query:
        pairs = [p.split("=", 1) for p in parts.query.split("&") if p]
        query = "&".join("=".join(p) for p in pairs if p[0] in keep)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def query_string(params: Mapping[str, Any]) -> str:
    return urlencode({k: v for k, v in params.items() if v is not None})


# --------------------------------------------------------------------------------------------------
# Blocks and verdicts
# --------------------------------------------------------------------------------------------------
def find_marker(text: str, markers: Iterable[str]) -> str | None:
    """The first marker (case-insensitive) found in ``text``."""
    lower = text.lower()
    for marker in markers:
        if marker.lower() in lower:
            return marker
    return None


def http_block(platform: str, status: int, headers: Mapping[str, Any] | None = None) -> Block | None:
    """HTTP-level blocks common to every platform: 429 (with Retry-After), 403, 5xx."""
    if status == 429:
        retry = header(headers, "Retry-After")
        return Block(platform, "rate_limited", "HTTP 429" + (f", Retry-After {retry}" if retry else ""))
    if status == 403:
        return Block(platform, "forbidden", "HTTP 403")
    if status >= 500:
        return Block(platform, "server_error", f"HTTP {status}")
    return None


def header(headers: Mapping[str, Any] | None, name: str) -> str:
    """A header value, case-insensitive; bytes and lists (Scrapy's header shape) are flattened."""
    if not headers:
        return ""
    for key, value in headers.items():
        k = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if k.lower() == name.lower():
            if isinstance(value, list | tuple):
                value = value[0] if value else ""
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return ""


def malformed(platform: str, exc: Exception) -> Block:
    return Block(platform, "malformed", str(exc))


def read_api_json(
    platform: str,
    body: Body,
    *,
    status: int,
    headers: Mapping[str, Any] | None = None,
    html_block: Callable[[str], Block],
    unwrap: Callable[[Any], Any] = lambda data: data,
) -> tuple[Any, Block | None]:
    """The common opening of a JSON API parser: ``(data, None)``, or ``(None, block)`` for an HTTP block
    status, an HTML page where JSON was expected (``html_block`` names which), or a malformed body."""
    block = http_block(platform, status, headers)
    if block:
        return None, block
    if isinstance(body, bytes | str) and looks_like_html(body_text(body)):
        return None, html_block(body_text(body))
    try:
        return unwrap(load_json(body)), None
    except BodyError as exc:
        return None, malformed(platform, exc)


def blocked_page(platform: str, block: Block) -> SearchPage:
    """A search result that is a block: no listings, ``has_more`` False, the block recorded."""
    return SearchPage(platform=platform, block=block, has_more=False)


def unobservable(platform: str, listing_id: str, rule: str, signal: str = "") -> CheckResult:
    return CheckResult(platform, listing_id, Verdict.UNOBSERVABLE, rule, signal)


def block_result(platform: str, listing_id: str, block: Block) -> CheckResult:
    """UNOBSERVABLE for a block; the rule is ``<platform>.<reason>``."""
    return unobservable(platform, listing_id, f"{platform}.{block.reason}", block.detail)


def finish_listings(listings: list[Listing], *, url: str, query: str, page: int) -> list[Listing]:
    """Provenance for a page: 1-based rank *within the page*, page, query, source URL.

    Global rank, when needed, is ``(page - 1) * profile.page_size + rank``.
    """
    for position, listing in enumerate(listings, start=1):
        listing.rank = position
        listing.page = page
        listing.query = query or None
        listing.source_url = url or None
    return listings


# --------------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------------
SearchParser = Callable[..., SearchPage]
DetailParser = Callable[..., CheckResult]
SearchBuilder = Callable[["Settings", str, int], RequestSpec]
DetailBuilder = Callable[["Settings", str], RequestSpec]
ShopBuilder = Callable[["Settings", str, int], RequestSpec]  # (settings, the platform's seller id, page)
Colour = tuple[int, int, int]


@dataclass(frozen=True)
class BrowserLogin:
    """How a browser logs in to a platform's web form.

    Real sweeps never type credentials: an analyst logs in once by hand (``tertib browser login P``) and the
    saved browser profile is reused. Only the sandbox's published test account is filled in automatically.
    """

    login_path: str  # below the platform's base URL, e.g. "/login/"
    url_marker: str  # a URL containing this is the login page (login walls redirect there)
    user_field: str  # CSS selectors
    password_field: str
    submit: str
    sandbox_user: str
    sandbox_password: str


@dataclass(frozen=True)
class AnswerRule:
    """Which recorded answers a profile's parsers read (``tertib calibrate`` on a browser recording).

    ``path`` is a regular expression searched in the URL path *below the host* (and below the sandbox's
    ``/{host-key}`` prefix); ``kind`` is ``search`` (``parse_search``) or ``detail`` (``parse_detail``:
    listing, removal and recheck pages); ``contains``, when set, must occur in the body (Facebook's one
    ``/api/graphql/`` endpoint answers many queries, only ``marketplace_search`` ones are results).
    """

    kind: str
    path: str
    contains: str = ""


@dataclass(frozen=True)
class SiteProfile:
    """Everything tertib knows about one platform, as plain data and pure functions.

    The rest of the code reads platforms only through the registry (:mod:`crawler.registry`), which
    loads one ``PROFILE`` per module named in ``Settings.platform_modules``.

    Who and where:

    - ``display_name`` — how letters, sheets, reports and the console name it.
    - ``operator`` — the operator of record: the legal addressee of a takedown letter.
    - ``base_urls`` — host key → real base URL; the first is the main host (listing pages, login). With
      ``--sandbox URL`` each key becomes ``{URL}/{key}`` (docs/contracts.md).
    - ``colour`` — RGB of its line in charts (fixed so report bytes are stable).
    - ``id_scheme`` — what the part after ``platform:`` in a listing key is (shown in docs and errors).

    What it can do: ``parse_search``/``search_request`` are None for platforms without a keyword search
    (``no_search_reason`` says why, e.g. found through another platform's search); every platform can be
    rechecked (``parse_detail``/``detail_request``). ``page_size`` is the platform's results per page;
    ``max_pages`` the deepest page worth requesting. Politeness defaults (``concurrency``,
    ``download_delay``) become the platform's download slot in ``crawler/settings.py``.

    Optional capabilities (None/empty when the platform has none): ``shop_request`` builds a request for
    one page of a seller's shop listings and ``parse_shop`` reads it (for following sellers, ``can_follow``);
    ``reports_refused_queries`` says its search marks keywords it refuses (discovery's probe); ``facts``
    names dotted JSON paths of optional facts a parser can read into ``Listing.raw`` (e.g. ``sold_count``,
    ``ships_from_abroad``).
    """

    platform: str
    display_name: str
    operator: str
    base_urls: Mapping[str, str]
    colour: Colour
    id_scheme: str
    parse_detail: DetailParser
    detail_request: DetailBuilder
    listing_id_from_url: Callable[[str], str | None]
    parse_search: SearchParser | None = None
    search_request: SearchBuilder | None = None
    no_search_reason: str = ""
    page_size: int = 0
    max_pages: int = 0
    needs_browser: bool = False
    needs_login: bool = False
    concurrency: int = 1
    download_delay: float = 2.0
    block_markers: tuple[str, ...] = ()
    removal_rules: tuple[str, ...] = ()
    hidden_rules: tuple[str, ...] = ()
    notes: str = ""
    # browser platforms: URL fragments of the API responses the page receives with search results,
    # whether more results come by scrolling the same page (instead of a page parameter), and the login form
    browser_api_markers: tuple[str, ...] = ()
    scroll_pagination: bool = False
    login: BrowserLogin | None = None
    # seller following: one page of a shop's listings by the platform's seller id, and its parser (same
    # signature and SearchPage as parse_search; the query is ``seller:<id>``); None = not followed
    shop_request: ShopBuilder | None = None
    parse_shop: SearchParser | None = None
    # its search says when it refuses a keyword (``SearchPage.query_blocked``): discovery's probe asks it
    # about new words, since a platform refusing one is a sign it is used for this trade
    reports_refused_queries: bool = False
    facts: Mapping[str, str] = field(default_factory=dict)
    # the answers of this platform its parsers read, for ``tertib calibrate`` (first match wins)
    answers: tuple[AnswerRule, ...] = ()

    @property
    def has_search(self) -> bool:
        """It can parse search responses (saved ones too: ``tertib parse``)."""
        return self.parse_search is not None

    @property
    def can_follow(self) -> bool:
        """Seller following can read its shops: it builds shop requests and parses their answers."""
        return self.shop_request is not None and self.parse_shop is not None

    @property
    def sweepable(self) -> bool:
        """A sweep can search it: it builds search requests and parses their answers."""
        return self.parse_search is not None and self.search_request is not None

    @property
    def hosts(self) -> tuple[str, ...]:
        """The host keys, main host first."""
        return tuple(self.base_urls)

    @property
    def main_host(self) -> str:
        return next(iter(self.base_urls))
