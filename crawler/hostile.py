"""Showing strings a platform controls without letting them act: HTML, links, spreadsheets, Markdown.

Sellers write titles, descriptions, shop names, handles and (through the listing pages we store) URLs; they
know tertib reads them. Every output format gets one function here, and every writer uses it:

- :func:`html_environment` — the one way to build a Jinja environment for HTML (console pages, letters,
  the audit report): autoescape is on for every template whatever its file name (``select_autoescape``
  decides by extension, and ``.html.j2`` once slipped through), plus the :func:`safe_url` filter.
- :func:`safe_url` — a URL that may go into ``href``/``src`` or a PDF link: ``http``/``https`` only, no
  ``javascript:``, ``data:``, ``vbscript:`` or credentials; anything else becomes ``None`` (shown as text).
- :func:`spreadsheet_text` — a CSV/XLSX cell that would start a formula in Excel or LibreOffice (``=``,
  ``+``, ``-``, ``@``, tab, carriage return, as OWASP's *CSV Injection* page lists) gets a leading ``'``.
- :func:`markdown_text` — text for a Markdown table cell or link label, with Markdown and HTML
  punctuation backslash-escaped and newlines and pipes removed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Undefined

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_url(value: object) -> str | None:
    """``value`` when it is an absolute ``http(s)`` URL without user info, else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or _CONTROL.search(text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return text


def _href(value: object) -> str:
    """For templates: ``href="{{ url | href }}"`` — the URL, or ``#`` when it is not a safe web link."""
    return safe_url(value) or "#"


def html_environment(directory: Path, *, strict: bool = False, **options: Any) -> Environment:
    """A Jinja environment for HTML under ``directory``: every template autoescaped, ``href`` filter."""
    env = Environment(
        loader=FileSystemLoader(directory),
        autoescape=True,  # whatever the extension: never select_autoescape here
        undefined=StrictUndefined if strict else Undefined,
        **options,
    )
    env.filters["href"] = _href
    env.filters["safe_url"] = safe_url
    return env


def spreadsheet_text(value: str) -> str:
    """``value`` as a spreadsheet shows it as text: a leading ``'`` when it would start a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def markdown_text(value: object) -> str:
    """``value`` safe inside a Markdown table cell or link label (one line, punctuation escaped)."""
    text = _CONTROL.sub(" ", str(value))
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
