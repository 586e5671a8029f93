"""Hostile content: every console page, error page, partial and download shows seller text as text.

A sample installation gets listings, sellers, handles, terms, capture metadata, sweep health and a batch
whose every seller-controlled string is a markup payload (:data:`console_sample.HOSTILE`: a script tag, an
event attribute, ``hx-*`` and ``data-hx-*`` attributes that would POST with the analyst's CSRF token, a
``javascript:`` link and an attribute break-out). Each page is parsed as a browser would and must contain no
element, attribute or URL that came from the payloads; the ``next`` parameter and path segments carry the
same payloads. The same checks cover the audit report (HTML and Markdown) and the export files (CSV and
XLSX formulas, letter HTML and PDF links).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import console_sample as sample
import pytest
from console_helpers import installation_fixtures, sign_in
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from markupsafe import escape
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select

from console import auth
from console.app import create_app
from crawler.config import Settings
from crawler.hostile import markdown_text, safe_url, spreadsheet_text
from storage.db import Database
from storage.models import Capture, CustodyEntry, Listing, Sweep, TakedownBatch

MARK = sample.MARK
PAYLOAD = sample.HOSTILE_TEXT
TEMPLATES = Path(__file__).resolve().parents[1] / "console" / "templates"
# every htmx attribute the console's own templates use; a page may carry no other
OWN_HTMX = set(
    re.findall(r"\s((?:data-)?hx-[a-z-]+)", " ".join(p.read_text() for p in TEMPLATES.glob("*.j2")))
)
OWN_SCRIPTS = {"/static/htmx.min.js", "/static/console.js"}
# attributes that only ever hold text for people (the payload may appear in them, escaped)
TEXT_ATTRIBUTES = {"title", "value", "alt", "content", "aria-label", "placeholder", "data-confirm"}
URL_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "hx-get",
    "hx-post",
    "poster",
    "srcset",
    "background",
}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, [(k, v or "") for k, v in attrs]))

    handle_startendtag = handle_starttag


def inert_problems(html: str, *, allow_style: bool = False) -> list[str]:
    """What in ``html`` is markup a payload made, or could act: [] when every payload stayed text."""
    parser = _Elements()
    parser.feed(html)
    problems: list[str] = []
    for tag, attrs in parser.elements:
        if MARK in tag:
            problems.append(f"element from a payload: <{tag}>")
        if tag == "script" and dict(attrs).get("src") not in OWN_SCRIPTS:
            problems.append(f"script {attrs}")
        if tag in ("iframe", "object", "embed", "base", "frame", "frameset", "applet"):
            problems.append(f"<{tag}>")
        if tag == "style" and not allow_style:
            problems.append("<style>")
        for name, value in attrs:
            low = value.strip().lower()
            if MARK in name:
                problems.append(f"attribute from a payload: {name} on <{tag}>")
            if name.startswith("on"):
                problems.append(f"event attribute {name}={value!r} on <{tag}>")
            if (name.startswith(("hx-", "data-hx-")) and name not in OWN_HTMX) or (
                name in OWN_HTMX and MARK in value
            ):
                problems.append(f"htmx attribute {name}={value!r} on <{tag}>")
            if name in URL_ATTRIBUTES and low.startswith(("javascript:", "vbscript:", "data:text")):
                problems.append(f"script URL {name}={value!r} on <{tag}>")
            if MARK in value and name not in TEXT_ATTRIBUTES | URL_ATTRIBUTES | {"class"} and name != "id":
                problems.append(f"payload in {name}={value!r} on <{tag}>")
            if name == "id" and MARK in value:
                problems.append(f"element from a payload: <{tag} id={value!r}>")
    return problems


def assert_inert(html: str, where: str, **kw: bool) -> None:
    problems = inert_problems(html, **kw)
    assert not problems, (where, problems[:5])


def test_the_checker_catches_every_payload_unescaped() -> None:
    """The checker itself: each payload dropped raw into a page is caught."""
    for name, payload in sample.HOSTILE.items():
        assert inert_problems(f"<p>{payload}</p>"), name
    assert not inert_problems(f"<p>{escape(PAYLOAD)}</p>")


# -- the installation --------------------------------------------------------------------------


def _seed(db: Database, settings: Settings) -> None:
    sample.seed_sample(db, settings)
    sample.seed_hostile(db, settings)


pytestmark = pytest.mark.both_backends

templates, template, settings = installation_fixtures("hostile", _seed, users=("siti", "audi"))


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.db_url)
    yield database
    database.dispose()


@pytest.fixture
def client(db: Database, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db)) as c:
        yield c


login = sign_in


def ids(db: Database) -> dict[str, str]:
    with db.session() as s:
        batch = s.scalars(select(TakedownBatch).where(TakedownBatch.name.like("%pwn%"))).one()
        capture = s.scalars(select(Capture).where(Capture.url == sample.HOSTILE_URL)).first()
        assert capture is not None
        listing = s.scalars(select(Listing).where(Listing.listing_key == capture.listing_key)).one()
        return {"batch": batch.number, "capture": str(capture.id), "listing": str(listing.id)}


def pages(db: Database) -> dict[str, str]:
    """Route template → a URL that shows hostile data on it."""
    i = ids(db)
    bad = quote(PAYLOAD, safe="")
    return {
        "/": "/",
        "/review": "/review",
        "/review/list": "/review/list",
        "/batches": "/batches",
        "/batches/{number}": f"/batches/{i['batch']}",
        "/batches/{number}/files/{name:path}": f"/batches/{i['batch']}/files/{bad}",
        "/audit": f"/audit?batch={i['batch']}",
        "/audit/report.{fmt}": f"/audit/report.{bad}",
        "/evidence": f"/evidence?listing={i['listing']}",
        "/evidence/{capture_id}": f"/evidence/{i['capture']}",
        "/evidence/{capture_id}/wacz": "",  # a download (ZIP), checked by test_wacz_download
        "/blob/{sha}": f"/blob/{bad}",
        "/terms": "/terms",
        "/sweeps": "/sweeps",
        "/sellers": "/sellers",
        "/login": f"/login?next={bad}",
        "/lang/{code}": "",  # a redirect, checked below
    }


def test_every_page_shows_hostile_text_as_text(client: TestClient, db: Database) -> None:
    login(client)
    urls = pages(db)
    app_gets = {
        r.path
        for r in client.app.routes  # type: ignore[attr-defined]
        if isinstance(r, APIRoute) and "GET" in r.methods and not r.path.startswith("/api/")
    }
    assert app_gets <= set(urls), f"pages without a hostile-content check: {app_gets - set(urls)}"
    shown = 0
    for url in urls.values():
        if not url:
            continue
        r = client.get(url)
        assert r.status_code < 500, (url, r.status_code)
        assert r.headers["content-type"].startswith("text/html"), url
        assert_inert(r.text, url)
        shown += MARK in r.text
    assert shown >= 10  # the payloads did reach the pages (as text)
    # the HTMX partial of the review card
    r = client.get("/review?pos=0", headers={"HX-Request": "true"})
    assert_inert(r.text, "/review partial")
    assert "pwn-hx" in r.text  # as text


def test_hostile_next_and_path_segments(client: TestClient, db: Database) -> None:
    bad = quote(PAYLOAD, safe="")
    for url in (f"/login?next={bad}", f"/login?next=javascript:alert('{MARK}')", f"/{bad}", f"/review/{bad}"):
        r = client.get(url)
        assert_inert(r.text, url)
    r = client.post(
        "/login",
        data={"username": PAYLOAD, "password": "x" * 9, "next": f"javascript:alert('{MARK}')"},
    )
    assert_inert(r.text, "POST /login")
    r = client.get(f"/lang/en?next={bad}", follow_redirects=False)
    assert r.headers["location"] == "/"
    r = client.get(f"/lang/en?next=//evil.example/{bad}", follow_redirects=False)
    assert r.headers["location"] == "/"
    token = login(client)
    for url in (
        f"/{bad}",
        f"/evidence/{bad}",
        f"/batches/{bad}",
        f"/review?pos={bad}",
        f"/audit?batch={bad}",
    ):
        r = client.get(url)
        assert 400 <= r.status_code < 500, url
        assert_inert(r.text, url)
    # write routes echo names in their errors: still text
    for url in (f"/sweeps/{bad}/pause", f"/terms/1/{bad}", f"/review/{bad}/decide"):
        r = client.post(url, data={"csrf": token, "decision": PAYLOAD})
        assert 400 <= r.status_code < 500, url
        assert_inert(r.text, url)
    r = client.post("/batches", data={"csrf": token, "name": PAYLOAD, "platforms": PAYLOAD})
    assert_inert(r.text, "POST /batches")
    with db.session() as s:
        assert s.scalars(select(Sweep).where(Sweep.name.like("%pwn%"))).first() is None


def test_verify_result_and_auditor_pages(client: TestClient, db: Database) -> None:
    token = login(client)
    r = client.post(f"/evidence/{ids(db)['capture']}/verify", data={"csrf": token})
    assert r.status_code == 200
    assert_inert(r.text, "verify result")
    client.post("/logout", data={"csrf": token})
    login(client, "audi")
    for url in pages(db).values():
        if url:
            assert_inert(client.get(url).text, f"auditor {url}")


def test_api_answers_json_never_html(client: TestClient, db: Database) -> None:
    with db.session() as s:
        headers = {"Authorization": "Bearer " + auth.issue_token(s, "siti", actor="test")}
    for url in (
        "/api/v1/candidates",
        "/api/v1/decisions",
        "/api/v1/batches",
        "/api/v1/rechecks",
        "/api/v1/terms",
    ):
        r = client.get(url, headers=headers)
        assert r.status_code == 200, url
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-content-type-options"] == "nosniff"
    page = client.get("/api/v1/candidates", headers=headers).json()
    titles = [item["title"] for item in page["items"]]
    assert any(PAYLOAD in t for t in titles)  # JSON carries the data exactly as stored
    r = client.get(f"/api/v1/batches/{quote(sample.HOSTILE['event'], safe='')}", headers=headers)
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"


def test_audit_report_downloads(client: TestClient, db: Database) -> None:
    login(client)
    batch = ids(db)["batch"]
    html = client.get(f"/audit/report.html?batch={batch}")
    assert html.status_code == 200 and MARK in html.text
    assert_inert(html.text, "audit report html", allow_style=True)
    md = client.get(f"/audit/report.md?batch={batch}").text
    assert MARK in md
    raw_tags = re.findall(r"(?<!\\)(?<!\]\()<(?!a id=\")[a-zA-Z]", md)  # ](<https://…>) is a link target
    assert not raw_tags, raw_tags
    assert "](javascript:" not in md and "](<javascript:" not in md


# -- exports -----------------------------------------------------------------------------------


def test_export_files_neutralise_formulas_and_script_links(db: Database, settings: Settings) -> None:
    with db.session() as s:
        batch = s.scalars(select(TakedownBatch).where(TakedownBatch.name.like("%pwn%"))).one()
        out = Path(batch.out_dir or "")
    # CSV and XLSX: seller text cannot start a formula
    for path in out.glob("*.csv"):
        for row in csv.reader(path.read_text(encoding="utf-8").splitlines()):
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), (path.name, cell)
    for path in out.glob("*.xlsx"):
        wb = load_workbook(path)
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (path.name, ws.title, cell.coordinate, cell.value)
    # letter HTML: escaped, links only to web pages; PDF: no javascript: link annotation
    for path in out.glob("*-surat.html"):
        text = path.read_text(encoding="utf-8")
        assert_inert(text, path.name, allow_style=True)
        assert 'href="#"' in text  # the javascript: URL became an inert link
    for path in out.glob("*-surat.pdf"):
        for page in PdfReader(path).pages:
            for annot in page.get("/Annots") or []:
                uri = str(annot.get_object().get("/A", {}).get("/URI", ""))
                assert not uri.lower().startswith("javascript"), uri


def test_formula_cells_get_a_quote(tmp_path: Path) -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from crawler.exports import writers
    from crawler.exports.rows import COLUMNS, ExportRow

    evil = ['=HYPERLINK("http://evil","x")', "+62 812", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    assert [spreadsheet_text(v) for v in evil] == ["'" + v for v in evil]
    assert spreadsheet_text("Bal korea") == "Bal korea" and spreadsheet_text("") == ""
    rows = [
        ExportRow(
            no=n, platform="shopee", listing_url="https://shopee.example/p/1", listing_id="1",
            listing_key="shopee:1", title=value, price=-5, seller_name=value, seller_id="7",
            seller_city="", shop_url="", matched_signals="", score=None, first_seen=None,
            captured_at=datetime(2026, 1, 1, tzinfo=UTC), evidence_id=None, evidence_sha256="",
            screenshot_sha256="", reviewer="x", reviewed_at=None, repeat_offender_count=0,
        )
        for n, value in enumerate(evil, 1)
    ]  # fmt: skip
    tz = ZoneInfo("Asia/Jakarta")
    path = writers.write_csv(tmp_path / "x.csv", [writers.row_values(r, tz) for r in rows])
    with path.open(encoding="utf-8", newline="") as handle:
        read = list(csv.reader(handle))
    title = [c.key for c in COLUMNS].index("title")
    price = [c.key for c in COLUMNS].index("price")
    assert [r[title] for r in read[1:]] == ["'" + v for v in evil]
    assert read[1][price] == "-5"  # numbers stay numbers
    xlsx = writers.write_xlsx(tmp_path / "x.xlsx", rows, tz, info=[("Nama batch", "=1+1")])
    wb = load_workbook(xlsx)
    values = [wb["Tautan"].cell(n + 1, title + 1).value for n in range(1, len(evil) + 1)]
    assert values == ["'" + v for v in evil]
    assert wb["Info"]["B1"].value == "'=1+1" and wb["Info"]["B1"].data_type == "s"


def test_safe_url_and_markdown_text() -> None:
    assert safe_url("https://shopee.co.id/p/1?a=<b>") == "https://shopee.co.id/p/1?a=<b>"
    for bad in (
        "javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "vbscript:x", "//evil.example/",
        "https://user:pw@evil.example/", "http://x.example/\njavascript:", "", None, 5,
    ):  # fmt: skip
        assert safe_url(bad) is None, bad
    assert markdown_text("[x](javascript:y) | <b>") == r"\[x\]\(javascript:y\) \| \<b\>"


def test_custody_log_names_no_payload_actor_as_markup(db: Database) -> None:
    """The hostile reviewer name is stored as given (custody is data, not a page)."""
    with db.session() as s:
        actors = {e.actor for e in s.scalars(select(CustodyEntry))}
    assert sample.HOSTILE["event"][:100] in actors


def test_markup_is_built_by_hand_in_one_place_only() -> None:
    """Audit of the sources: no |safe, no autoescape switch, Markup only in console/views.py, every Jinja
    environment from crawler.hostile.html_environment, no tojson in the console."""
    root = Path(__file__).resolve().parents[1]
    sources = [p for d in ("console", "crawler", "scheduler", "storage") for p in (root / d).rglob("*.py")]
    templates = [
        *(root / "console" / "templates").glob("*.j2"),
        *(root / "crawler" / "templates").glob("*.j2"),
    ]
    for path in templates:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe\b|autoescape\s+false|tojson", text), path.name
    for path in sources:
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(root).as_posix()
        if name != "console/views.py":
            assert "Markup(" not in text, name
        if name != "crawler/hostile.py":
            assert not re.search(r"\bEnvironment\(|select_autoescape|Jinja2Templates\(directory", text), name
