"""Logging for every entry point: structured, quiet by default, one handler (ours).

:func:`setup_logging` installs the handler (``tertib -v``: info, ``-vv``: debug); :func:`quiet_libraries`
re-applies the library loggers' levels after Scrapy's own logging setup, which every crawl runs.
"""

from __future__ import annotations

import logging
import sys


def setup_logging(verbose: int = 0) -> None:
    """Structured, quiet-by-default logging on stderr (-v: info, -vv: debug).

    The level sits on our handler, not only on the root logger, because Scrapy resets the root level
    when a crawl starts; crawls run with ``LOG_ENABLED=False`` so this is the only handler.
    """
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_tertib", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler._tertib = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    _LOGGING["level"], _LOGGING["verbose"] = level, verbose
    quiet_libraries()


_LOGGING = {"level": logging.WARNING, "verbose": 0}
_NOISY = ("scrapy", "twisted", "asyncio", "urllib3", "filelock", "alembic", "scrapy-playwright")


def quiet_libraries() -> None:
    """(Re)apply the library loggers' levels. Creating a ``CrawlerProcess`` runs Scrapy's
    ``configure_logging``, which sets the ``scrapy`` logger to DEBUG: without this, every scraped item
    builds a DEBUG log record (~7 % of a sweep's reactor time) that the handler then drops."""
    level, verbose = _LOGGING["level"], _LOGGING["verbose"]
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING) if verbose < 2 else level)
    # Scrapy's cookie handling asks tldextract for the public suffix list, which it tries to download
    # (nothing leaves this machine: it fails) and logs with a traceback before using its bundled copy
    logging.getLogger("tldextract").setLevel(logging.CRITICAL if verbose < 2 else level)


__all__ = ["quiet_libraries", "setup_logging"]
