"""Set-at-a-time writes for the hot paths (sweep persistence, evidence and recheck batches).

The ORM's unit of work costs ~0.1-0.2 ms per object; a sweep writes a listing, a sighting and a score per
search result, so the batch writers use Core statements instead: one ``executemany`` per table.

:func:`insert_ids` returns the new rows' ids in row order. PostgreSQL does that with ``RETURNING``
(SQLAlchemy's "insertmanyvalues" keeps the order). On SQLite, ``RETURNING`` in row order makes
SQLAlchemy insert row by row, so it reads ``max(id)`` after the insert instead: the insert takes
SQLite's write lock, which the transaction holds until it ends, and a plain ``executemany`` gives its
rows ``max(rowid) + 1`` one after another, so the batch's ids are the last ``len(rows)`` ids.

:func:`update_many` is one ``executemany`` ``UPDATE … WHERE id = ?`` over rows given as
``{"b_id": …, "b_<column>": …}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session


def table_of(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def insert_ids(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` with one ``executemany``; their ids, in row order."""
    if not rows:
        return []
    if session.get_bind().dialect.name != "sqlite":
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return [int(i) for i in session.scalars(stmt, list(rows))]
    session.execute(insert(table), list(rows))
    last = int(session.scalar(select(func.max(table.c.id))) or 0)
    return list(range(last - len(rows) + 1, last + 1))


def update_many(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """``UPDATE table SET <column> = :b_<column> … WHERE id = :b_id`` for each row.

    Rows may name different columns (each sets only what changed); rows naming the same columns share one
    ``executemany``.
    """
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(name for name in row if name != "b_id"), []).append(row)
    for names, group in shapes.items():
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({name[2:]: bindparam(name, type_=table.c[name[2:]].type) for name in names})
        )
        session.execute(stmt, group)
