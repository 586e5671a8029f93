"""``tertib calibrate FILE.har``: check every site profile against what the platforms really send.

No machine running tertib reaches the marketplaces the way a person does, and sites change. An analyst
records a session in their own browser (DevTools → Network → "Save all as HAR", Chromium or Firefox), and
tertib tests its parsers on that recording without the crawler touching the site (docs/calibration.md).

Steps (:func:`calibrate`):

1. Read the HAR (:func:`read_har`): ``log.entries[]`` with the request URL and method, the response status,
   headers and body (``content.text``, base64 when ``content.encoding`` says so). A file that is not JSON,
   is cut short, or has no ``log.entries`` is one clear error line and exit 1.
2. Find the answers each profile knows (:func:`classify`): the entry's host is one of the profile's hosts
   (the real base URLs, ``TERTIB_BASE_URL_<HOST>`` overrides, or the sandbox layout ``/{host-key}/…``) and
   its path matches one of the profile's ``answers`` rules (search APIs, listing pages, removal pages).
3. Run the parser on each (``parse_search`` / ``parse_detail``), and compare the answer's JSON key paths
   with the shapes tertib was last calibrated on (``spiders/shapes.json``, :func:`key_paths`): the paths the
   parser expected and did not find (``SearchPage.missing_paths``), the keys that are new, the listings read.
4. Print one section per platform; with ``--save DIR`` store each recognised body as a fixture beside an
   ``index.json`` (URL, method, status, recording time, what it parsed to) and the shapes seen
   (``shapes.json``: hand it to a developer, who accepts it with ``scripts/refresh_shapes.py``).

Exit codes: 0 every recognised answer read as its profile expects; 3 a shape changed (missing paths) or a
platform answered with a block page; 1 the file is unreadable or not a HAR; 2 bad arguments.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.table import Table
from rich.text import Text

from crawler import cli_common as common
from crawler.config import Settings
from crawler.errors import ParseError, TertibError, UsageError
from crawler.items import CheckResult, SearchPage
from spiders.base import AnswerRule, SiteProfile, body_text, looks_like_html

MAX_NEW_KEYS_SHOWN = 12
MAX_LISTINGS_SHOWN = 5
KEY_PATH_DEPTH = 9
# map keys that are ids, not field names (a product map keyed by SKU, GraphQL aliases with numbers)
_ID_KEY = re.compile(r"\d{4,}|^[A-Z0-9]{2,4}-\d|^\d+$")


class ChangedShape(TertibError):
    """Calibration found answers that no longer match their profile (exit code 3)."""

    exit_code = 3


# --------------------------------------------------------------------------------------------------
# 1. Reading the HAR
# --------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class HarEntry:
    url: str
    method: str
    status: int
    headers: dict[str, str]
    body: bytes | None  # None when the recording kept no body
    started: str = ""
    mime: str = ""


def read_har(path: Path) -> list[HarEntry]:
    """The entries of a HAR file; anything else is a :class:`ParseError` naming what is wrong."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not raw.strip():
        raise ParseError(f"{path} is empty, not a HAR file")
    try:
        doc = json.loads(raw.decode("utf-8-sig", errors="replace"))
    except json.JSONDecodeError as exc:
        text = raw.decode("utf-8-sig", errors="replace").rstrip()
        started_as_json = text[:1] in ("{", "[")
        truncated = started_as_json and (exc.pos >= len(text) - 1 or exc.msg.startswith("Unterminated"))
        what = "cut short (truncated)" if truncated else "not JSON"
        raise ParseError(
            f"{path} is not a readable HAR file: {what} at line {exc.lineno} column {exc.colno}"
        ) from None
    entries = doc.get("log", {}).get("entries") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not isinstance(doc.get("log"), dict) or not isinstance(entries, list):
        raise ParseError(f"{path} is JSON but not a HAR file (no log.entries)")
    out: list[HarEntry] = []
    for number, entry in enumerate(entries, start=1):
        try:
            out.append(_entry(entry))
        except (KeyError, TypeError, ValueError) as exc:
            raise ParseError(f"{path}: entry {number} is not a HAR entry ({exc})") from None
    return out


def _entry(entry: Mapping[str, Any]) -> HarEntry:
    request, response = entry["request"], entry["response"]
    content = response.get("content") or {}
    text = content.get("text")
    body: bytes | None = None
    if isinstance(text, str):
        if content.get("encoding") == "base64":
            try:
                body = base64.b64decode(text, validate=False)
            except (binascii.Error, ValueError):
                body = text.encode("utf-8", errors="replace")
        else:
            body = text.encode("utf-8")
    headers = {
        str(h.get("name", "")).lower(): str(h.get("value", ""))
        for h in response.get("headers") or []
        if isinstance(h, dict)
    }
    return HarEntry(
        url=str(request["url"]),
        method=str(request.get("method") or "GET").upper(),
        status=int(response.get("status") or 0),
        headers=headers,
        body=body,
        started=str(entry.get("startedDateTime") or ""),
        mime=str(content.get("mimeType") or ""),
    )


# --------------------------------------------------------------------------------------------------
# 2. Which profile answers are these
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Classified:
    platform: str
    kind: str
    rule: AnswerRule
    profile: SiteProfile


def _hosts(settings: Settings) -> list[tuple[str, str]]:
    """(base URL, host key) pairs, longest base first: configured bases, then the real ones."""
    pairs = {(url.rstrip("/"), key) for key, url in settings.base_urls.items()}
    pairs |= {(url.rstrip("/"), key) for key, url in settings.registry.real_base_urls.items()}
    return sorted(pairs, key=lambda p: -len(p[0]))


def split_host(url: str, settings: Settings) -> tuple[str, str] | None:
    """(host key, path below the host) of a platform URL, or None for any other host.

    Real hosts (a profile's ``base_urls``), configured bases (``TERTIB_BASE_URL_<HOST>``,
    ``--sandbox``), and the sandbox layout ``http://127.0.0.1:PORT/{host-key}/…`` on any loopback origin.
    """
    clean = url.split("#", 1)[0]
    for base, key in _hosts(settings):
        if clean == base or clean.startswith(base + "/") or clean.startswith(base + "?"):
            rest = clean[len(base) :]
            return key, urlsplit(rest if rest.startswith("/") else "/" + rest).path or "/"
    parts = urlsplit(clean)
    if parts.hostname in ("127.0.0.1", "localhost", "::1"):
        first, _, rest = parts.path.lstrip("/").partition("/")
        if first in settings.registry.real_base_urls:
            return first, "/" + rest
    return None


def classify(
    entry: HarEntry, settings: Settings, platforms: Iterable[str] | None = None
) -> Classified | None:
    """The platform and kind of answer this entry is, or None when no profile reads it."""
    located = split_host(entry.url, settings)
    if located is None:
        return None
    key, path = located
    wanted = set(platforms) if platforms else None
    for profile in settings.registry:
        if key not in profile.hosts or (wanted is not None and profile.platform not in wanted):
            continue
        for rule in profile.answers:
            if not re.search(rule.path, path):
                continue
            if rule.contains and (entry.body is None or rule.contains.encode() not in entry.body):
                continue
            return Classified(profile.platform, rule.kind, rule, profile)
    return None


# --------------------------------------------------------------------------------------------------
# 3. Parsing, and the shapes tertib knows
# --------------------------------------------------------------------------------------------------
def key_paths(obj: Any, prefix: str = "", depth: int = 0, out: set[str] | None = None) -> set[str]:
    """Every key path of a JSON value: ``data.products[].shop.name``; id-like map keys become ``*``."""
    out = set() if out is None else out
    if depth > KEY_PATH_DEPTH:
        return out
    if isinstance(obj, dict):
        for key, value in obj.items():
            name = "*" if _ID_KEY.search(str(key)) else str(key)
            path = f"{prefix}.{name}" if prefix else name
            out.add(path)
            key_paths(value, path, depth + 1, out)
    elif isinstance(obj, list):
        path = f"{prefix}[]"
        for value in obj[:50]:
            key_paths(value, path, depth + 1, out)
    return out


def json_body(body: bytes) -> Any | None:
    """The body as JSON (GraphQL answers arrive as one-element lists too), or None for pages."""
    text = body_text(body).strip()
    if not text or looks_like_html(text) or text[0] not in "[{":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def shape_key(platform: str, kind: str, shape: str) -> str:
    return f"{platform}:{kind}:{shape}" if shape else f"{platform}:{kind}"


@cache
def _packaged_shapes() -> dict[str, frozenset[str]]:
    data = json.loads(resources.files("spiders").joinpath("shapes.json").read_text(encoding="utf-8"))
    return {key: frozenset(paths) for key, paths in data.get("shapes", {}).items()}


def known_shapes(path: Path | None = None) -> dict[str, frozenset[str]]:
    """The key paths tertib was calibrated on, by :func:`shape_key`: the packaged inventory, or a file."""
    if path is None:
        return _packaged_shapes()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {key: frozenset(paths) for key, paths in data["shapes"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ParseError(f"{path} is not a shapes file written by tertib calibrate --save ({exc})") from None


@dataclass(slots=True)
class Answer:
    """One recognised answer of the recording and what the profile's parser made of it."""

    entry: HarEntry
    platform: str
    kind: str
    search: SearchPage | None = None
    detail: CheckResult | None = None
    paths: set[str] = field(default_factory=set)  # key paths of a JSON body
    new_keys: list[str] = field(default_factory=list)
    reference: bool = False  # a known shape existed to compare with

    @property
    def shape(self) -> str:
        return self.search.shape if self.search is not None else ""

    @property
    def missing(self) -> list[str]:
        return list(self.search.missing_paths) if self.search is not None and not self.search.shape_ok else []

    @property
    def blocked(self) -> str:
        if self.search is not None and self.search.block is not None:
            return f"{self.search.block.reason}: {self.search.block.detail}".rstrip(": ")
        if self.detail is not None and self.detail.verdict.value == "UNOBSERVABLE":
            return f"{self.detail.rule} {self.detail.signal}".strip()
        return ""

    @property
    def changed(self) -> bool:
        return bool(self.missing) or (self.search is not None and not self.search.shape_ok)


def parse_answer(entry: HarEntry, found: Classified, shapes: Mapping[str, frozenset[str]]) -> Answer:
    profile = found.profile
    body = entry.body or b""
    answer = Answer(entry=entry, platform=found.platform, kind=found.kind)
    if found.kind == "search" and profile.parse_search is not None:
        answer.search = profile.parse_search(body, url=entry.url, query="", page=1, status=entry.status)
    else:
        headers = {"Location": entry.headers["location"]} if "location" in entry.headers else None
        answer.detail = profile.parse_detail(body, url=entry.url, status=entry.status, headers=headers)
    data = json_body(body) if entry.body else None
    if data is not None:
        answer.paths = key_paths(data)
        reference = shapes.get(shape_key(found.platform, found.kind, answer.shape))
        if reference is not None:
            answer.reference = True
            answer.new_keys = sorted(answer.paths - reference)
    return answer


@dataclass(slots=True)
class Report:
    har: Path
    entries: int
    answers: list[Answer]
    platforms: list[str]  # asked for (all when none was named)
    known: tuple[str, ...] = ()  # every registered platform, in registry order (the report's order)

    def by_platform(self) -> dict[str, list[Answer]]:
        out: dict[str, list[Answer]] = defaultdict(list)
        for answer in self.answers:
            out[answer.platform].append(answer)
        return out

    @property
    def changed(self) -> bool:
        return any(a.changed or a.blocked for a in self.answers)


def calibrate(
    har: Path,
    settings: Settings,
    *,
    platforms: Iterable[str] = (),
    shapes: Mapping[str, frozenset[str]] | None = None,
) -> Report:
    """Read ``har``, parse every answer a profile knows, compare shapes (steps 1–3 of the module)."""
    # 1. read
    entries = read_har(har)
    wanted = [settings.registry.get(p).platform for p in platforms]
    shapes = known_shapes() if shapes is None else shapes
    answers: list[Answer] = []
    for entry in entries:
        # 2. classify (an entry recorded without its body cannot be parsed; it is reported as such)
        found = classify(entry, settings, wanted or None)
        if found is None:
            continue
        # 3. parse and compare
        answers.append(parse_answer(entry, found, shapes))
    return Report(
        har=har, entries=len(entries), answers=answers, platforms=wanted, known=settings.registry.names
    )


# --------------------------------------------------------------------------------------------------
# 4. The report and the saved fixtures
# --------------------------------------------------------------------------------------------------
def _text(value: Any, limit: int = 80) -> Text:
    """Platform text as plain Rich text: markup in a hostile title is printed, never interpreted."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return Text(text if len(text) <= limit else text[: limit - 1] + "…")


def _answer_line(answer: Answer) -> Text:
    path = urlsplit(answer.entry.url).path
    line = Text(f"{answer.kind:<6} ", style="bold")
    line.append(f"HTTP {answer.entry.status} ")
    line.append_text(_text(path, 70))
    if answer.entry.body is None:
        line.append("  no body in the recording (export with content)", style="yellow")
        return line
    if answer.search is not None:
        s = answer.search
        if s.block is not None:
            line.append(f"  BLOCKED ({answer.blocked})", style="red")
        elif not s.shape_ok:
            line.append("  SHAPE CHANGED", style="bold red")
        else:
            extra = f", total {s.total}" if s.total is not None else ""
            line.append(f"  parsed: {len(s.listings)} listings{extra}", style="green")
            if s.shape:
                line.append(f" [{s.shape}]")
            if s.query_blocked:
                line.append(f"; the platform blocks this query ({s.query_blocked_detail})", style="yellow")
    elif answer.detail is not None:
        d = answer.detail
        style = "red" if d.verdict.value == "UNOBSERVABLE" else "green"
        line.append(f"  {d.verdict.value} by {d.rule}", style=style)
        if d.signal:
            line.append_text(_text(f" ({d.signal})", 60))
    return line


def print_report(report: Report) -> None:
    console = common.console
    by_platform = report.by_platform()
    head = f"{report.har}: {report.entries} entries, {len(report.answers)} answers tertib knows"
    console.print(Text(head, style="bold"))
    names = report.platforms or [p for p in report.known if p in by_platform]
    for platform in names or []:
        answers = by_platform.get(platform, [])
        console.print(Text(f"\n{platform}", style="bold underline"))
        if not answers:
            console.print("  no answer of this platform in the recording (did the session visit it?)")
            continue
        for answer in answers:
            console.print(Text("  ").append_text(_answer_line(answer)))
            for path in answer.missing:
                console.print(Text(f"      missing path: {path}", style="red"))
            if answer.new_keys:
                shown = ", ".join(answer.new_keys[:MAX_NEW_KEYS_SHOWN])
                more = len(answer.new_keys) - MAX_NEW_KEYS_SHOWN
                shown += f" and {more} more" if more > 0 else ""
                console.print(Text(f"      new keys: {shown}", style="yellow"))
            elif answer.paths and not answer.reference:
                console.print(Text("      new keys: no known shape to compare with (save it: --save)"))
        listings = [listing for a in answers if a.search is not None for listing in a.search.listings] + [
            a.detail.listing for a in answers if a.detail is not None and a.detail.listing is not None
        ]
        if listings:
            table = Table("id", "title", "seller", "price", "ad", "from abroad", box=None, padding=(0, 1))
            for listing in listings[:MAX_LISTINGS_SHOWN]:
                table.add_row(
                    _text(listing.listing_id, 24),
                    _text(listing.title, 48),
                    _text(listing.seller_name or listing.seller_id or "", 20),
                    _text(f"{listing.price:,}".replace(",", ".") if listing.price is not None else ""),
                    "yes" if listing.sponsored else "",
                    "yes" if listing.ships_from_abroad else "",
                )
            console.print(table)
            if len(listings) > MAX_LISTINGS_SHOWN:
                console.print(f"  … and {len(listings) - MAX_LISTINGS_SHOWN} more listings")
    verdict = (
        "shapes changed or answers blocked: see above"
        if report.changed
        else "every recognised answer read as its profile expects"
    )
    console.print(Text(f"\n{verdict}", style="bold red" if report.changed else "bold green"))


def _extension(entry: HarEntry) -> str:
    if entry.body is not None and json_body(entry.body) is not None:
        return "json"
    if "html" in entry.mime or (entry.body and looks_like_html(body_text(entry.body))):
        return "html"
    return "txt"


def _iter_saved(report: Report) -> Iterator[tuple[Answer, str]]:
    counters: dict[tuple[str, str], int] = defaultdict(int)
    for answer in report.answers:
        if answer.entry.body is None:
            continue
        counters[(answer.platform, answer.kind)] += 1
        name = f"{answer.platform}/{answer.kind}-{counters[(answer.platform, answer.kind)]:02d}"
        yield answer, f"{name}.{_extension(answer.entry)}"


def save_fixtures(report: Report, directory: Path) -> Path:
    """Each recognised body as a fixture file, ``index.json`` (URL, time, what it parsed to) and
    ``shapes.json`` (the key paths seen, for ``scripts/refresh_shapes.py``); returns the index path."""
    directory.mkdir(parents=True, exist_ok=True)
    index: list[dict[str, Any]] = []
    shapes: dict[str, set[str]] = defaultdict(set)
    for answer, name in _iter_saved(report):
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(answer.entry.body or b"")
        tmp.replace(target)
        if answer.paths:
            shapes[shape_key(answer.platform, answer.kind, answer.shape)].update(answer.paths)
        index.append(
            {
                "file": name,
                "platform": answer.platform,
                "kind": answer.kind,
                "url": answer.entry.url,
                "method": answer.entry.method,
                "status": answer.entry.status,
                "recorded_at": answer.entry.started,
                "shape": answer.shape,
                "listings": len(answer.search.listings) if answer.search is not None else None,
                "verdict": answer.detail.verdict.value if answer.detail is not None else None,
                "missing_paths": answer.missing,
                "new_keys": answer.new_keys,
            }
        )
    meta = {"har": str(report.har), "saved_at": datetime.now(UTC).isoformat(timespec="seconds")}
    index_path = directory / "index.json"
    _write_json(index_path, {**meta, "fixtures": index})
    seen = {key: sorted(paths) for key, paths in sorted(shapes.items())}
    _write_json(directory / "shapes.json", {**meta, "shapes": seen})
    return index_path


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def calibrate_command(
    har: Annotated[Path, typer.Argument(help="A HAR file saved from a browser (DevTools: Save all as HAR).")],
    platform: Annotated[
        list[str] | None, typer.Option("--platform", "-p", help="Only this platform (repeatable).")
    ] = None,
    save: Annotated[
        Path | None,
        typer.Option("--save", help="Store the recognised bodies here as fixtures, with URL and date."),
    ] = None,
    shapes_file: Annotated[
        Path | None,
        typer.Option("--shapes", help="Compare with this shapes.json (from an earlier --save) instead."),
    ] = None,
) -> None:
    """Test the parsers on a browser recording: what parsed, missing paths, new keys, the listings read.

    Example: tertib calibrate ~/Downloads/site.har --platform PLATFORM --save calib/
    """
    if not har.exists():
        raise UsageError(f"{har}: no such file")
    if har.is_dir():
        raise UsageError(f"{har} is a directory; give the .har file")
    for name in platform or []:
        common.settings().registry.get(name)  # an unknown name is a usage error naming the known ones
    report = calibrate(
        har,
        common.settings(),
        platforms=platform or (),
        shapes=known_shapes(shapes_file) if shapes_file else None,
    )
    print_report(report)
    if save is not None:
        index = save_fixtures(report, save)
        common.console.print(Text(f"saved {sum(1 for _ in _iter_saved(report))} fixtures; index: {index}"))
    if not report.answers:
        raise TertibError(
            f"{har}: no answer of {', '.join(report.platforms) or 'any platform'} in the recording"
            " (was the right site recorded, with content?)"
        )
    if report.changed:
        raise ChangedShape("calibration found changed or blocked answers (see the report above)")
