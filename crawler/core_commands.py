"""Core verbs: ``init``, ``status`` and ``demo`` (filled in by the foundation work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the core verbs to the root app."""
