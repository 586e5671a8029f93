"""The console in the real Debian Chromium (Playwright) against `tertib serve` on loopback.

One server per module: a temp data dir seeded with the sample installation (rows inserted directly, one
batch exported by the real exporter and rechecked), accounts made with `tertib users add --password-stdin`,
then `tertib serve --port P` as a subprocess. Decisions are checked in the database afterwards.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import console_sample as sample
import pytest
from console_helpers import served, tertib_env
from openpyxl import load_workbook
from sqlalchemy import select

from crawler.config import CHROMIUM_ARGS, load_settings
from storage.db import Database
from storage.models import CustodyEntry, ReviewDecision

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"
ARGS = list(CHROMIUM_ARGS)  # the flags the crawler's own browser runs with
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Console:
    url: str
    db: Database
    data_dir: Path


def _tertib(env: dict[str, str], *args: str, stdin: str = "") -> None:
    subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        input=stdin.encode(),
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )


def _start(base: Path, seed: Callable[[Database, Any], object]) -> Iterator[Console]:
    """A seeded data dir, two accounts made with `tertib users add`, and `tertib serve` on a free port."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    data = base / "data"
    settings = load_settings(env={}, data_dir=data)
    data.mkdir()
    db = Database(settings.db_url)
    db.migrate()
    seed(db, settings)
    env = tertib_env(data)
    _tertib(env, "users", "add", "siti", "--role", "analyst", "--password-stdin", stdin="siti-password\n")
    _tertib(env, "users", "add", "audi", "--role", "auditor", "--password-stdin", stdin="audi-password\n")
    try:
        with served(data) as url:
            yield Console(url, db, data)
    finally:
        db.dispose()


def _seed_sample(db: Database, settings: Any) -> None:
    sample.seed_sample(db, settings)
    sample.seed_batch(db, settings)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    yield from _start(tmp_path_factory.mktemp("console"), _seed_sample)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _login(browser: object, console: Console, name: str, password: str) -> tuple[object, list[str]]:
    context = browser.new_context(accept_downloads=True, locale="id-ID")  # type: ignore[attr-defined]
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(console.url + "/review")
    assert "/login" in page.url
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_url("**/review")
    return page, problems


def _decisions(db: Database) -> list[tuple[int, str, str | None, str]]:
    with db.session() as s:
        rows = s.scalars(select(ReviewDecision).order_by(ReviewDecision.id))
        return [(r.listing_id, r.decision, r.reason, r.reviewer) for r in rows]


def test_analyst_reviews_by_keyboard_batches_and_sees_audit(
    browser: object, console: Console, tmp_path: Path
) -> None:
    page, problems = _login(browser, console, "siti", "siti-password")
    assert page.text_content("#position") == "Kandidat 1 dari 4"
    assert page.locator("mark.sig-pos").count() >= 2  # matched signals highlighted
    assert page.locator("#screenshot").count() == 1
    first = page.text_content("#listing-key")

    # j/k move without deciding
    page.keyboard.press("j")
    page.wait_for_selector("text=Kandidat 2 dari 4")
    second = page.text_content("#listing-key")
    assert second != first
    page.keyboard.press("k")
    page.wait_for_selector("text=Kandidat 1 dari 4")

    # a approves the shown candidate; the queue shrinks
    before = len(_decisions(console.db))
    page.keyboard.press("a")
    page.wait_for_selector("text=Kandidat 1 dari 3")
    approved = _decisions(console.db)[before:]
    assert [(d, who) for _, d, _, who in approved] == [("approve", "siti")]

    # r opens the reason panel; 2 picks the second reason and submits
    shown = page.text_content("#listing-key")
    page.keyboard.press("r")
    assert page.is_visible("#reject-panel")
    page.keyboard.press("2")
    page.wait_for_selector("text=Kandidat 1 dari 2")
    rejected = _decisions(console.db)[before + 1 :]
    assert [(d, reason, who) for _, d, reason, who in rejected] == [("reject", "legit_new", "siti")]
    with console.db.session() as s:
        entry = s.scalars(select(CustodyEntry).order_by(CustodyEntry.seq.desc()).limit(1)).one()
        assert (entry.actor, entry.action, entry.object_id) == ("siti", "review", shown)

    # create a batch from approved items and download its XLSX
    page.goto(console.url + "/batches")
    page.fill("#batch-name", "Patroli browser")
    page.click("#batch-create")
    page.wait_for_url("**/batches/TTB-*")
    number = page.url.rsplit("/", 1)[1]
    assert number != "TTB-2026-0001"  # the sample batch came first
    link = page.locator("#files a", has_text=".xlsx").first
    with page.expect_download() as info:
        link.click()
    assert info.value.suggested_filename.endswith(".xlsx")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    sheet = load_workbook(path).active
    assert sheet is not None
    cells = [str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None]
    assert any("tokopedia.example" in c or "shopee.example" in c for c in cells)

    # the audit table of the rechecked sample batch
    page.goto(console.url + "/audit?batch=TTB-2026-0001")
    table = page.locator("#verdict-table")
    assert table.is_visible()
    assert "TTB-2026-0001" in (table.text_content() or "")
    assert page.locator("#audit-items .badge.REMOVED").count() >= 1
    with page.expect_download() as info:
        page.click("#report-html")
    assert info.value.suggested_filename.endswith(".html")

    # English toggle
    page.click("#lang-toggle")
    assert page.locator("h1", has_text="Audit").count() == 1
    page.goto(console.url + "/review")
    assert "Candidate 1 of 2" in (page.text_content("#position") or "")
    assert not [p for p in problems if "Content Security Policy" in p], problems
    page.context.close()


def test_auditor_cannot_approve(browser: object, console: Console) -> None:
    page, _ = _login(browser, console, "audi", "audi-password")
    assert page.locator("#position").count() == 1  # the auditor sees the queue
    assert page.locator("#approve-form").count() == 0
    assert page.locator("#approve-button").count() == 0
    assert page.locator("#reject-open").count() == 0
    before = _decisions(console.db)
    csrf = page.get_attribute('meta[name="csrf-token"]', "content")
    assert csrf
    with console.db.session() as s:
        from crawler import review

        listing_id = review.review_queue(s, limit=1)[0].listing_id
    response = page.request.post(
        f"{console.url}/review/{listing_id}/decide", form={"csrf": csrf, "decision": "approve", "pos": "0"}
    )
    assert response.status == 403
    page.keyboard.press("a")  # no form to submit
    page.wait_for_timeout(200)
    assert _decisions(console.db) == before
    page.context.close()


def test_form_post_without_csrf_is_refused(browser: object, console: Console) -> None:
    page, _ = _login(browser, console, "siti", "siti-password")
    with console.db.session() as s:
        from crawler import review

        listing_id = review.review_queue(s, limit=1)[0].listing_id
    before = _decisions(console.db)
    response = page.request.post(
        f"{console.url}/review/{listing_id}/decide", form={"decision": "approve", "pos": "0"}
    )
    assert response.status == 403
    wrong = page.request.post(
        f"{console.url}/review/{listing_id}/decide", form={"csrf": "forged", "decision": "approve"}
    )
    assert wrong.status == 403
    assert _decisions(console.db) == before
    page.context.close()


# -- hostile content -------------------------------------------------------------------------------


def _seed_hostile(db: Database, settings: Any) -> None:
    sample.seed_sample(db, settings)
    sample.seed_hostile(db, settings)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    yield from _start(tmp_path_factory.mktemp("hostile"), _seed_hostile)


def _custody_count(db: Database) -> int:
    with db.session() as s:
        return len(list(s.scalars(select(CustodyEntry.seq))))


def test_hostile_titles_make_no_request(browser: object, hostile: Console) -> None:
    """Pages full of script tags, event attributes, hx-*/data-hx-* attributes and javascript: links (in
    titles, seller names, handles, terms, metadata, health messages) run nothing and request nothing."""
    from sqlalchemy import func

    from storage.models import Capture, Sweep, TakedownBatch

    with hostile.db.session() as s:
        batch = s.scalars(select(TakedownBatch).where(TakedownBatch.name.like("%pwn%"))).one().number
        capture = s.scalar(select(func.max(Capture.id)).where(Capture.url == sample.HOSTILE_URL))
    before = (_decisions(hostile.db), _custody_count(hostile.db))
    page, _ = _login(browser, hostile, "siti", "siti-password")
    requests: list[tuple[str, str]] = []
    dialogs: list[str] = []
    page.on("request", lambda r: requests.append((r.method, r.url)))  # type: ignore[attr-defined]
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    paths = ["/", "/review", "/review/list", "/terms", "/sellers", "/sweeps", "/batches", f"/batches/{batch}",
             f"/audit?batch={batch}", "/evidence", f"/evidence/{capture}"]  # fmt: skip
    for path in paths:
        requests.clear()
        page.goto(hostile.url + path)  # type: ignore[attr-defined]
        page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
        page.wait_for_timeout(300)  # type: ignore[attr-defined]  # hx-trigger="load" would have fired
        assert "pwn" in (page.content() or ""), path  # type: ignore[attr-defined]  # shown, as text
        odd = [
            (m, u) for m, u in requests
            if m != "GET" or not u.startswith(hostile.url) or "pwn" in u
            or not (u.split("?")[0] == hostile.url + path.split("?")[0] or "/static/" in u or "/blob/" in u)
        ]  # fmt: skip
        assert not odd, (path, odd)
        assert page.locator("[id^=pwn]").count() == 0, path  # type: ignore[attr-defined]
    # the HTMX card swap (j) brings hostile text in through htmx, too
    page.goto(hostile.url + "/review")  # type: ignore[attr-defined]
    requests.clear()
    page.keyboard.press("j")  # type: ignore[attr-defined]
    page.wait_for_selector("text=Kandidat 2 dari")  # type: ignore[attr-defined]
    page.wait_for_timeout(300)  # type: ignore[attr-defined]
    assert all(m == "GET" and "pwn" not in u for m, u in requests), requests
    assert not dialogs, dialogs
    assert (_decisions(hostile.db), _custody_count(hostile.db)) == before
    with hostile.db.session() as s:
        assert s.scalars(select(Sweep).where(Sweep.name.like("pwn%"))).first() is None
    page.context.close()  # type: ignore[attr-defined]


def test_crafted_next_and_error_page_links_make_no_request(browser: object, hostile: Console) -> None:
    """Links an attacker could send an analyst: a sign-in link whose ``next`` is markup (followed through
    sign-in to where it points), and, signed in, links whose path segments and query values are markup
    (404 and 422 pages, the sign-in page). Each loads its page and nothing else: no form post, no request
    to another origin, no element of the payload's, no dialog."""
    from urllib.parse import quote

    from storage.models import Sweep

    payload = quote(sample.HOSTILE_TEXT, safe="")
    before = (_decisions(hostile.db), _custody_count(hostile.db))
    context = browser.new_context(locale="id-ID")  # type: ignore[attr-defined]
    page = context.new_page()
    requests: list[tuple[str, str, bool]] = []
    dialogs: list[str] = []
    page.on(  # type: ignore[attr-defined]
        "request", lambda r: requests.append((r.method, r.url, r.is_navigation_request()))
    )
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]

    def settle() -> list[tuple[str, str, bool]]:
        page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
        page.wait_for_timeout(300)  # type: ignore[attr-defined]  # hx-trigger="load" would have fired
        assert page.locator("[id^=pwn]").count() == 0, page.url  # type: ignore[attr-defined]
        return [
            (m, u, nav) for m, u, nav in requests
            if not u.startswith(hostile.url) or (m != "GET" and not u.startswith(hostile.url + "/login"))
            or not (nav or "/static/" in u or "/blob/" in u)
        ]  # fmt: skip

    # 1. signed out: the crafted sign-in link; the only POST is the sign-in form itself
    page.goto(f"{hostile.url}/login?next=/{payload}")  # type: ignore[attr-defined]
    assert settle() == []
    page.fill("#username", "siti")  # type: ignore[attr-defined]
    page.fill("#password", "siti-password")  # type: ignore[attr-defined]
    page.click("#login-submit")  # type: ignore[attr-defined]
    assert settle() == [] and page.url.startswith(hostile.url + "/")  # type: ignore[attr-defined]
    # 2. signed in: markup in path segments and query values
    links = [f"/{payload}", f"/batches/{payload}", f"/evidence/{payload}", f"/sellers/{payload}",
             f"/review?platform={payload}", f"/review/list?after={payload}", f"/audit?batch={payload}",
             f"/evidence?before={payload}", f"/login?next={payload}"]  # fmt: skip
    for link in links:
        requests.clear()
        page.goto(hostile.url + link)  # type: ignore[attr-defined]
        assert settle() == [], link
    assert not dialogs, dialogs
    assert (_decisions(hostile.db), _custody_count(hostile.db)) == before
    with hostile.db.session() as s:
        assert s.scalars(select(Sweep).where(Sweep.name.like("pwn%"))).first() is None
    context.close()  # type: ignore[attr-defined]


# -- phone screens, language, roles --------------------------------------------------------------

PAGES = ["/", "/review", "/review/list", "/batches", "/batches/TTB-2026-0001", "/audit", "/evidence",
         "/evidence/1", "/terms", "/sweeps", "/sellers", "/model", "/review?order=uncertain"]  # fmt: skip


def test_every_page_fits_a_390_pixel_phone(browser: object, console: Console) -> None:
    """No page scrolls sideways at 390 × 844 (wide tables scroll inside their own box)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="id-ID")  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(console.url + "/login")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.fill("#username", "audi")
    page.fill("#password", "audi-password")
    page.click("#login-submit")
    page.wait_for_url(console.url + "/")
    for path in PAGES:
        page.goto(console.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
    context.close()


def test_language_toggle_keeps_the_review_position(browser: object, console: Console) -> None:
    page, _ = _login(browser, console, "audi", "audi-password")
    assert "j/k" in (page.text_content(".keys-help") or "") and "setujui" not in (
        page.text_content(".keys-help") or ""
    )  # an auditor is not told about keys for actions she cannot take
    page.keyboard.press("j")  # type: ignore[attr-defined]
    page.wait_for_selector("text=Kandidat 2 dari")  # type: ignore[attr-defined]
    shown = page.text_content("#listing-key")  # type: ignore[attr-defined]
    page.click("#lang-toggle")  # type: ignore[attr-defined]
    page.wait_for_selector("text=Candidate 2 of")  # type: ignore[attr-defined]
    assert page.text_content("#listing-key") == shown  # type: ignore[attr-defined]
    assert "after=" in page.url  # type: ignore[attr-defined]
    page.click("#lang-toggle")  # type: ignore[attr-defined]
    page.wait_for_selector("text=Kandidat 2 dari")  # type: ignore[attr-defined]
    page.context.close()  # type: ignore[attr-defined]


def test_auditor_verifies_evidence_now(browser: object, console: Console) -> None:
    """Verifying is audit work: the auditor has the button, and it answers in place (HTMX)."""
    page, problems = _login(browser, console, "audi", "audi-password")
    page.goto(console.url + "/evidence/1")  # type: ignore[attr-defined]
    page.click("#verify-button")  # type: ignore[attr-defined]
    page.wait_for_selector("#verify-result .ok, #verify-result .error")  # type: ignore[attr-defined]
    assert page.locator("#verify-summary").count() == 1  # type: ignore[attr-defined]
    assert not [p for p in problems if "Content Security Policy" in p], problems
    page.context.close()  # type: ignore[attr-defined]
