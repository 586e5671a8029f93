"""What one sweep crawl is asked to cover: platforms × queries × a window of result pages.

A whole ``tertib sweep`` is one :class:`SweepWork`; a job queue can cut a sweep into shards (some platforms,
a slice of the queries, a page window — :meth:`SweepWork.shards`) and run each shard as an ordinary crawl in
its own process (``tertib sweep --work FILE``, the JSON of :meth:`SweepWork.to_dict`), since a Twisted
reactor runs once per process. The spider (:class:`spiders.sweep.SweepSpider`) takes the work as its one
argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from crawler.errors import UsageError


@dataclass(frozen=True)
class SweepWork:
    """Search every platform in ``platforms`` for every query, result pages ``first_page``..``last_page``.

    A platform's own deepest page (``SiteProfile.max_pages``) still caps the window. Platforms that page by
    scrolling one page (browser platforms) load from the top and keep only the pages in the window.
    """

    platforms: tuple[str, ...]
    queries: tuple[str, ...]
    first_page: int = 1
    last_page: int = 2

    def __post_init__(self) -> None:
        if self.first_page < 1 or self.last_page < self.first_page:
            raise UsageError(f"bad page window {self.first_page}..{self.last_page}: pages count from 1")
        object.__setattr__(self, "platforms", tuple(self.platforms))
        object.__setattr__(
            self, "queries", tuple(dict.fromkeys(q.strip() for q in self.queries if q.strip()))
        )

    @classmethod
    def of(
        cls, platforms: Iterable[str], queries: Iterable[str], *, first_page: int = 1, last_page: int = 2
    ) -> SweepWork:
        return cls(tuple(platforms), tuple(queries), first_page, last_page)

    def shards(self, *, queries_per_shard: int = 0, by_platform: bool = False) -> Iterator[SweepWork]:
        """This work cut into parts that together cover it exactly once (same page window)."""
        groups = [(p,) for p in self.platforms] if by_platform else [self.platforms]
        size = queries_per_shard if queries_per_shard > 0 else max(1, len(self.queries))
        for platforms in groups:
            for start in range(0, len(self.queries), size):
                yield SweepWork(
                    platforms, self.queries[start : start + size], self.first_page, self.last_page
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "platforms": list(self.platforms),
            "queries": list(self.queries),
            "first_page": self.first_page,
            "last_page": self.last_page,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepWork:
        """The work from its JSON form; a missing or mistyped field is a usage error naming it."""
        try:
            platforms = [str(p) for p in data["platforms"]]
            queries = [str(q) for q in data["queries"]]
            first_page = int(data.get("first_page", 1))
            last_page = int(data.get("last_page", 2))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"not a sweep work description ({type(exc).__name__}: {exc})") from None
        return cls(tuple(platforms), tuple(queries), first_page, last_page)


__all__ = ["SweepWork"]
