"""The console in the real Debian Chromium (Playwright) against `tertib serve` on loopback.

One server per module: a temp data dir seeded with the sample installation (rows inserted directly, one
batch exported by the real exporter and rechecked), accounts made with `tertib users add --password-stdin`,
then `tertib serve --port P` as a subprocess. Decisions are checked in the database afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from crawler.config import CHROMIUM_ARGS, load_settings
from crawler.web import sample
from storage.db import Database
from storage.models import CustodyEntry, ReviewDecision

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"
ARGS = list(CHROMIUM_ARGS)
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Console:
    url: str
    db: Database
    data_dir: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    base = tmp_path_factory.mktemp("console")
    data = base / "data"
    settings = load_settings(env={}, data_dir=data)
    data.mkdir()
    db = Database(settings.db_url)
    db.migrate()
    sample.seed_sample(db, settings)
    sample.seed_batch(db, settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERTIB_")}
    env["TERTIB_DATA_DIR"] = str(data)
    _tertib(env, "users", "add", "siti", "--role", "analyst", "--password-stdin", stdin="siti-password\n")
    _tertib(env, "users", "add", "audi", "--role", "auditor", "--password-stdin", stdin="audi-password\n")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read() if proc.stderr else b""
                raise RuntimeError(f"tertib serve did not start: {err!r}")
            time.sleep(0.2)
        yield Console(url, db, data)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
        db.dispose()


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
