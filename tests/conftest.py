"""Shared fixtures: an isolated data dir and database per test, on SQLite and on PostgreSQL.

Modules (or tests) marked ``pytest.mark.both_backends`` run once per backend, with ids ``[sqlite]`` and
``[postgresql]`` (the latter also marked ``postgres``: ``pytest -m postgres`` runs only them, ``-m "not
postgres"`` skips them). On PostgreSQL, ``TERTIB_DATABASE_URL`` points at a fresh database for the test,
so CLI commands and subprocesses (the scheduler's jobs) use it as well as the ``db`` fixture.

The PostgreSQL server is started once per session by :class:`servers.PostgresServer` (``initdb`` in a
temporary directory, a random port on 127.0.0.1), the first time a test needs it. Its template database
is migrated to head once; each test's database is a copy of it (~60 ms). A test marked
``sqlite_only`` inside such a module runs on SQLite alone.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import CephS3Server, PostgresServer

from crawler import cli_common
from storage.db import Database

FIXTURES = Path(__file__).parent / "fixtures"
BACKENDS = ("sqlite", "postgresql")
TEMPLATE_DB = "tertib_template"


# seconds each throwaway server took to start in this session, shown in the run's summary
SERVER_STARTUP: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SERVER_STARTUP:
        started = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in SERVER_STARTUP.items())
        terminalreporter.write_line(f"test servers started: {started}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    node = metafunc.definition
    if node.get_closest_marker("both_backends") is None or node.get_closest_marker("sqlite_only"):
        return
    metafunc.parametrize(
        "backend",
        ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
        indirect=True,
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server, with a template database migrated to head."""
    started = time.monotonic()
    server = PostgresServer().start()
    try:
        server.create_database(name=TEMPLATE_DB)
        template = Database(server.url(TEMPLATE_DB))
        template.migrate()
        template.dispose()
        SERVER_STARTUP["PostgreSQL (with the migrated template)"] = time.monotonic() - started
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[CephS3Server]:
    """The session's radosgw (Ceph) on loopback, started the first time an ``s3`` test needs it."""
    started = time.monotonic()
    server = CephS3Server().start()
    SERVER_STARTUP["radosgw (Ceph mon + memstore OSD + rgw)"] = time.monotonic() - started
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: CephS3Server, monkeypatch: pytest.MonkeyPatch) -> CephS3Server:
    """radosgw with this process's AWS_* variables pointing at it (as a deployment would set them)."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., str]]:
    """``database_url(name, migrated=True, template=None)``: the URL of a new database on this test's
    backend; on PostgreSQL a copy of ``template`` (a database name) when given."""
    created: list[str] = []
    server: PostgresServer | None = request.getfixturevalue("pg_server") if backend == "postgresql" else None

    def make(name: str = "test", *, migrated: bool = True, template: str | None = None) -> str:
        if server is None:
            return f"sqlite:///{tmp_path / (name + '.sqlite3')}"
        dbname = server.create_database(template=template or (TEMPLATE_DB if migrated else None))
        created.append(dbname)
        return server.url(dbname)

    yield make
    if server is not None:
        for dbname in created:
            server.drop_database(dbname)


@pytest.fixture
def make_db(database_url: Callable[..., str]) -> Iterator[Callable[..., Database]]:
    """``make_db(name)``: another migrated database on this test's backend (disposed afterwards)."""
    opened: list[Database] = []

    def make(name: str = "other") -> Database:
        database = Database(database_url(name))
        database.migrate()
        opened.append(database)
        return database

    yield make
    for database in opened:
        database.dispose()


def run_concurrently(url: str, count: int, work: Callable[[Database, int], None]) -> None:
    """Run ``work(database, n)`` in ``count`` threads at once, each with its own ``Database`` on ``url``
    (own engine and connections, as separate processes would have); fails if any of them raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(n: int) -> None:
        own = Database(url)
        try:
            barrier.wait()
            work(own, n)
        except BaseException as exc:  # reported below: no writer may fail
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.fixture(autouse=True)
def _isolated_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, request: pytest.FixtureRequest
) -> Iterator[None]:
    """Every test gets its own data dir and no stray TERTIB_* settings or tertib.toml; on PostgreSQL,
    its own database for ``cli_common.database()`` and subprocesses."""
    for name in list(os.environ):
        if name.startswith("TERTIB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TERTIB_DATA_DIR", str(tmp_path / "data"))
    # a sweep's discovery follow-up would crawl a background and probe new words: only discovery's own
    # end-to-end tests (tests/test_discovery_sweep.py) turn that on, so other sweep tests stay quick
    monkeypatch.setenv("TERTIB_DISCOVERY_CRAWLS", "0")
    if backend == "postgresql":
        url = request.getfixturevalue("database_url")("cli")
        monkeypatch.setenv("TERTIB_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    cli_common._overrides.clear()
    cli_common.settings.cache_clear()
    cli_common.database.cache_clear()
    yield
    _dispose_cached_database()
    cli_common._overrides.clear()
    cli_common.settings.cache_clear()
    cli_common.database.cache_clear()


def _dispose_cached_database() -> None:
    """Close the pool of a database a CLI command opened, so its PostgreSQL database can be dropped."""
    if cli_common.database.cache_info().currsize:
        # a test that broke its settings on purpose opened nothing
        with contextlib.suppress(Exception):
            cli_common.database().dispose()


@pytest.fixture
def db(database_url: Callable[..., str]) -> Iterator[Database]:
    database = Database(database_url("test"))
    database.migrate()
    yield database
    database.dispose()
