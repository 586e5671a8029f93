"""Emerging-term discovery: phrases over-represented among a sweep's candidates, and platform suggestions.

:func:`discover` compares 1–3-word phrases (document frequencies over normalised text) in candidate
listings against the other listings with the log-odds ratio under an informative Dirichlet prior
(Monroe, Colaresi & Quinn 2008, "Fightin' Words"): for a phrase seen in ``a`` of ``Na`` candidates and
``b`` of ``Nb`` others, with prior ``α = max(ALPHA_FLOOR, PRIOR_STRENGTH × (a + b) / (Na + Nb))``::

    δ = log((a + α) / (Na − a + α)) − log((b + α) / (Nb − b + α))
    z = δ / sqrt(1/(a + α) + 1/(Na − a + α) + 1/(b + α) + 1/(Nb − b + α))

Phrases rank by ``z``. Excluded: phrases with fewer than ``min_support`` candidate listings, starting or
ending with a stopword (``crawler/data/stopwords.txt``), containing a number, and phrases the lexicon
already explains (every word is a stopword, a generic clothing/commerce word, a word of a lexicon term, or
inside a lexicon match, exact, joined or fuzzy — so "bal murah", "thrift korea" or "segel" are never
proposed). A phrase inside a longer proposed phrase that occurs
almost as often (≥ 90%) gives way to the longer one; a longer phrase that only adds words to a better
ranked phrase is dropped.

:func:`run_discovery` applies this to one sweep run in the database (candidate-or-stronger listings vs the
rest), adds the platforms' related-keyword fields (``SweepRun.stats["related_terms"]``: {platform: [terms]})
and stores each result as a ``Term(status="proposed", provenance="discovered")`` with its evidence in
``Term.discovery``; an existing proposal gets its counts updated instead of a duplicate. Tune with the
``min_support``, ``min_z`` and ``limit`` arguments (the scheduler's discovery job passes them).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from crawler.errors import NotFound
from crawler.terms import store
from crawler.terms.lexicon import Lexicon, load_stopwords
from crawler.terms.matcher import CONTEXT_WORDS, Matcher
from crawler.terms.normalise import Normalised, normalise
from storage.models import Listing, Sighting, SweepRun, Term

PRIOR_STRENGTH = 10.0
ALPHA_FLOOR = 0.5  # keeps a phrase never seen among others from an infinite variance
CANDIDATE_VERDICTS = ("strong", "candidate")


@dataclass(slots=True)
class Proposal:
    phrase: str  # normalised form (the key)
    display: str  # the commonest original spelling among candidates, lower-cased
    count_candidates: int
    count_others: int
    lift: float  # share among candidates / share among all listings
    log_odds: float  # z-score of the log-odds ratio with the informative prior
    examples: list[int] = field(default_factory=list)  # indices into candidate_texts
    score_lift: float | None = None  # mean score with the phrase − mean score of all listings
    sources: list[str] = field(default_factory=lambda: ["log-odds"])


class _Coverage:
    """Does the lexicon already explain a phrase? (cached per phrase)

    Covered: every word is a stopword, a generic clothing/commerce word (:data:`CONTEXT_WORDS`), a word of
    some lexicon term or variant ("segel" from "bal segel"), or inside a lexicon match.
    """

    def __init__(self, lexicon: Lexicon, stopwords: frozenset[str]) -> None:
        self.matcher = Matcher(lexicon)
        self.vocabulary = frozenset(
            w for t in lexicon.active for f in t.forms() for w in normalise(f).text.split()
        )
        self.stopwords = stopwords | CONTEXT_WORDS | self.vocabulary
        self.cache: dict[str, bool] = {}

    def covered(self, phrase: str) -> bool:
        hit = self.cache.get(phrase)
        if hit is None:
            norm = normalise(phrase)
            spans = [(m.start, m.end) for m in self.matcher.match(norm) if m.term is not None]
            hit = all(
                tok in self.stopwords or any(a < e and s < b for a, b in spans) for tok, s, e in norm.tokens()
            )
            self.cache[phrase] = hit
        return hit


def _is_handle(norm: Normalised, start: int, end: int) -> bool:
    """An @account, e-mail or web address: a seller's name, not a product word."""
    a, b = norm.original_span(start, end)
    before = norm.original[a - 1] if a > 0 else ""
    return before == "@" or any(c in norm.original[a:b] for c in "._/@")


def _grams(text: str, edge_stop: frozenset[str], max_n: int) -> dict[str, str]:
    """Phrase → its original spelling, for the phrases of one text.

    A phrase never starts or ends with a word from ``edge_stop`` (stopwords and lexicon words, so "bal
    tiap minggu" is not a new phrase), never contains a number, and never crosses a handle or address.
    """
    norm = normalise(text)
    toks = [t for t in norm.tokens()]
    bad = [any(c.isdigit() for c in w) or len(w) < 2 or _is_handle(norm, s, e) for w, s, e in toks]
    out: dict[str, str] = {}
    for i in range(len(toks)):
        for n in range(1, max_n + 1):
            if i + n > len(toks):
                break
            window = toks[i : i + n]
            words = [w for w, _, _ in window]
            if any(bad[i : i + n]):
                break
            if words[0] in edge_stop or words[-1] in edge_stop:
                continue
            key = " ".join(words)
            if key not in out:
                out[key] = norm.original_text(window[0][1], window[-1][2]).lower()
    return out


def log_odds_z(a: int, na: int, b: int, nb: int, prior_strength: float = PRIOR_STRENGTH) -> float:
    alpha = max(prior_strength * (a + b) / max(1, na + nb), ALPHA_FLOOR)
    delta = math.log((a + alpha) / (na - a + alpha)) - math.log((b + alpha) / (nb - b + alpha))
    var = 1 / (a + alpha) + 1 / (na - a + alpha) + 1 / (b + alpha) + 1 / (nb - b + alpha)
    return delta / math.sqrt(var)


def discover(
    candidate_texts: Sequence[str],
    other_texts: Sequence[str],
    lexicon: Lexicon,
    *,
    min_support: int = 3,
    max_n: int = 3,
    min_z: float = 1.96,
    limit: int = 50,
    candidate_scores: Sequence[float] | None = None,
    other_scores: Sequence[float] | None = None,
) -> list[Proposal]:
    """Phrases over-represented among candidates that the lexicon does not already cover, best first."""
    stopwords = load_stopwords()
    coverage = _Coverage(lexicon, stopwords)
    edge_stop = stopwords | coverage.vocabulary
    na, nb = len(candidate_texts), len(other_texts)
    if na == 0:
        return []
    cand_df: Counter[str] = Counter()
    other_df: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[int]] = defaultdict(list)
    score_sum: dict[str, float] = defaultdict(float)
    for i, text in enumerate(candidate_texts):
        for key, spelling in _grams(text, edge_stop, max_n).items():
            cand_df[key] += 1
            spellings[key][spelling] += 1
            if len(examples[key]) < 5:
                examples[key].append(i)
            if candidate_scores is not None:
                score_sum[key] += candidate_scores[i]
    for j, text in enumerate(other_texts):
        for key in _grams(text, edge_stop, max_n):
            if key in cand_df:
                other_df[key] += 1
                if other_scores is not None:
                    score_sum[key] += other_scores[j]
    all_scores = list(candidate_scores or []) + list(other_scores or [])
    mean_all = sum(all_scores) / len(all_scores) if all_scores else None

    scored: list[Proposal] = []
    for key, a in cand_df.items():
        if a < min_support:
            continue
        b = other_df.get(key, 0)
        z = log_odds_z(a, na, b, nb)
        if z < min_z or coverage.covered(key):
            continue
        lift = (a / na) / ((a + b) / (na + nb))
        score_lift = None
        if mean_all is not None and candidate_scores is not None:
            score_lift = round(score_sum[key] / (a + b) - mean_all, 4)
        scored.append(
            Proposal(
                phrase=key,
                display=spellings[key].most_common(1)[0][0],
                count_candidates=a,
                count_others=b,
                lift=round(lift, 3),
                log_odds=round(z, 3),
                examples=examples[key],
                score_lift=score_lift,
            )
        )
    # a phrase that nearly always sits inside a longer proposed phrase gives way to it
    by_key = {p.phrase: p for p in scored}
    drop: set[str] = set()
    for p in scored:
        words = p.phrase.split()
        for n in range(1, len(words)):
            for i in range(len(words) - n + 1):
                sub = by_key.get(" ".join(words[i : i + n]))
                if sub is not None and p.count_candidates >= 0.9 * sub.count_candidates:
                    drop.add(sub.phrase)
    ranked = sorted((p for p in scored if p.phrase not in drop), key=lambda p: (-p.log_odds, p.phrase))
    kept: list[Proposal] = []
    for p in ranked:
        padded = f" {p.phrase} "
        if any(f" {k.phrase} " in padded for k in kept):
            continue  # only adds words to a better-ranked phrase
        kept.append(p)
        if len(kept) >= limit:
            break
    return kept


# -- database ----------------------------------------------------------------------------------


def run_discovery(
    session: Any,
    sweep_run_id: int,
    *,
    min_support: int = 3,
    min_z: float = 1.96,
    limit: int = 30,
    actor: str = "discovery",
) -> list[Any]:
    """Mine one sweep run and store/update proposed terms; returns the Term rows touched."""
    run = session.get(SweepRun, sweep_run_id)
    if run is None:
        raise NotFound(f"no sweep run #{sweep_run_id}")
    listing_ids = select(Sighting.listing_id).where(Sighting.sweep_run_id == sweep_run_id).distinct()
    listings = session.scalars(select(Listing).where(Listing.id.in_(listing_ids)).order_by(Listing.id)).all()
    cands = [x for x in listings if x.verdict in CANDIDATE_VERDICTS]
    others = [x for x in listings if x.verdict not in CANDIDATE_VERDICTS]

    def text(x: Any) -> str:
        return f"{x.title}\n{x.description}" if x.description else x.title

    lexicon = store.load_lexicon(session)
    proposals = discover(
        [text(x) for x in cands],
        [text(x) for x in others],
        lexicon,
        min_support=min_support,
        min_z=min_z,
        limit=limit,
        candidate_scores=[x.score_value or 0.0 for x in cands],
        other_scores=[x.score_value or 0.0 for x in others],
    )
    # platform related-keyword and suggestion fields
    related = (run.stats or {}).get("related_terms") or {}
    coverage = _Coverage(lexicon, load_stopwords())
    by_phrase = {p.phrase: p for p in proposals}
    platform_found: dict[str, Proposal] = {}
    for platform, terms in sorted(related.items()) if isinstance(related, dict) else ():
        for raw in terms or ():
            if not isinstance(raw, str) or not raw.strip():
                continue
            key = normalise(raw).text
            if not key or coverage.covered(key):
                continue
            target = by_phrase.get(key) or platform_found.get(key)
            if target is None:
                target = Proposal(key, raw.strip().lower(), 0, 0, 0.0, 0.0, sources=[])
                platform_found[key] = target
            source = f"platform:{platform}"
            if source not in target.sources:
                target.sources.append(source)
    now = datetime.now(UTC)
    existing_keys: dict[str, Any] = {}
    for row in session.scalars(select(Term)):
        existing_keys.setdefault(normalise(row.text).text, row)
        for v in row.variants or ():
            existing_keys.setdefault(normalise(v).text, row)
    touched: list[Any] = []
    for p in [*proposals, *platform_found.values()]:
        evidence = {
            "count_candidates": p.count_candidates,
            "count_others": p.count_others,
            "lift": p.lift,
            "log_odds": p.log_odds,
            "score_lift": p.score_lift,
            "examples": [cands[i].listing_key for i in p.examples],
            "sweep_run_id": sweep_run_id,
            "sources": p.sources,
            "updated_at": now.isoformat(),
        }
        row = existing_keys.get(p.phrase)
        if row is not None:
            if row.status != "proposed":
                continue  # active, retired or rejected: an analyst already decided
            runs = sorted({*(row.discovery or {}).get("sweep_run_ids", []), sweep_run_id})
            row.discovery = {**evidence, "sweep_run_ids": runs}
            touched.append(row)
            continue
        row = Term(
            text=p.display,
            variants=[],
            category="standard",
            signal="IMPORT-leaning",
            strength="M",
            status="proposed",
            provenance="discovered",
            note="proposed by discovery",
            created_at=now,
            created_by=actor,
            discovery={**evidence, "sweep_run_ids": [sweep_run_id]},
        )
        session.add(row)
        existing_keys[p.phrase] = row
        touched.append(row)
    session.flush()
    return touched


def ranked_proposals(session: Any) -> list[Any]:
    """Proposed terms, best first: log-odds z, then platform-suggestion count."""
    rows = list(session.scalars(select(Term).where(Term.status == "proposed")))

    def key(row: Any) -> tuple[float, int, int]:
        d = row.discovery or {}
        return (-float(d.get("log_odds") or 0.0), -len(d.get("sources") or []), row.id)

    return sorted(rows, key=key)
