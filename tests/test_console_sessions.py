"""Server-side sessions, sign-in limits under concurrency, trusted proxies, and reads kept out of custody.

- A copied cookie stops working the moment its session ends: logout, disabling the user, a password
  change, ``tertib users logout``, idle and absolute timeouts.
- 100 parallel wrong passwords against a real server (uvicorn on loopback): exactly the free attempts
  reach the password check, the rest are refused with 429 and Retry-After; a stranger's guesses do not
  keep the owner out of the browser she signed in with before (device cookie).
- ``X-Forwarded-For`` counts only from a trusted proxy.
- Downloading a WACZ adds no custody entry; the access log (table and HTTP log) says who took what.

Every test runs on SQLite and on PostgreSQL (the compare-and-set counters must hold on both).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import console_sample as sample
import httpx
import pytest
import uvicorn
from console_helpers import PASSWORDS, installation_fixtures, served, sign_in
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from console import auth
from console.app import create_app
from console.limiter import client_address, parse_networks
from crawler.config import Settings
from sandbox.server import free_port
from storage.db import Database
from storage.models import AccessLogEntry, ConsoleSession, CustodyEntry, LoginLimit

pytestmark = pytest.mark.both_backends

PASSWORD = PASSWORDS["siti"]


def _seed(db: Database, settings: Settings) -> None:
    sample.seed_sample(db, settings)


templates, template, settings = installation_fixtures(
    "sessions", _seed, users=("siti", "audi"), console_login_backoff=600
)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.db_url)
    yield database
    database.dispose()


def app_client(db: Database, settings: Settings, **kw: object) -> TestClient:
    return TestClient(create_app(settings, db, **kw))  # type: ignore[arg-type]


def schedules(db: Database) -> set[str]:
    from storage.models import Sweep

    with db.session() as s:
        return set(s.scalars(select(Sweep.name)))


# -- sessions ----------------------------------------------------------------------------------


def test_logout_kills_a_copied_cookie(db: Database, settings: Settings) -> None:
    with app_client(db, settings) as browser, app_client(db, settings) as thief:
        token = sign_in(browser)
        cookie = browser.cookies.get(auth.SESSION_COOKIE)
        assert cookie
        thief.cookies.set(auth.SESSION_COOKIE, cookie)
        assert thief.get("/review", follow_redirects=False).status_code == 200  # the copy works… until
        r = browser.post("/logout", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 303
        assert thief.get("/review", follow_redirects=False).status_code == 303  # …logout: at once
        r = thief.post(
            "/sweeps", data={"name": "copied", "cron": "0 7 * * *", "csrf": token}, follow_redirects=False
        )
        assert r.status_code in (303, 401) and r.headers.get("location", "").startswith("/login")
        assert "copied" not in schedules(db)
    with db.session() as s:
        row = s.scalars(select(ConsoleSession)).one()
        assert row.revoked_reason == "logout" and row.id != cookie  # the table keeps only a digest


def test_disable_password_change_and_logout_everywhere_end_sessions(db: Database, settings: Settings) -> None:
    with app_client(db, settings) as a, app_client(db, settings) as b:
        for action in ("password", "logout", "disable"):
            sign_in(a)
            sign_in(b)
            assert a.get("/", follow_redirects=False).status_code == 200
            with db.session() as s:
                if action == "password":
                    auth.set_password(s, "siti", PASSWORD, actor="admin")
                elif action == "logout":
                    assert auth.logout_everywhere(s, "siti", actor="admin") == 2
                else:
                    auth.disable_user(s, "siti", actor="admin")
            assert a.get("/", follow_redirects=False).status_code == 303, action
            assert b.get("/", follow_redirects=False).status_code == 303, action
        r = a.post("/login", data={"username": "siti", "password": PASSWORD})
        assert r.status_code == 401  # disabled
    with db.session() as s:
        reasons = [
            r.revoked_reason for r in s.scalars(select(ConsoleSession).order_by(ConsoleSession.created_at))
        ]
        actions = [
            e.action for e in s.scalars(select(CustodyEntry).where(CustodyEntry.object_type == "user"))
        ]
    assert reasons == ["password_changed"] * 2 + ["revoked"] * 2 + ["disabled"] * 2
    assert actions[-3:] == ["user_password", "user_logout", "user_disable"]


def test_idle_and_absolute_timeouts(db: Database, settings: Settings) -> None:
    with app_client(db, settings) as client:
        sign_in(client)
        with db.session() as s:
            s.execute(update(ConsoleSession).values(last_seen_at=auth.utcnow() - timedelta(minutes=31)))
        assert client.get("/", follow_redirects=False).status_code == 303  # idle 31 min > 30
        sign_in(client)
        with db.session() as s:
            s.execute(
                update(ConsoleSession)
                .where(ConsoleSession.revoked_at.is_(None))
                .values(expires_at=auth.utcnow() - timedelta(seconds=1))
            )
        assert client.get("/", follow_redirects=False).status_code == 303  # past its absolute end
        sign_in(client)
        assert client.get("/", follow_redirects=False).status_code == 200


def test_users_cli_password_sessions_logout(
    db: Database, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_console import run_cli

    monkeypatch.setenv("TERTIB_DATABASE_URL", settings.db_url)  # the CLI and the console share one database

    with app_client(db, settings) as client:
        sign_in(client)
        args = ["--data-dir", str(settings.data_dir), "users"]
        code, out, _ = run_cli([*args, "sessions"], capsys)
        assert code == 0 and "siti" in out and "Open sessions (1)" in out
        code, out, _ = run_cli([*args, "logout", "siti"], capsys)
        assert code == 0 and "ended 1 session" in out
        assert client.get("/", follow_redirects=False).status_code == 303
        sign_in(client)
        code, out, err = run_cli([*args, "password", "siti", "--password-stdin"], capsys, "baru-sekali-123\n")
        assert code == 0, err
        assert client.get("/", follow_redirects=False).status_code == 303
        sign_in(client, password="baru-sekali-123")
        code, _, err = run_cli([*args, "password", "siti", "--password-stdin"], capsys, "short\n")
        assert code == 2 and "too short" in err


# -- sign-in limits ----------------------------------------------------------------------------


@pytest.fixture
def server(db: Database, settings: Settings) -> Iterator[str]:
    """The console under uvicorn in a thread on a free loopback port (real concurrency: its threadpool)."""
    config = uvicorn.Config(create_app(settings, db), host="127.0.0.1", port=free_port(), log_level="error")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{config.port}"
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield url
    srv.should_exit = True
    thread.join(timeout=10)


async def _parallel_logins(
    url: str, name: str, password: str, n: int, headers: dict[str, str] | None = None
) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=120, headers=headers) as client:
        return list(
            await asyncio.gather(
                *(client.post("/login", data={"username": name, "password": password}) for _ in range(n))
            )
        )


def test_100_parallel_wrong_logins_are_refused_after_the_limit(server: str, db: Database) -> None:
    # the owner signed in once from her own browser: it holds a device cookie for the account
    owner = httpx.Client(base_url=server)
    assert owner.post("/login", data={"username": "siti", "password": PASSWORD}).status_code == 303
    assert owner.cookies.get("tertib_device", path="/login")
    owner.cookies.delete(auth.SESSION_COOKIE)

    answers = asyncio.run(_parallel_logins(server, "siti", "wrong-password", 100))
    codes = [r.status_code for r in answers]
    assert codes.count(401) == 5 and codes.count(429) == 95, sorted(codes)
    assert all(int(r.headers["retry-after"]) > 0 for r in answers if r.status_code == 429)
    with db.session() as s:
        assert s.get(LoginLimit, "account:siti").attempts == 5  # type: ignore[union-attr]
    # the right password from a browser that never signed in here waits too (no shortcut for guessers)…
    stranger = httpx.Client(base_url=server)
    r = stranger.post("/login", data={"username": "siti", "password": PASSWORD})
    assert r.status_code == 429 and "Coba lagi dalam" in r.text
    # …but the owner's own browser gets in: the stranger's guesses count on the account, hers on her device
    r = owner.post("/login", data={"username": "siti", "password": PASSWORD})
    assert r.status_code == 303 and owner.get("/").status_code == 200
    # another account from the same address is not affected
    r = stranger.post("/login", data={"username": "audi", "password": "audi-password"})
    assert r.status_code == 303


def test_client_address_counts_only_from_trusted_proxies(db: Database, settings: Settings) -> None:
    trusted = parse_networks(["10.0.0.0/8", "::1"])
    assert client_address("10.1.2.3", "203.0.113.7, 10.9.9.9", trusted) == "203.0.113.7"
    assert client_address("10.1.2.3", "1.1.1.1, 203.0.113.7", trusted) == "203.0.113.7"  # rightmost untrusted
    assert client_address("198.51.100.1", "203.0.113.7", trusted) == "198.51.100.1"  # not from a proxy
    assert client_address("10.1.2.3", "not-an-ip", trusted) == "10.1.2.3"
    assert client_address("10.1.2.3", None, trusted) == "10.1.2.3"
    with pytest.raises(ValueError, match="not an IP"):
        parse_networks(["10.0.0.0/33"])
    # through the app: behind a trusted proxy each client has its own counter
    app = create_app(dataclasses.replace(settings, console_client_free=3), db, trusted_proxies=["127.0.0.1"])
    with TestClient(app, client=("127.0.0.1", 5000)) as proxy:
        for n in range(3):  # three accounts from one client address use up its free attempts
            r = proxy.post(
                "/login",
                data={"username": f"x{n}", "password": "x" * 9},
                headers={"X-Forwarded-For": "203.0.113.7"},
            )
            assert r.status_code == 401
        r = proxy.post(
            "/login", data={"username": "y", "password": "x" * 9}, headers={"X-Forwarded-For": "203.0.113.7"}
        )
        assert r.status_code == 429
        r = proxy.post(
            "/login",
            data={"username": "siti", "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.8"},
            follow_redirects=False,
        )
        assert r.status_code == 303  # another client behind the same proxy
    with db.session() as s:
        keys = set(s.scalars(select(LoginLimit.key)))
    assert {"client:203.0.113.7", "client:203.0.113.8"} <= keys and "client:127.0.0.1" not in keys
    # without --trusted-proxy the header is the client's own words: ignored
    with app_client(db, settings) as direct:
        direct.post(
            "/login", data={"username": "z", "password": "x" * 9}, headers={"X-Forwarded-For": "198.51.100.9"}
        )
    with db.session() as s:
        assert s.get(LoginLimit, "client:198.51.100.9") is None and s.get(LoginLimit, "client:testclient")


def _attack_then_colleagues(url: str) -> dict[str, int]:
    """Through a proxy on 127.0.0.1: the owner signs in once from her browser (client .8); an attacker
    (client .7) sends 100 parallel wrong passwords for her account, then one wrong password each for three
    other names (past the server's six free attempts per client); then a colleague (client .9) and the
    owner sign in with their right passwords."""

    def behind(ip: str) -> httpx.Client:
        return httpx.Client(base_url=url, headers={"X-Forwarded-For": ip}, timeout=120)

    attacker = {"X-Forwarded-For": "203.0.113.7"}
    with behind("203.0.113.8") as owner, behind("203.0.113.9") as colleague:
        assert owner.post("/login", data={"username": "siti", "password": PASSWORD}).status_code == 303
        owner.cookies.delete(auth.SESSION_COOKIE)  # signed out; her browser keeps its device cookie
        guessed = asyncio.run(_parallel_logins(url, "siti", "wrong-password", 100, attacker))
        with httpx.Client(base_url=url, headers=attacker) as spray:
            for n in range(3):
                spray.post("/login", data={"username": f"tebak{n}", "password": "wrong-password"})
        return {
            "checked": sum(1 for r in guessed if r.status_code == 401),
            "other": sum(1 for r in guessed if r.status_code not in (401, 429)),
            "colleague": colleague.post(
                "/login", data={"username": "audi", "password": PASSWORDS["audi"]}
            ).status_code,
            "owner": owner.post("/login", data={"username": "siti", "password": PASSWORD}).status_code,
        }


def test_behind_a_trusted_proxy_one_clients_guesses_lock_out_nobody_else(
    settings: Settings, tmp_path: Path
) -> None:
    """``tertib serve --trusted-proxy``: the attacker's guesses count on the attacker's address and on the
    account he guesses; a colleague behind the same proxy and the owner's own browser still get in.
    Without the option every client shares the proxy's address, and the same attack locks the colleague out
    (the contrast shows the test can fail)."""
    import shutil

    untrusted = tmp_path / "untrusted"
    shutil.copytree(settings.data_dir, untrusted)
    # a back-off longer than the attack takes on a loaded machine (the default 15 s could end mid-burst)
    limits = {"console_login_backoff": "600", "console_client_free": "6"}
    env = {"database_url": settings.database_url, **limits}
    with served(settings.data_dir, "--trusted-proxy", "127.0.0.1", **env) as url:
        trusted = _attack_then_colleagues(url)
    assert trusted == {"checked": 5, "other": 0, "colleague": 303, "owner": 303}, trusted
    if settings.database_url:  # PostgreSQL: a fresh copy of the same installation for the contrast
        return
    with served(untrusted, **limits) as url:
        shared = _attack_then_colleagues(url)
    assert shared["checked"] == 5 and shared["colleague"] == 429, shared


def test_serve_refuses_a_bad_trusted_proxy(capsys: pytest.CaptureFixture[str]) -> None:
    from test_console import run_cli

    code, _, err = run_cli(["serve", "--trusted-proxy", "10.0.0.0/33"], capsys)
    assert code == 2 and "not an IP address or CIDR block" in err and "Traceback" not in err


# -- reads are not custody events -------------------------------------------------------------


def test_wacz_download_is_in_the_access_log_not_in_custody(
    db: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from crawler.evidence.signing import ensure_keypair

    ensure_keypair(settings.keys_dir)
    with db.session() as s:
        before = len(list(s.scalars(select(CustodyEntry.seq))))
    caplog.set_level(logging.INFO, logger="tertib.console.access")
    with app_client(db, settings) as client:
        sign_in(client)
        r = client.get("/evidence/1/wacz")
        assert r.status_code == 200 and r.content[:2] == b"PK"
    with db.session() as s:
        assert len(list(s.scalars(select(CustodyEntry.seq)))) == before  # a read changed nothing
        row = s.scalars(select(AccessLogEntry)).one()
    assert (row.actor, row.action, row.object_type, row.object_id) == (
        "siti",
        "download",
        "wacz",
        "capture:1",
    )
    assert re.fullmatch(r"[0-9a-f]{64}", row.object_digest) and row.bytes == len(r.content)
    lines = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "tertib.console.access"]
    wacz = [line for line in lines if line["path"] == "/evidence/1/wacz"]
    assert (
        wacz and wacz[0]["user"] == "siti" and wacz[0]["status"] == 200 and wacz[0]["bytes"] == len(r.content)
    )
    assert all("password" not in json.dumps(line) for line in lines)


def test_serve_with_two_workers_shares_sessions_and_logs_access(settings: Settings, tmp_path: Path) -> None:
    """``tertib serve --workers 2``: a session opened in one worker is valid in the other, and both write
    the JSON access log."""
    log_file = tmp_path / "access.jsonl"
    with served(
        settings.data_dir, "--workers", "2", "--access-log", str(log_file), database_url=settings.database_url
    ) as url:
        with httpx.Client(base_url=url) as client:
            assert client.post("/login", data={"username": "siti", "password": PASSWORD}).status_code == 303
            codes = {client.get("/review").status_code for _ in range(12)}  # spread over both workers
        assert codes == {200}
    lines = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert sum(1 for line in lines if line["path"] == "/review" and line["user"] == "siti") == 12
