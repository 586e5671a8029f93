"""The console without a browser: auth, CSRF, roles, headers, pages, the JSON API and `tertib users`."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEMPLATE_DB
from fastapi.testclient import TestClient
from sqlalchemy import select

from crawler.cli import main
from crawler.config import Settings, load_settings
from crawler.web import auth, sample
from crawler.web.app import create_app, highlight
from storage.db import Database
from storage.models import CustodyEntry, ReviewDecision, Sweep, User

pytestmark = pytest.mark.both_backends

PASSWORDS = {"siti": "siti-password", "audi": "audi-password", "staf": "staf-password"}


@pytest.fixture(scope="module")
def templates() -> dict[str, tuple[Path, str]]:
    """Seeded templates of this module, by backend: (data dir, PostgreSQL template database or "")."""
    return {}


@pytest.fixture
def template(
    templates: dict[str, tuple[Path, str]],
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> tuple[Path, str]:
    """One seeded data dir per module and backend (sample rows, one exported and rechecked batch, three
    users); on PostgreSQL its database is kept as a template that each test copies."""
    if backend in templates:
        return templates[backend]
    data = tmp_path_factory.mktemp("web") / "data"
    data.mkdir()
    dbname = ""
    url = ""
    if backend == "postgresql":
        server = request.getfixturevalue("pg_server")
        dbname = server.create_database(template=TEMPLATE_DB)
        url = server.url(dbname)
    settings = load_settings(env={}, data_dir=data, database_url=url)
    db = Database(settings.db_url)
    db.migrate()
    sample.seed_sample(db, settings)
    sample.seed_batch(db, settings)
    with db.session() as s:
        auth.add_user(s, "siti", "analyst", PASSWORDS["siti"], actor="test")
        auth.add_user(s, "audi", "auditor", PASSWORDS["audi"], actor="test")
        auth.add_user(s, "staf", "staff", PASSWORDS["staf"], actor="test")
    db.dispose()
    templates[backend] = (data, dbname)
    return templates[backend]


@pytest.fixture
def settings(template: tuple[Path, str], tmp_path: Path, database_url) -> Settings:
    seeded_dir, seeded_db = template
    data = tmp_path / "data"
    shutil.copytree(seeded_dir, data, dirs_exist_ok=True)
    url = database_url("web", template=seeded_db) if seeded_db else ""
    return load_settings(env={}, data_dir=data, database_url=url)


@pytest.fixture
def seeded(settings: Settings) -> Iterator[Database]:
    db = Database(settings.db_url)
    yield db
    db.dispose()


@pytest.fixture
def client(seeded: Database, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, seeded)) as c:
        yield c


def login(client: TestClient, name: str) -> str:
    r = client.post("/login", data={"username": name, "password": PASSWORDS[name]}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/review")
    match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert match
    return match.group(1)


def decisions(db: Database) -> list[tuple[int, str, str]]:
    with db.session() as s:
        return [(d.listing_id, d.decision, d.reviewer) for d in s.scalars(select(ReviewDecision))]


def first_candidate(db: Database) -> int:
    from crawler import review

    with db.session() as s:
        return review.review_queue(s, limit=1)[0].listing_id


# -- auth --------------------------------------------------------------------------------------


def test_pages_need_login_and_cookie_is_strict(client: TestClient) -> None:
    r = client.get("/review?pos=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/review%3Fpos%3D1"
    r = client.post(
        "/login", data={"username": "siti", "password": PASSWORDS["siti"]}, follow_redirects=False
    )
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/").status_code == 200


def test_wrong_password_and_throttle(client: TestClient) -> None:
    for _ in range(5):
        r = client.post("/login", data={"username": "siti", "password": "nope-nope"})
        assert r.status_code == 401
        assert "Nama pengguna atau kata sandi salah" in r.text
    r = client.post("/login", data={"username": "siti", "password": PASSWORDS["siti"]})
    assert r.status_code == 429  # even the right password waits out the window
    # another account from the same address is not affected
    r = client.post(
        "/login", data={"username": "audi", "password": PASSWORDS["audi"]}, follow_redirects=False
    )
    assert r.status_code == 303


def test_throttle_window_ages_out() -> None:
    now = [0.0]
    throttle = auth.LoginThrottle(limit=2, window=10, clock=lambda: now[0])
    throttle.failed("x", "1.2.3.4")
    throttle.failed("x", "1.2.3.4")
    assert throttle.blocked("X", "1.2.3.4") and not throttle.blocked("x", "5.6.7.8")
    now[0] = 11
    assert not throttle.blocked("x", "1.2.3.4")


def test_open_redirect_refused(client: TestClient) -> None:
    r = client.post(
        "/login",
        data={"username": "siti", "password": PASSWORDS["siti"], "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/"


def test_disabled_user_loses_session(client: TestClient, seeded: Database) -> None:
    login(client, "siti")
    with seeded.session() as s:
        auth.disable_user(s, "siti", actor="admin")
    assert client.get("/", follow_redirects=False).status_code == 303
    r = client.post("/login", data={"username": "siti", "password": PASSWORDS["siti"]})
    assert r.status_code == 401


def test_tampered_cookie_rejected(client: TestClient) -> None:
    login(client, "siti")
    value = client.cookies.get(auth.SESSION_COOKIE)
    assert value
    client.cookies.set(auth.SESSION_COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_security_headers(client: TestClient) -> None:
    for path in ("/login", "/static/console.css"):
        h = client.get(path).headers
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert "script-src 'self';" in h["content-security-policy"]
        assert "unsafe-inline" not in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
        assert h["x-frame-options"] == "DENY"


def test_templates_have_no_inline_script() -> None:
    root = Path(__file__).resolve().parents[1] / "crawler" / "web" / "templates"
    for path in root.glob("*.j2"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path.name
        assert not re.search(r"\son[a-z]+=", text), path.name
        assert "style=" not in text, path.name


# -- CSRF and roles ----------------------------------------------------------------------------


def test_decide_needs_csrf_and_records_actor(client: TestClient, seeded: Database) -> None:
    token = login(client, "siti")
    lid = first_candidate(seeded)
    before = decisions(seeded)
    r = client.post(f"/review/{lid}/decide", data={"decision": "approve"}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post(f"/review/{lid}/decide", data={"decision": "approve", "csrf": "x" * 32})
    assert r.status_code == 403
    assert decisions(seeded) == before
    r = client.post(
        f"/review/{lid}/decide", data={"decision": "approve", "csrf": token}, follow_redirects=False
    )
    assert r.status_code == 303
    assert decisions(seeded)[len(before) :] == [(lid, "approve", "siti")]
    # HTMX: token in the header, partial card back
    lid2 = first_candidate(seeded)
    r = client.post(
        f"/review/{lid2}/decide",
        data={"decision": "reject", "reason": "not_clothing"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert r.status_code == 200 and r.text.lstrip().startswith('<div id="card"')
    with seeded.session() as s:
        entry = s.scalars(select(CustodyEntry).order_by(CustodyEntry.seq.desc()).limit(1)).one()
        assert (entry.actor, entry.action, entry.details["decision"]) == ("siti", "review", "reject")


WRITE_ROUTES = [
    ("/review/{lid}/decide", {"decision": "approve"}),
    ("/review/bulk", {"ids": "{lid}", "decision": "approve", "confirm": "yes"}),
    ("/batches", {"name": "x"}),
    ("/batches/TTB-2026-0001/sent", {"platform": "tokopedia", "channel": "portal"}),
    ("/terms/1/approve", {}),
    ("/sweeps", {"name": "nightly", "cron": "0 2 * * *"}),
    ("/sweeps/nightly/pause", {}),
    ("/evidence/1/verify", {}),
]


def test_auditor_is_read_only(client: TestClient, seeded: Database) -> None:
    token = login(client, "audi")
    page = client.get("/review")
    assert page.status_code == 200 and "approve-button" not in page.text and "reject-open" not in page.text
    for path in ("/batches", "/terms", "/sweeps", "/batches/TTB-2026-0001", "/evidence/1", "/review/list"):
        text = client.get(path).text
        assert text.count('name="csrf"') == 1, path  # only the logout form
    lid = first_candidate(seeded)
    before = decisions(seeded)
    for route, form in WRITE_ROUTES:
        data = {k: v.format(lid=lid) for k, v in form.items()}
        r = client.post(route.format(lid=lid), data={**data, "csrf": token}, follow_redirects=False)
        assert r.status_code == 403, route
    assert decisions(seeded) == before


def test_bulk_needs_confirmation(client: TestClient, seeded: Database) -> None:
    token = login(client, "siti")
    lid = first_candidate(seeded)
    r = client.post("/review/bulk", data={"ids": [str(lid)], "decision": "approve", "csrf": token})
    assert r.status_code == 400 and "not confirmed" in r.text
    r = client.post(
        "/review/bulk",
        data={"ids": [str(lid)], "decision": "approve", "confirm": "yes", "csrf": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert (lid, "approve", "siti") in decisions(seeded)


# -- pages -------------------------------------------------------------------------------------


def test_every_page_renders(client: TestClient) -> None:
    login(client, "siti")
    expectations = {
        "/": ["Kandidat menunggu", "<svg", "blibli: 2 of 4"],
        "/review": ["Kandidat 1 dari", '<mark class="sig-pos"', "/blob/", "Riwayat penjual"],
        "/review/list": ["select-all"],
        "/batches": ["TTB-2026-0001", "batch-form"],
        "/batches/TTB-2026-0001": ["tokopedia.xlsx", "manifest.json"],
        "/audit?batch=TTB-2026-0001": ["verdict-table", "REMOVED"],
        "/evidence": ["tokopedia:1001"],
        "/evidence/1": ["sha256:", "verify-button"],
        "/terms": ["Leksikon aktif"],
        "/sweeps": ["Riwayat"],
        "/sellers": ["wa:6281200000001"],
    }
    for path, needles in expectations.items():
        r = client.get(path)
        assert r.status_code == 200, path
        for needle in needles:
            assert needle in r.text, (path, needle)
    client.get("/lang/en")
    assert "Candidates waiting" in client.get("/").text


def test_screenshot_blob_only_when_a_capture_names_it(client: TestClient, seeded: Database) -> None:
    login(client, "siti")
    with seeded.session() as s:
        from storage.models import Capture

        sha = s.scalars(select(Capture.screenshot_sha256)).first()
    assert sha
    r = client.get(f"/blob/{sha}")
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
    assert client.get("/blob/" + "0" * 64).status_code == 404
    assert client.get("/blob/..%2F..%2Fkeys").status_code == 404


def test_batch_file_download_and_traversal(client: TestClient) -> None:
    login(client, "siti")
    r = client.get("/batches/TTB-2026-0001/files/manifest.json")
    assert r.status_code == 200 and b'"files"' in r.content
    assert client.get("/batches/TTB-2026-0001/files/../../keys/signing.key").status_code == 404


def test_mark_sent_schedule_and_term_actions(
    client: TestClient, seeded: Database, settings: Settings
) -> None:
    token = login(client, "staf")
    # create a second batch with a fresh approval, then mark it sent
    lid = first_candidate(seeded)
    client.post(f"/review/{lid}/decide", data={"decision": "approve", "csrf": token})
    r = client.post("/batches", data={"name": "Kedua", "csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    number = r.headers["location"].rsplit("/", 1)[1]
    page = client.get(f"/batches/{number}").text
    platform = re.search(r'name="platform" value="([a-z]+)"', page)
    assert platform
    r = client.post(
        f"/batches/{number}/sent",
        data={"platform": platform.group(1), "channel": "portal", "csrf": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    again = client.post(
        f"/batches/{number}/sent", data={"platform": platform.group(1), "channel": "portal", "csrf": token}
    )
    assert again.status_code == 400 and "already marked sent" in again.text
    # schedules
    r = client.post(
        "/sweeps", data={"name": "malam", "cron": "0 2 * * *", "csrf": token}, follow_redirects=False
    )
    assert r.status_code == 303
    client.post("/sweeps/malam/pause", data={"csrf": token})
    with seeded.session() as s:
        row = s.scalars(select(Sweep).where(Sweep.name == "malam")).one()
        assert row.paused and row.created_by == "staf"
        actors = {(e.actor, e.action) for e in s.scalars(select(CustodyEntry))}
    assert {
        ("staf", "send"),
        ("staf", "schedule_add"),
        ("staf", "schedule_pause"),
        ("staf", "export"),
    } <= actors
    bad = client.post("/sweeps", data={"name": "x", "cron": "not cron", "csrf": token})
    assert bad.status_code == 400


def test_highlight_escapes_and_marks() -> None:
    html = str(
        highlight(
            "Bal <b>Korea</b>\nex korea",
            [{"term": "bal", "span": [0, 3], "weight": 0.5}, {"term": "x", "span": [99, 120], "weight": -1}],
        )
    )
    assert html.startswith('<mark class="sig-pos" title="bal +0.50">Bal</mark>')
    assert "&lt;b&gt;Korea&lt;/b&gt;" in html
    assert "\n" in html


# -- JSON API ----------------------------------------------------------------------------------


def api_token(db: Database, name: str) -> dict[str, str]:
    with db.session() as s:
        return {"Authorization": "Bearer " + auth.issue_token(s, name, actor="test")}


def test_api_roles_and_decisions(client: TestClient, seeded: Database) -> None:
    assert client.get("/api/v1/candidates").status_code == 401
    assert client.get("/api/v1/candidates", headers={"Authorization": "Bearer nope"}).status_code == 401
    analyst, auditor = api_token(seeded, "siti"), api_token(seeded, "audi")
    page = client.get("/api/v1/candidates", headers=auditor).json()
    assert page["total"] == 4 and page["items"][0]["score"] >= page["items"][-1]["score"]
    lid = page["items"][0]["listing_id"]
    body = {"listing_ids": [lid], "decision": "approve"}
    assert client.post("/api/v1/decisions", json=body, headers=auditor).status_code == 403
    r = client.post("/api/v1/decisions", json=body, headers=analyst)
    assert r.status_code == 201 and r.json()["reviewer"] == "siti"
    assert client.get("/api/v1/candidates", headers=analyst).json()["total"] == 3
    assert (
        client.post("/api/v1/decisions", json={**body, "listing_ids": [10**9]}, headers=analyst).status_code
        == 404
    )
    rows = client.get("/api/v1/rechecks?batch=TTB-2026-0001", headers=auditor).json()
    assert {r["verdict"] for r in rows} >= {"REMOVED", "LIVE"}
    assert client.get("/api/v1/batches", headers=auditor).json()[0]["number"] == "TTB-2026-0001"
    terms = client.get("/api/v1/terms?status=active", headers=auditor).json()
    assert terms and all(t["status"] == "active" for t in terms)
    # found by the fuzz test: odd references are client errors, never 500
    assert client.get("/api/v1/batches/%C2%B9", headers=auditor).status_code == 422
    assert client.get("/api/v1/batches/" + "9" * 30, headers=auditor).status_code == 400
    big = {"listing_ids": [2**63], "decision": "reject"}
    assert client.post("/api/v1/decisions", json=big, headers=analyst).status_code == 422
    # a session cookie is not an API credential
    login(client, "siti")
    assert client.get("/api/v1/candidates").status_code == 401


# -- users CLI ---------------------------------------------------------------------------------


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str], stdin: str = "") -> tuple[int, str, str]:
    import io
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.stdin = old
    out = capsys.readouterr()
    return code, out.out, out.err


def test_users_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        ["users", "add", "rina", "--role", "staff", "--password-stdin"], capsys, "rahasia-123\n"
    )
    assert code == 0 and "added rina" in out
    code, _, err = run_cli(
        ["users", "add", "rina", "--role", "staff", "--password-stdin"], capsys, "rahasia-123\n"
    )
    assert code == 1 and "exists already" in err
    code, _, err = run_cli(
        ["users", "add", "x", "--role", "boss", "--password-stdin"], capsys, "rahasia-123\n"
    )
    assert code == 2 and "unknown role" in err
    code, _, err = run_cli(["users", "add", "y", "--role", "staff", "--password-stdin"], capsys, "short\n")
    assert code == 2 and "too short" in err
    code, out, _ = run_cli(["users", "token", "rina"], capsys)
    token = out.strip()
    assert code == 0 and token.startswith("tt_")
    from crawler import cli_common

    with cli_common.database().session() as s:
        user: Any = s.scalars(select(User).where(User.name == "rina")).one()
        assert user.password_hash.startswith("$argon2id$")
        assert user.api_token_hash == auth.token_digest(token) and token not in user.api_token_hash
    code, out, _ = run_cli(["users", "list"], capsys)
    assert "rina" in out and "staff" in out
    code, out, _ = run_cli(["users", "disable", "rina"], capsys)
    assert code == 0
    code, _, err = run_cli(["users", "disable", "nobody"], capsys)
    assert code == 1 and "no such user" in err
