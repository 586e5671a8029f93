"""Shared set-up for the console's tests: a seeded installation built once per module and backend and
copied for each test (:func:`installation_fixtures`), signing in, and ``tertib serve`` as a subprocess on a
free loopback port."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TEMPLATE_DB
from fastapi.testclient import TestClient

from console import auth
from console.app import create_app
from crawler.config import Settings, load_settings
from sandbox.server import free_port
from storage.db import Database

ROOT = Path(__file__).resolve().parents[1]
PASSWORDS = {"siti": "siti-password", "audi": "audi-password", "staf": "staf-password"}
ROLES = {"siti": "analyst", "audi": "auditor", "staf": "staff"}
Seed = Callable[[Database, Settings], object]


def installation(
    base: Path, *seeds: Seed, users: tuple[str, ...] = ("siti", "audi", "staf"), database_url: str = ""
) -> Path:
    """A migrated data dir under ``base`` (its database at ``database_url``, else SQLite inside it),
    seeded by ``seeds`` in order, with the given accounts."""
    data = base / "data"
    data.mkdir(parents=True)
    settings = load_settings(env={}, data_dir=data, database_url=database_url)
    db = Database(settings.db_url)
    db.migrate()
    for seed in seeds:
        seed(db, settings)
    with db.session() as s:
        for name in users:
            auth.add_user(s, name, ROLES[name], PASSWORDS[name], actor="test")
    db.dispose()
    return data


def fresh_settings(template: Path, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a private copy of the module's installation (tests may change it freely)."""
    data = tmp_path / "data"
    shutil.copytree(template, data, dirs_exist_ok=True)
    return load_settings(env={}, data_dir=data, **overrides)


def installation_fixtures(
    prefix: str, *seeds: Seed, users: tuple[str, ...] = ("siti", "audi", "staf"), **overrides: Any
) -> tuple[Any, Any, Any]:
    """The fixtures ``templates``, ``template`` and ``settings`` for a console test module, to be assigned
    under those names. The installation is seeded once per module and backend; on PostgreSQL its database
    is kept as a template that each test's ``settings`` copies (modules marked ``both_backends``)."""

    @pytest.fixture(scope="module")
    def templates() -> dict[str, tuple[Path, str]]:
        return {}

    @pytest.fixture
    def template(
        templates: dict[str, tuple[Path, str]],
        backend: str,
        tmp_path_factory: pytest.TempPathFactory,
        request: pytest.FixtureRequest,
    ) -> tuple[Path, str]:
        if backend not in templates:
            dbname = url = ""
            if backend == "postgresql":
                server = request.getfixturevalue("pg_server")
                dbname = server.create_database(template=TEMPLATE_DB)
                url = server.url(dbname)
            data = installation(tmp_path_factory.mktemp(prefix), *seeds, users=users, database_url=url)
            templates[backend] = (data, dbname)
        return templates[backend]

    @pytest.fixture
    def settings(template: tuple[Path, str], tmp_path: Path, database_url: Callable[..., str]) -> Settings:
        data, dbname = template
        url = database_url(prefix, template=dbname) if dbname else ""
        return fresh_settings(data, tmp_path, database_url=url, **overrides)

    return templates, template, settings


@contextmanager
def app_client(settings: Settings, **app_options: Any) -> Iterator[TestClient]:
    db = Database(settings.db_url)
    try:
        with TestClient(create_app(settings, db, **app_options)) as client:
            yield client
    finally:
        db.dispose()


def sign_in(client: TestClient, name: str = "siti", password: str | None = None) -> str:
    """Sign in (303 expected) and return the session's CSRF token."""
    r = client.post(
        "/login", data={"username": name, "password": password or PASSWORDS[name]}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    match = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").text)
    assert match
    return match.group(1)


def tertib_env(data_dir: Path, database_url: str = "", **settings: str) -> dict[str, str]:
    """The environment of a ``tertib`` subprocess: this data dir and database, ``settings`` as
    ``TERTIB_<NAME>`` variables, and no stray ``TERTIB_*`` from the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERTIB_")}
    env["TERTIB_DATA_DIR"] = str(data_dir)
    if database_url:
        env["TERTIB_DATABASE_URL"] = database_url
    env.update({f"TERTIB_{name.upper()}": value for name, value in settings.items()})
    return env


@contextmanager
def served(
    data_dir: Path, *options: str, database_url: str = "", timeout: float = 60, **settings: str
) -> Iterator[str]:
    """``tertib serve`` on a free loopback port as a subprocess (``settings`` as ``TERTIB_*`` variables);
    yields its URL, stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "serve", "--port", str(port), *options],
        env=tertib_env(data_dir, database_url, **settings),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(url + "/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read() if proc.stderr else b""
                raise RuntimeError(f"tertib serve did not start: {err!r}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stderr is not None:  # an unclosed pipe is a ResourceWarning, an error under filterwarnings
            proc.stderr.close()
