"""Mutable state of the replica marketplaces: virtual clock, search index, takedowns, relistings, faults.

One :class:`SandboxState` backs every platform replica (``sandbox/platforms/*``) and the control endpoints
(``sandbox/control.py``). Everything is deterministic given the catalog, the seed and the sequence of
control calls: takedown outcomes are drawn from ``random.Random(f"{seed}:{key}:takedown")`` (independent of
call order), faults from a per-platform request counter hashed with the seed.

Knobs (module tables, edit to tune):

- each replica's ``SPEC.takedown`` (:class:`sandbox.spec.Policy`): compliance rate, delay range in days,
  share that goes HIDDEN instead of REMOVED, share of removed illegal sellers that relist, and the delay.
- each replica's ``SPEC.blocklist``: the platform's own keyword blocklist (a finding, not "no results").
- :data:`FAULT_PROFILES` — ``none`` | ``realistic`` | ``hostile``: probability per request of each fault kind.
  Tests can also queue exact faults with :meth:`SandboxState.force_faults`.

Search semantics: a listing matches when every query token (lowercased, punctuation stripped) is a token
of its title+description or a substring of one of those tokens. An inverted index per platform (token →
listing positions) plus a per-platform vocabulary scan for substrings keeps a page well under 50 ms on
50,000 listings (``bench/sandbox_search.py``). Ranking: sponsored first, then more query tokens in the
title, then newer, then listing id.

Extend: a new platform is a new replica module with its ``SPEC`` (:mod:`sandbox.replicas`).
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from crawler.errors import UsageError
from crawler.registry import default_registry
from sandbox.catalog import DRIFT_TERMS, EPOCH, CatalogListing, make_relisting, networks_truth
from sandbox.replicas import Replicas, default_replicas

# "redesign" (never drawn at random, only forced): the real JSON answer with its result lists renamed, as
# after a platform redesign — not a block, not empty, and the parsers' paths no longer match.
FAULT_KINDS = ("rate_limit_429", "block_page", "server_error", "slow", "malformed", "redesign")


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault to inject into one response. Platform modules render ``block_page`` in their own style."""

    kind: str
    retry_after: int = 0  # seconds, for rate_limit_429
    delay: float = 0.0  # seconds, for slow


# probability per request of each fault kind (checked in this order), plus retry-after and slow delay
FAULT_PROFILES: dict[str, dict[str, Any]] = {
    "none": {"rates": {}, "retry_after": 0, "delay": 0.0},
    "realistic": {
        "rates": {
            "block_page": 0.03,
            "rate_limit_429": 0.01,
            "server_error": 0.01,
            "slow": 0.02,
            "malformed": 0.005,
        },
        "retry_after": 2,
        "delay": 0.3,
    },
    "hostile": {
        "rates": {
            "block_page": 0.15,
            "rate_limit_429": 0.10,
            "server_error": 0.05,
            "slow": 0.05,
            "malformed": 0.05,
        },
        "retry_after": 5,
        "delay": 1.0,
    },
}

_TOKEN_RE = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lowercased alphanumeric tokens; punctuation and spacing are separators."""
    return _TOKEN_RE.findall(text.lower())


class VirtualClock:
    """Days since the catalog epoch (2026-01-01 UTC); ``now()`` is 10:00 UTC on that day."""

    def __init__(self, day: int = 0) -> None:
        self.day = day

    def now(self) -> datetime:
        return EPOCH + timedelta(days=self.day, hours=10)

    def advance(self, days: int) -> int:
        if days < 0:
            raise UsageError("the virtual clock only moves forward")
        self.day += days
        return self.day


@dataclass(slots=True)
class Takedown:
    key: str
    url: str
    requested_day: int
    outcome: str  # REMOVED | HIDDEN | IGNORED
    effective_day: int | None
    relisting: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "url": self.url,
            "requested_day": self.requested_day,
            "outcome": self.outcome,
            "effective_day": self.effective_day,
            "relisting": self.relisting,
        }


class _Index:
    """Inverted index for one platform: token → positions in the state's catalog list."""

    def __init__(self) -> None:
        self.postings: dict[str, set[int]] = {}
        self.substr_cache: dict[str, frozenset[int]] = {}

    def add(self, pos: int, tokens: set[str]) -> None:
        for token in tokens:
            self.postings.setdefault(token, set()).add(pos)
        self.substr_cache.clear()

    def match(self, token: str) -> frozenset[int] | set[int]:
        cached = self.substr_cache.get(token)
        if cached is not None:
            return cached
        found: set[int] = set()
        for vocab, positions in self.postings.items():
            if token in vocab:
                found |= positions
        frozen = frozenset(found)
        self.substr_cache[token] = frozen
        return frozen


class SandboxState:
    """Everything the replicas serve and the control endpoints change. Thread-safe (one lock)."""

    CACHE_SIZE = 512

    def __init__(
        self,
        catalog: list[CatalogListing],
        *,
        seed: int = 0,
        faults: str = "none",
        latency: float = 0.0,
        replicas: Replicas | None = None,
    ) -> None:
        if faults not in FAULT_PROFILES:
            raise UsageError(f"unknown fault profile {faults!r}; known: {', '.join(FAULT_PROFILES)}")
        self.replicas = replicas or default_replicas()
        # a real listing URL (e.g. pasted from a browser) → its replica's host key
        self._real_hosts = {
            urlsplit(url).netloc: key
            for key, url in default_registry().real_base_urls.items()
            if key in self.replicas.host_platforms
        }
        self.seed = seed
        self.latency = 0.0
        self.set_latency(latency)
        self.clock = VirtualClock(0)
        self.catalog: list[CatalogListing] = []
        self.lock = threading.RLock()
        self._by_key: dict[str, int] = {}
        self._used: set[str] = set()
        self._by_path: dict[tuple[str, str], str] = {}
        self._by_seller: dict[tuple[str, str], list[int]] = {}
        self.extra_blocklist: dict[str, list[str]] = {}
        self._title_tokens: list[frozenset[str]] = []
        self._index: dict[str, _Index] = {}
        self._takedowns: dict[str, Takedown] = {}
        self._relistings: list[str] = []
        self._version = 0
        self._cache: OrderedDict[tuple[Any, ...], list[int]] = OrderedDict()
        self.fault_profiles: dict[str, str] = {}
        self.default_fault_profile = faults
        self._fault_counters: Counter[str] = Counter()
        self._forced: dict[str, list[str]] = {}
        self.requests_by_prefix: Counter[str] = Counter()
        self.requests_by_agent: Counter[str] = Counter()
        self.requests_by_prefix_agent: Counter[tuple[str, str]] = Counter()
        self.arrivals_by_prefix_via: Counter[tuple[str, str]] = Counter()
        for listing in catalog:
            self._add(listing)
        # relistings after takedowns use the catalog's own drift words (``--drift-terms``), else the built-in
        self.drift_vocabulary: tuple[str, ...] = tuple(self.drift_terms()) or DRIFT_TERMS

    def set_latency(self, seconds: float) -> None:
        """Answer every replica request (not ``/_sandbox``) after ``seconds``: a marketplace's response
        time, so pacing and pipelines can be measured the way a real sweep runs (0 = as fast as it can)."""
        if not 0.0 <= seconds <= 60.0:
            raise UsageError(f"latency must be between 0 and 60 seconds, not {seconds}")
        self.latency = float(seconds)

    # -- catalog and index ----------------------------------------------------------------------
    def _add(self, listing: CatalogListing) -> None:
        pos = len(self.catalog)
        self.catalog.append(listing)
        self._by_key[listing.key] = pos
        self._used.update(
            (listing.listing_id, listing.seller_id, listing.shop_domain, *listing.extra.values())
        )
        host, path = self.replicas.listing_path(listing)
        self._by_path[(host, path.rstrip("/"))] = listing.key
        self._title_tokens.append(frozenset(tokenize(listing.title)))
        self._by_seller.setdefault((listing.platform, listing.seller_id), []).append(pos)
        tokens = set(tokenize(listing.title + " " + listing.description))
        self._index.setdefault(listing.platform, _Index()).add(pos, tokens)
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        self._cache.clear()

    def get(self, platform: str, listing_id: str) -> CatalogListing | None:
        """The listing if it exists at the current virtual day (whatever its status)."""
        pos = self._by_key.get(f"{platform}:{listing_id}")
        if pos is None:
            return None
        listing = self.catalog[pos]
        return listing if listing.active_from_day <= self.clock.day else None

    def get_by_key(self, key: str) -> CatalogListing | None:
        platform, _, listing_id = key.partition(":")
        return self.get(platform, listing_id)

    def status(self, platform: str, listing_id: str) -> str:
        """LIVE | REMOVED | HIDDEN | UNKNOWN (no such listing, or not listed yet) at the current day."""
        with self.lock:
            listing = self.get(platform, listing_id)
            if listing is None:
                return "UNKNOWN"
            if self.replicas.get(platform).closed:
                return "REMOVED"  # the platform stopped trading
            td = self._takedowns.get(listing.key)
            if td and td.effective_day is not None and td.effective_day <= self.clock.day:
                return td.outcome
            return "LIVE"

    def visible(self, listing: CatalogListing) -> bool:
        return self.status(listing.platform, listing.listing_id) == "LIVE"

    def search(self, platform: str, query: str, offset: int, limit: int) -> tuple[list[CatalogListing], int]:
        """One page of visible matches and the total number of visible matches."""
        tokens = list(dict.fromkeys(tokenize(query)))
        if not tokens or limit <= 0:
            return [], 0
        with self.lock:
            ranked = self._ranked(platform, tokens)
            page = [self.catalog[i] for i in ranked[max(0, offset) : max(0, offset) + limit]]
            return page, len(ranked)

    def _ranked(self, platform: str, tokens: list[str]) -> list[int]:
        cache_key = (platform, tuple(tokens), self.clock.day, self._version)
        hit = self._cache.get(cache_key)
        if hit is not None:
            self._cache.move_to_end(cache_key)
            return hit
        index = self._index.get(platform)
        if index is None:
            return []
        sets = []
        for token in tokens:
            exact = index.postings.get(token)
            sub = index.match(token)
            sets.append(sub if exact is None else (sub | exact if len(sub) != len(exact) else exact))
        sets.sort(key=len)
        matched = set(sets[0])
        for other in sets[1:]:
            matched &= other
            if not matched:
                break
        day = self.clock.day
        rows = []
        for pos in matched:
            listing = self.catalog[pos]
            if listing.active_from_day > day or not self._live_fast(listing):
                continue
            title = self._title_tokens[pos]
            score = sum(1 for t in tokens if t in title)
            rows.append((not listing.sponsored, -score, -listing.created_day, listing.listing_id, pos))
        rows.sort()
        ranked = [row[-1] for row in rows]
        self._cache[cache_key] = ranked
        if len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)
        return ranked

    def shop(
        self, platform: str, seller_id: str, offset: int, limit: int
    ) -> tuple[list[CatalogListing], int]:
        """One page of a shop's visible listings (newest first) and how many it shows: the shop pages that
        seller following reads (``docs/sandbox.md``)."""
        if limit <= 0:
            return [], 0
        with self.lock:
            day = self.clock.day
            rows = [
                self.catalog[p]
                for p in self._by_seller.get((platform, seller_id), ())
                if self.catalog[p].active_from_day <= day and self._live_fast(self.catalog[p])
            ]
            rows.sort(key=lambda x: (-x.created_day, x.listing_id))
            return rows[max(0, offset) : max(0, offset) + limit], len(rows)

    def _live_fast(self, listing: CatalogListing) -> bool:
        if self.replicas.get(listing.platform).closed:
            return False
        td = self._takedowns.get(listing.key)
        return not (td and td.effective_day is not None and td.effective_day <= self.clock.day)

    def clear_cache(self) -> None:
        """Forget cached rankings (benchmarks measure uncached searches)."""
        with self.lock:
            self._cache.clear()
            for index in self._index.values():
                index.substr_cache.clear()

    def blocked_query(self, platform: str, query: str) -> bool:
        """True when the platform itself refuses this keyword (a finding, not "no results")."""
        text = " ".join(tokenize(query))
        own = self.replicas.get(platform).blocklist if platform in self.replicas else ()
        words = (*own, *self.extra_blocklist.get(platform, ()))
        return any(re.search(rf"(?<![a-z0-9]){re.escape(b)}(?![a-z0-9])", text) for b in words)

    def block_words(self, platform: str, words: list[str]) -> list[str]:
        """Add words to a platform's own keyword blocklist (platforms learn new trade words too)."""
        if platform not in self.replicas:
            raise UsageError(f"unknown platform {platform!r}")
        with self.lock:
            known = self.extra_blocklist.setdefault(platform, [])
            for word in words:
                norm = " ".join(tokenize(word))
                if norm and norm not in known:
                    known.append(norm)
            self._changed()
            return list(known)

    # -- URLs -------------------------------------------------------------------------------------
    def url_path(self, listing: CatalogListing) -> str:
        """Path of the listing page under the sandbox root: ``/{host-key}/…``."""
        host, path = self.replicas.listing_path(listing)
        return f"/{host}{path}"

    def resolve(self, url: str) -> str | None:
        """Listing key for a listing URL (sandbox or real host), or a ``platform:id`` key; None if unknown."""
        url = url.strip()
        if re.fullmatch(r"[a-z]+:[A-Za-z0-9._\-]+", url) and url.split(":", 1)[0] in self.replicas:
            return url if url in self._by_key else None
        parts = urlsplit(url if "//" in url else "http://x" + (url if url.startswith("/") else "/" + url))
        path = parts.path
        host = self._real_hosts.get(parts.netloc)
        if host is None:
            first, _, rest = path.lstrip("/").partition("/")
            if first not in self.replicas.host_platforms:
                return None
            host, path = first, "/" + rest
        path = path.rstrip("/") or "/"
        key = self._by_path.get((host, path))
        if key:
            return key
        platform = self.replicas.host_platforms[host]
        for pattern in self.replicas.get(platform).url_patterns:
            m = pattern.search(path)
            if m:
                candidate = f"{platform}:{'.'.join(m.groups())}"
                if candidate in self._by_key:
                    return candidate
        return None

    # -- takedowns and relistings -------------------------------------------------------------------
    def takedown(self, urls: list[str]) -> list[dict[str, Any]]:
        """Take in a takedown request; each platform decides with its own rate and delay."""
        results: list[dict[str, Any]] = []
        with self.lock:
            for url in urls:
                key = self.resolve(url)
                if key is None or self.get_by_key(key) is None:
                    results.append({"url": url, "accepted": False, "reason": "unknown listing"})
                    continue
                if key in self._takedowns:
                    results.append({"url": url, "key": key, "accepted": False, "reason": "already requested"})
                    continue
                td = self._decide(key, url)
                self._takedowns[key] = td
                results.append({"url": url, "key": key, "accepted": True})
            self._changed()
        return results

    def _decide(self, key: str, url: str) -> Takedown:
        listing = self.catalog[self._by_key[key]]
        spec = self.replicas.get(listing.platform)
        policy = spec.takedown
        rng = random.Random(f"{self.seed}:{key}:takedown")
        day = self.clock.day
        if rng.random() >= policy.compliance:
            return Takedown(key, url, day, "IGNORED", None)
        effective = day + rng.randint(policy.min_delay, policy.max_delay)
        outcome = "HIDDEN" if rng.random() < policy.hidden_share else "REMOVED"
        td = Takedown(key, url, day, outcome, effective)
        if outcome == "REMOVED" and listing.label == "illegal_import" and rng.random() < policy.relist_share:
            strategy = rng.choice(("new_words", "new_shop", "same_handle"))
            target = listing.platform
            if spec.relists_elsewhere or rng.random() < 0.25:
                target = rng.choice(self.replicas.relist_destinations)
            child = make_relisting(
                rng,
                listing,
                day=effective + rng.randint(*policy.relist_after),
                strategy=strategy,
                used_ids=self._used,
                platform=target,
                drift_terms=self.drift_vocabulary,
                replicas=self.replicas,
            )
            self._add(child)
            self._relistings.append(child.key)
            td.relisting = child.key
        return td

    def takedowns(self) -> list[Takedown]:
        return list(self._takedowns.values())

    # -- faults -----------------------------------------------------------------------------------
    def set_faults(self, profile: str, platforms: list[str] | None = None) -> None:
        if profile not in FAULT_PROFILES:
            raise UsageError(f"unknown fault profile {profile!r}; known: {', '.join(FAULT_PROFILES)}")
        with self.lock:
            if platforms:
                for p in platforms:
                    self.fault_profiles[p] = profile
            else:
                self.default_fault_profile = profile
                self.fault_profiles.clear()

    def force_faults(self, platform: str, kinds: list[str]) -> None:
        """Queue exact faults for the next requests to ``platform`` (tests)."""
        bad = [k for k in kinds if k not in FAULT_KINDS]
        if bad:
            raise UsageError(f"unknown fault kind(s) {', '.join(bad)}; known: {', '.join(FAULT_KINDS)}")
        with self.lock:
            self._forced.setdefault(platform, []).extend(kinds)

    def fault(self, platform: str, path: str) -> Fault | None:
        """The fault to inject for this request, if any (never for ``/_sandbox/*`` or images)."""
        if path.startswith("/_sandbox") or "/img/" in path:
            return None
        with self.lock:
            name = self.fault_profiles.get(platform, self.default_fault_profile)
            profile = FAULT_PROFILES[name]
            forced = self._forced.get(platform)
            if forced:
                return self._make_fault(forced.pop(0), profile)
            rates: dict[str, float] = profile["rates"]
            if not rates:
                return None
            n = self._fault_counters[platform]
            self._fault_counters[platform] += 1
            digest = hashlib.sha256(f"{self.seed}:{platform}:{n}".encode()).digest()
            u = int.from_bytes(digest[:8], "big") / 2**64
            for kind, rate in rates.items():
                if u < rate:
                    return self._make_fault(kind, profile)
                u -= rate
            return None

    @staticmethod
    def _make_fault(kind: str, profile: dict[str, Any]) -> Fault:
        return Fault(
            kind=kind,
            retry_after=int(profile["retry_after"]) or 1 if kind == "rate_limit_429" else 0,
            delay=float(profile["delay"]) or 0.2 if kind == "slow" else 0.0,
        )

    # -- request log ------------------------------------------------------------------------------
    def record_request(self, path: str, user_agent: str) -> None:
        first = path.lstrip("/").split("/", 1)[0]
        prefix = "/" + first
        with self.lock:
            self.requests_by_prefix[prefix] += 1
            self.requests_by_agent[user_agent] += 1
            self.requests_by_prefix_agent[(prefix, user_agent)] += 1

    def record_arrival(self, path: str, via: str) -> None:
        """Every HTTP request as it arrived, by host prefix and the ``Via`` header a proxy added ("" when
        it came directly): the proof that a crawl's traffic went through a proxy (tests/test_proxies.py)."""
        prefix = "/" + path.lstrip("/").split("/", 1)[0]
        with self.lock:
            self.arrivals_by_prefix_via[(prefix, via)] += 1

    def requests_report(self) -> dict[str, Any]:
        with self.lock:
            return {
                "by_prefix_and_via": [
                    {"prefix": p, "via": via, "count": c}
                    for (p, via), c in sorted(self.arrivals_by_prefix_via.items())
                ],
                "by_prefix": dict(sorted(self.requests_by_prefix.items())),
                "by_user_agent": dict(sorted(self.requests_by_agent.items())),
                "by_prefix_and_user_agent": [
                    {"prefix": p, "user_agent": ua, "count": c}
                    for (p, ua), c in sorted(self.requests_by_prefix_agent.items())
                ],
            }

    # -- ground truth -----------------------------------------------------------------------------
    def drift_terms(self) -> list[str]:
        found = sorted({x.extra["drift_term"] for x in self.catalog if "drift_term" in x.extra})
        return found if found else []

    def truth(self, *, include_listings: bool = True) -> dict[str, Any]:
        with self.lock:
            labels = Counter(x.label for x in self.catalog)
            statuses: Counter[str] = Counter()
            rows = []
            for listing in self.catalog:
                st = self.status(listing.platform, listing.listing_id)
                statuses[st] += 1
                if include_listings:
                    rows.append(
                        {
                            "key": listing.key,
                            "platform": listing.platform,
                            "listing_id": listing.listing_id,
                            "path": self.url_path(listing),
                            "label": listing.label,
                            "evasion": listing.evasion,
                            "drift_term": listing.extra.get("drift_term"),
                            "drift_placement": listing.extra.get("drift_placement"),
                            "relist_of": listing.relist_of,
                            "seller_id": listing.seller_id,
                            "contact_handles": listing.contact_handles,
                            "image_seed": listing.image_seed,
                            "active_from_day": listing.active_from_day,
                            "status": st,
                        }
                    )
            out: dict[str, Any] = {
                "seed": self.seed,
                "day": self.clock.day,
                "now": self.clock.now().isoformat(),
                "size": len(self.catalog),
                "drift_terms": self.drift_terms(),
                "known_drift_vocabulary": list(self.drift_vocabulary),
                "labels": dict(sorted(labels.items())),
                "statuses": dict(sorted(statuses.items())),
                "fault_profile": self.default_fault_profile,
                "fault_profiles": dict(self.fault_profiles),
                "takedowns": [t.to_dict() for t in self._takedowns.values()],
                "relistings": list(self._relistings),
                # the merchants behind the shops, with roles and volume (crawler.intel is measured on it)
                "networks": networks_truth(self.catalog, self.clock.day),
            }
            if include_listings:
                out["listings"] = rows
            return out
