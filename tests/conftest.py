"""Shared fixtures: an isolated data dir and database per test, real fixtures path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler import cli_common
from storage.db import Database

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own data dir and no stray TERTIB_* settings or tertib.toml."""
    for name in list(os.environ):
        if name.startswith("TERTIB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TERTIB_DATA_DIR", str(tmp_path / "data"))
    # a sweep's discovery follow-up would crawl a background and probe new words: only discovery's own
    # end-to-end tests (tests/test_discovery_sweep.py) turn that on, so other sweep tests stay quick
    monkeypatch.setenv("TERTIB_DISCOVERY_CRAWLS", "0")
    monkeypatch.chdir(tmp_path)
    cli_common._overrides.clear()
    cli_common.settings.cache_clear()
    cli_common.database.cache_clear()
    yield
    cli_common._overrides.clear()
    cli_common.settings.cache_clear()
    cli_common.database.cache_clear()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'test.sqlite3'}")
    database.migrate()
    yield database
    database.dispose()
