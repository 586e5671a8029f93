"""Shared plumbing for every CLI module: consoles, settings, the database, error exits.

Each command area keeps its Typer app in its own module (``crawler/terms/cli.py``, ``sandbox/cli.py``,
…) and is registered by name in :data:`crawler.cli.COMMANDS`. Commands call :func:`settings` and
:func:`database` instead of building their own, so the ``--data-dir``/``--sandbox`` options and
migrate-on-start apply everywhere.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path
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
    forget_database()


def forget_database() -> None:
    """Drop the cached database, closing its pooled connections: an engine left to the garbage collector
    leaves its PostgreSQL connections open until then (and a test's database cannot be dropped)."""
    if database.cache_info().currsize:
        database().dispose()  # the cached instance; the engine stays usable by anyone still holding it
    database.cache_clear()


@cache
def settings() -> Settings:
    return load_settings(**_overrides)  # type: ignore[arg-type]


@cache
def database() -> Database:
    """The installation's database, created and migrated to head on first use.

    A database or evidence store that cannot be used (unreachable, wrong credentials, missing bucket,
    Object Lock required but absent) stops the command here with one line. First use also creates the
    signing key pair, so every command works on a fresh data dir (``tertib init``
    does the same explicitly and reports it).
    """
    # imported here, not at the top: `tertib --help`, argument errors and `tertib score` never need
    # SQLAlchemy or the signing keys (the one deliberate exception to imports at module top)
    from crawler.evidence.signing import ensure_keypair
    from storage.db import Database
    from storage.evidence_store import open_store

    s = settings()
    if s.data_dir.exists() and not s.data_dir.is_dir():
        raise TertibError(f"data dir {s.data_dir} is not a directory (TERTIB_DATA_DIR / --data-dir)")
    read_only = data_dir_read_only(s.data_dir)
    if not read_only:
        try:
            s.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TertibError(f"cannot create the data dir {s.data_dir}: {exc.strerror}") from None
    # S3 evidence (bucket, credentials, Object Lock) is checked before anything is written anywhere
    open_store(s)
    try:
        db = Database(s.db_url, read_only=read_only and not s.database_url)
        db.migrate()
    except ImportError as exc:  # e.g. postgresql+psycopg:// without the psycopg package
        raise TertibError(
            f"the database URL needs the Python module {exc.name or exc}, which is not installed"
        ) from None
    if read_only:
        logging.getLogger(__name__).info("data dir %s is read-only: reading only", s.data_dir)
        return db
    ensure_keypair(s.keys_dir)
    _reap(db)
    return db


def data_dir_read_only(path: Path) -> bool:
    """True when the data dir exists but cannot be written (a read-only mount or permissions)."""
    if not path.is_dir():
        return False
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        pass
    return not os.access(path, os.W_OK)


def _reap(db: Database) -> None:
    """Mark this host's runs whose process died ``interrupted`` (one query on a partial index)."""
    from sqlalchemy.exc import OperationalError  # the database stack loads only when used (see above)

    from storage.processes import reap_dead_runs

    try:
        with db.session() as session:
            reap_dead_runs(session)
    except OperationalError as exc:  # a busy database must not stop the command itself
        logging.getLogger(__name__).info("could not check for interrupted runs: %s", exc)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise SystemExit(code)


def exit_for(exc: TertibError) -> NoReturn:
    fail(str(exc), exc.exit_code)
