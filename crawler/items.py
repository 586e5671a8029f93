"""Typed items that flow from spiders through the pipelines into storage.

Spiders build these from platform responses (``spiders/<platform>.py``); nothing downstream knows a
platform's JSON shapes. Identity is the frozen :class:`ListingKey` (platform + platform listing id): it
drives de-duplication, storage keys, evidence file names and rechecks.

``Listing`` is a plain dataclass rather than a ``scrapy.Item`` so that parsers, the sandbox, the scorer
and the CLI can share it without importing Scrapy; Scrapy accepts dataclass items natively.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any

from crawler.limits import clip_fields


@dataclass(frozen=True, slots=True, order=True)
class ListingKey:
    platform: str
    listing_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.listing_id}"

    @classmethod
    def parse(cls, text: str) -> ListingKey:
        platform, sep, listing_id = text.partition(":")
        if not sep or not platform or not listing_id:
            raise ValueError(f"not a listing key (platform:id): {text!r}")
        return cls(platform, listing_id)


class Verdict(enum.StrEnum):
    """What a recheck (or a detail fetch) could say about a listing."""

    LIVE = "LIVE"
    REMOVED = "REMOVED"
    HIDDEN = "HIDDEN"
    UNOBSERVABLE = "UNOBSERVABLE"


@dataclass(slots=True)
class Listing:
    """One listing as a platform showed it, plus provenance of where we saw it."""

    platform: str
    listing_id: str
    url: str
    title: str
    description: str = ""
    price: int | None = None  # whole rupiah
    seller_id: str | None = None
    seller_name: str | None = None
    seller_city: str | None = None
    shop_url: str | None = None
    image_url: str | None = None
    category: str | None = None
    condition: str | None = None  # "NEW" / "USED" when the platform says
    sold_text: str | None = None
    sponsored: bool = False
    status: str | None = None  # platform status string, e.g. ACTIVE, BANNED, normal
    extra_ids: dict[str, str] = field(default_factory=dict)  # e.g. {"tiktokshop_product_id": "…"}
    raw: dict[str, Any] = field(default_factory=dict)  # selected raw fields, kept with the sighting
    # provenance, filled by the spider
    query: str | None = None
    page: int | None = None
    rank: int | None = None
    source_url: str | None = None  # the search/detail response URL this came from
    contact_handles: list[str] = field(default_factory=list)  # "wa:62812…", "ig:@handle" found in text
    # where the platform says the item ships from: True = from abroad (cross-border seller, "Luar Negeri"
    # shop location, LazGlobal …), False = the platform says it is a domestic listing, None = not said.
    # ``origin_facts`` are the platform's own words behind it (``shopee shop_location="Luar Negeri"``),
    # quoted in the export's basis column as evidence of import origin.
    ships_from_abroad: bool | None = None
    origin_facts: list[str] = field(default_factory=list)
    # filled by pipelines
    score: dict[str, Any] | None = None
    capture_id: int | None = None
    # evidence of where it came from (crawler.evidence.capture.HttpExchange objects); not serialised
    exchanges: list[Any] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        # every platform string cut to its documented length before anything reads it (crawler/limits.py)
        clip_fields(self)

    @property
    def key(self) -> ListingKey:
        return ListingKey(self.platform, self.listing_id)

    @property
    def listing_key(self) -> str:
        return f"{self.platform}:{self.listing_id}"  # str(self.key), without building a ListingKey

    def text(self) -> str:
        """The text the scorer reads: title, then description."""
        return f"{self.title}\n{self.description}" if self.description else self.title

    def to_dict(self) -> dict[str, Any]:
        """Plain data for storage and evidence metadata (containers copied one level, not deep-copied:
        ``dataclasses.asdict`` cost ~4 ms per listing on large ``raw`` dicts in the sweep profile)."""
        data: dict[str, Any] = {}
        for name in _LISTING_FIELDS:
            value = getattr(self, name)
            if isinstance(value, dict):
                value = dict(value)
            elif isinstance(value, list):
                value = list(value)
            data[name] = value
        data["listing_key"] = self.listing_key
        return data


_LISTING_FIELDS = tuple(f.name for f in fields(Listing) if f.name != "exchanges")


@dataclass(frozen=True, slots=True)
class Block:
    """A response that is not content: captcha, login wall, rate limit, anti-bot denial."""

    platform: str
    reason: str  # short machine word: captcha, login_wall, rate_limited, akamai, signature, slider …
    detail: str = ""


@dataclass(slots=True)
class SearchPage:
    """What a parser read from one search response."""

    platform: str
    listings: list[Listing] = field(default_factory=list)
    total: int | None = None
    has_more: bool = False
    block: Block | None = None
    query_blocked: bool = False  # the platform itself refuses this keyword (a finding)
    query_blocked_detail: str = ""
    related_terms: list[str] = field(default_factory=list)  # platform suggestions, for discovery
    shape_ok: bool = True  # False when the profile's JSON paths did not match
    missing_paths: list[str] = field(default_factory=list)  # the required paths that did not match
    shape: str = ""  # which of a platform's known response shapes this was (e.g. "searchProductV5")


@dataclass(slots=True)
class CheckResult:
    """What a detail/recheck fetch says about one listing, with the rule that decided it."""

    platform: str
    listing_id: str
    verdict: Verdict
    rule: str  # e.g. "tokopedia.gql_error_2001", "shopee.mfe_error_266900002", "blibli.http_404"
    signal: str = ""  # the observed value the rule fired on
    listing: Listing | None = None


@dataclass(slots=True)
class BlockedAttempt:
    """A request whose answer was not content (block, captcha, login wall, 429, 5xx, malformed).

    Recorded as an UNOBSERVABLE attempt with its evidence, never parsed as data.
    """

    platform: str
    url: str
    reason: str
    query: str | None = None
    page: int | None = None
    listing_key: str | None = None
    exchange: Any = None
    final: bool = True  # False while it will still be retried


@dataclass(slots=True)
class QueryFinding:
    """A platform refused a keyword itself (Tokopedia ``isQuerySafe=false``): a finding, not "0 results"."""

    platform: str
    query: str
    kind: str = "query_blocked"
    detail: str = ""
