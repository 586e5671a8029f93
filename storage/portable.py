"""SQL functions spelled differently by SQLite and PostgreSQL, as one expression each.

Query code uses these instead of ``func.<name>`` when the name is backend-specific, so the same query
runs on both (the suite runs the query tests on both: ``tests/conftest.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class json_array_length(FunctionElement[int]):  # named like the SQL function it stands for
    """Length of a JSON array column: ``json_array_length`` on SQLite, ``jsonb_array_length`` on
    PostgreSQL (JSON columns are jsonb there: ``storage.models.JSONColumn``); NULL for a NULL value."""

    type = Integer()
    inherit_cache = True
    name = "json_array_length"


@compiles(json_array_length)
def _json_array_length(element: json_array_length, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_array_length({compiler.process(element.clauses, **kw)})"


@compiles(json_array_length, "postgresql")
def _jsonb_array_length(element: json_array_length, compiler: SQLCompiler, **kw: Any) -> str:
    return f"jsonb_array_length({compiler.process(element.clauses, **kw)})"
