"""What one replica module tells the rest of the sandbox about its platform: one :class:`ReplicaSpec`.

Every ``sandbox/platforms/<name>.py`` exports ``SPEC = ReplicaSpec(...)``; the catalog generator, the state
(takedowns, relistings, blocklists, URL lookups) and the app (mounts) read platforms only from the loaded
specs (:mod:`sandbox.replicas`), never by name.

- ``share`` — the platform's weight in a generated catalog; ``created_days`` — how many days before day 0
  its listings were created (a closed platform's are old).
- ``mounts`` — host key → ``routes(state)`` factory (one platform may answer on several hosts).
- ``page_path(listing)`` — (host key, path) of a listing's public page, as on the real host.
- ``new_ids(gen, shop, title)`` — a new listing id and the ``extra`` fields its URLs need (the id scheme);
  ``late_ids(gen)`` — ids drawn after the rest of the listing (e.g. the same item's id on another platform);
  ``shop_id(gen)`` and ``shop_name(handles, name, fresh)`` — the seller id scheme and, where the platform
  names shops by the seller's handle, that name.
- ``check_id(listing_id, extra)`` — a catalog file's id checked against the scheme (a message, or None).
- ``takedown`` — :class:`Policy`: compliance, delays, hidden share, relisting; ``blocklist`` — keywords the
  platform refuses itself; ``url_patterns`` — listing ids read from a URL path when the exact page path is
  unknown (e.g. a shortened slug).
- ``closed`` — the platform stopped trading (every listing is REMOVED; its sellers moved to
  ``successors``); ``relists_elsewhere`` — a relisting after a takedown always moves platform;
  ``relist_destination`` — relistings that move platform can land here; ``sponsored_share`` — ads.

The shapes of ``gen`` (:class:`sandbox.catalog.IdGen`) and ``listing``
(:class:`sandbox.catalog.CatalogListing`) are the catalog's; this module only names them, so it imports
nothing of the sandbox at run time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from sandbox.catalog import CatalogListing, IdGen
    from sandbox.state import SandboxState

Shop = tuple[str, str, str]  # (seller id, shop name, shop domain)


@dataclass(frozen=True, slots=True)
class Policy:
    """How a platform answers takedown requests (drawn per listing, deterministically)."""

    compliance: float
    min_delay: int
    max_delay: int
    hidden_share: float
    relist_share: float
    relist_after: tuple[int, int]


def _digits8(gen: IdGen) -> str:
    return gen.unique(lambda: gen.digits(8))


@dataclass(frozen=True)
class ReplicaSpec:
    platform: str
    share: float
    mounts: Mapping[str, Callable[[SandboxState], list[BaseRoute]]]
    page_path: Callable[[CatalogListing], tuple[str, str]]
    new_ids: Callable[[IdGen, Shop, str], tuple[str, dict[str, str]]]
    takedown: Policy
    shop_id: Callable[[IdGen], str] = _digits8
    shop_name: Callable[[Sequence[str], str, bool], str] | None = None
    late_ids: Callable[[IdGen], dict[str, str]] | None = None
    check_id: Callable[[str, dict[str, str]], str | None] | None = None
    blocklist: tuple[str, ...] = ()
    url_patterns: tuple[re.Pattern[str], ...] = ()
    sponsored_share: float = 0.0
    created_days: tuple[int, int] = (0, 300)
    closed: bool = False
    successors: tuple[str, ...] = ()
    relists_elsewhere: bool = False
    relist_destination: bool = False


__all__ = ["Policy", "ReplicaSpec", "Shop"]
