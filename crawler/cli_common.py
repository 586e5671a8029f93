"""Shared plumbing for every CLI module: consoles, settings, the database, error exits.

Each command area keeps its Typer app in its own module (``crawler/terms/cli.py``, ``sandbox/cli.py``,
…) and is registered by name in :data:`crawler.cli.COMMANDS`. Commands call :func:`settings` and
:func:`database` instead of building their own, so the ``--data-dir``/``--sandbox`` options and
migrate-on-start apply everywhere.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, NoReturn

from rich.console import Console

from crawler.config import Settings, load_settings
from crawler.errors import TertibError

if TYPE_CHECKING:  # every `tertib` run imports this module; the database stack loads only when used
    from storage.db import Database

console = Console()
err_console = Console(stderr=True)

_overrides: dict[str, object] = {}


def set_overrides(**values: object) -> None:
    """Called by the root callback with global options; clears cached settings and database."""
    _overrides.update({k: v for k, v in values.items() if v is not None})
    settings.cache_clear()
    database.cache_clear()


@cache
def settings() -> Settings:
    return load_settings(**_overrides)  # type: ignore[arg-type]


@cache
def database() -> Database:
    """The installation's database, created and migrated to head on first use.

    First use also creates the signing key pair, so every command works on a fresh data dir (``tertib init``
    does the same explicitly and reports it).
    """
    # imported here, not at the top: `tertib --help`, argument errors and `tertib score` never need
    # SQLAlchemy or the signing keys (the one deliberate exception to imports at module top)
    from crawler.evidence.signing import ensure_keypair
    from storage.db import Database

    s = settings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(s.db_url)
    db.migrate()
    ensure_keypair(s.keys_dir)
    return db


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise SystemExit(code)


def exit_for(exc: TertibError) -> NoReturn:
    fail(str(exc), exc.exit_code)
