"""Paging for every console list: numbered pages for small in-memory lists, cursors for big tables.

- :func:`page_of` — a page of a list already in memory (terms, offender groups, audit items): page
  numbers are fine when the whole list is a few thousand rows at most.
- Big tables (captures, the review queue, job and sweep runs) are paged by key (*keyset pagination*: "the
  rows after this one"), which costs the same on page 1 and page 5,000; :func:`cursor` and
  :func:`parse_cursor` write and read a ``score:id`` position in the review queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urlencode

T = TypeVar("T")
PAGE_SIZE = 50


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    number: int  # 1-based
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        return (self.number - 1) * self.size + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.total, self.number * self.size)

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def page_of(items: Sequence[T], number: int, size: int = PAGE_SIZE) -> Page[T]:
    """Page ``number`` (1-based; clamped to the pages there are) of ``items``."""
    pages = max(1, -(-len(items) // size))
    number = min(max(1, number), pages)
    start = (number - 1) * size
    return Page(items[start : start + size], number, size, len(items))


def cursor(score: float | None, listing_id: int) -> str:
    """A position in the review queue (score, then id): ``0.93:1234``."""
    return f"{'' if score is None else repr(float(score))}:{listing_id}"


def parse_cursor(text: str) -> tuple[float, int] | None:
    """``score:id`` → (score, id), or None when it is not one."""
    score, sep, ident = text.partition(":")
    if not sep or not ident.isascii() or not ident.isdigit() or len(ident) > 19:
        return None
    try:
        value = float(score)
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return value, int(ident)


def link(path: str, **params: object) -> str:
    """``path?a=1&b=2`` with empty parameters left out (for pager links)."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "", 0) or k == "pos"})
    return f"{path}?{query}" if query else path
