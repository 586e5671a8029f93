"""The console as an ASGI application factory, for ``tertib serve --workers N``.

uvicorn starts each worker process by importing :func:`app` (``factory=True``); the serving command
passes what the workers need in the ``TERTIB_CONSOLE_SERVE`` environment variable (JSON: the data dir
and database URL as the command resolved them, cookie and proxy options, the access log target), and
each worker builds its own :class:`storage.db.Database` and app from it. Sessions, sign-in limits and the
access log live in the database and in one append-only file, so workers share them.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI

from console.middleware import access_log
from crawler.config import load_settings
from crawler.errors import UsageError
from storage.db import Database

ENV = "TERTIB_CONSOLE_SERVE"


@dataclass(frozen=True)
class ServeOptions:
    data_dir: str = ""  # as the serving command resolved them (--data-dir, environment, tertib.toml)
    database_url: str = ""
    secure_cookies: bool = False
    trusted_proxies: tuple[str, ...] = ()
    access_log: str = "off"  # a file path, "-" (stderr) or "off"

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeOptions:
        data = json.loads(os.environ[ENV])
        return cls(
            data_dir=str(data["data_dir"]),
            database_url=str(data["database_url"]),
            secure_cookies=bool(data["secure_cookies"]),
            trusted_proxies=tuple(data["trusted_proxies"]),
            access_log=str(data["access_log"]),
        )


def access_log_target(value: str, data_dir: Path) -> str:
    """``--access-log`` as a target: ``off``, ``-`` or a writable file (default in the data dir)."""
    if value in ("off", "-"):
        return value
    path = Path(value) if value else data_dir / "logs" / "console-access.jsonl"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(f"--access-log: cannot write {path}: {exc.strerror or exc}") from None
    return str(path.resolve())


def configure_access_log(target: str) -> None:
    """JSON lines of every request on the ``tertib.console.access`` logger, to ``target``."""
    if target == "off":
        return
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr)
        if target == "-"
        else logging.handlers.WatchedFileHandler(target, encoding="utf-8")
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def app() -> FastAPI:
    """One worker's app (uvicorn calls this in each worker process)."""
    from console.app import create_app

    options = ServeOptions.from_env()
    settings = load_settings(data_dir=options.data_dir or None, database_url=options.database_url or None)
    configure_access_log(options.access_log)
    return create_app(
        settings,
        Database(settings.db_url),
        secure_cookies=options.secure_cookies,
        trusted_proxies=options.trusted_proxies,
        analyze=False,  # the serving command ran ANALYZE once before starting the workers
    )
