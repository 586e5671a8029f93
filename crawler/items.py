"""Typed items that flow from spiders through the pipelines into storage.

Spiders build these from platform responses (``spiders/<platform>.py``); nothing downstream knows a
platform's JSON shapes. Identity is the frozen :class:`ListingKey` (platform + platform listing id): it
drives de-duplication, storage keys, evidence file names and rechecks.

``Listing`` is a plain dataclass rather than a ``scrapy.Item`` so that parsers, the sandbox, the scorer
and the CLI can share it without importing Scrapy; Scrapy accepts dataclass items natively.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from crawler.evidence.exchange import Exchange
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


@dataclass(frozen=True, slots=True)
class Score:
    """What the scorer says about a listing's text: the rules and, when one is active, the learned model.

    ``value`` in [0, 1] and its ``verdict`` (strong / candidate / weak / clear) decide what happens
    next; ``signals`` explain the rules' part (term, span, weight, role, matched text —
    :mod:`crawler.terms.scorer`). With a model (``model_version`` set) ``value`` is the model's calibrated
    ``probability`` and ``rule_score`` what the rules alone said; for weak-or-more verdicts (None
    otherwise) ``top_features`` lists the features that moved the score, with spans where they rest on
    words, and ``product`` the product-type facts the model used.

    Mappable: :meth:`to_dict` is the stored form (``Score.explanation`` rows, evidence metadata records,
    ``Listing.to_dict``) and :meth:`from_dict` reads it back; the model's keys appear only when a model
    scored, so rule-based scores keep their shape.
    """

    value: float
    verdict: str
    text: str = ""
    signals: Sequence[Mapping[str, Any]] = ()
    scorer_version: str = ""
    lexicon_hash: str = ""
    rule_score: float | None = None
    probability: float | None = None
    model_version: str | None = None  # None: the rules alone scored
    top_features: Sequence[Mapping[str, Any]] | None = None  # None: not listed
    product: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "score": self.value,
            "verdict": self.verdict,
            "signals": [dict(s) for s in self.signals],
            "scorer_version": self.scorer_version,
            "lexicon_hash": self.lexicon_hash,
        }
        if self.model_version is not None:
            data["rule_score"] = self.rule_score
            data["probability"] = self.probability
            data["model_version"] = self.model_version
            if self.top_features is not None:
                data["features"] = [dict(f) for f in self.top_features]
                data["product"] = dict(self.product) if self.product is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Score:
        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        features = data.get("features")
        product = data.get("product")
        return cls(
            value=float(data["score"]),
            verdict=str(data["verdict"]),
            text=str(data.get("text") or ""),
            signals=tuple(dict(s) for s in data.get("signals") or ()),
            scorer_version=str(data.get("scorer_version") or ""),
            lexicon_hash=str(data.get("lexicon_hash") or ""),
            rule_score=number("rule_score"),
            probability=number("probability"),
            model_version=None if "model_version" not in data else str(data["model_version"] or ""),
            top_features=None if features is None else tuple(dict(f) for f in features),
            product=None if product is None else dict(product),
        )


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
    # ids of the same item on another platform, e.g. {"<platform>_product_id": "…"}
    extra_ids: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # selected raw fields, kept with the sighting
    # provenance, filled by the spider
    query: str | None = None
    page: int | None = None
    rank: int | None = None
    source_url: str | None = None  # the search/detail response URL this came from
    contact_handles: list[str] = field(default_factory=list)  # "wa:62812…", "ig:@handle" found in text
    # where the platform says the item ships from: True = from abroad (cross-border seller, "Luar Negeri"
    # shop location, a global-store mark …), False = the platform says it is a domestic listing, None = not
    # said. ``origin_facts`` are the platform's own words behind it (``<platform> shop_location="Luar
    # Negeri"``), quoted in the export's basis column as evidence of import origin.
    ships_from_abroad: bool | None = None
    origin_facts: list[str] = field(default_factory=list)
    # filled by pipelines
    score: Score | None = None
    # evidence of where it came from (the search response, then the detail page); not serialised
    exchanges: list[Exchange] = field(default_factory=list, repr=False, compare=False)

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
            elif isinstance(value, Score):
                value = value.to_dict()
            data[name] = value
        data["listing_key"] = self.listing_key
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Listing:
        """A listing from its plain form (:meth:`to_dict`, JSONL); ``listing_key`` is derived, not read.

        An unknown field is a ``ValueError`` naming it: a typo must not silently drop data.
        """
        unknown = set(data) - set(_LISTING_FIELDS) - {"listing_key"}
        if unknown:
            raise ValueError(f"unknown listing field(s): {', '.join(sorted(unknown))}")
        values = {name: data[name] for name in _LISTING_FIELDS if name in data}
        score = values.get("score")
        if isinstance(score, Mapping):
            values["score"] = Score.from_dict(score)
        return cls(**values)


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
    rule: str  # "<platform>.<rule>", e.g. "<platform>.http_404"; the profile lists its removal/hidden rules
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
    exchange: Exchange | None = None
    final: bool = True  # False while it will still be retried


@dataclass(slots=True)
class QueryFinding:
    """A platform refused a keyword itself (e.g. a "query unsafe" flag): a finding, not "0 results"."""

    platform: str
    query: str
    kind: str = "query_blocked"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RecheckTarget:
    """A stored listing to fetch again (``listing_id`` is the ``Listing`` row id), and why: the takedown
    item and recheck round it answers, when that round was due, and which attempt this is."""

    listing_id: int
    listing_key: str
    platform: str
    url: str
    takedown_item_id: int | None = None
    round_days: int | None = None
    due_at: datetime | None = None
    attempt: int = 1


@dataclass(slots=True)
class RecheckObservation:
    """What a recheck saw for one target: the verdict with its rule, and the evidence of it (the detail
    exchange, or None after a network error; a screenshot taken in the platform's browser context)."""

    target: RecheckTarget
    result: CheckResult
    exchange: Exchange | None
    screenshot_png: bytes | None = None
