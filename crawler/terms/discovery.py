"""Emerging-term discovery: words and phrases sellers started using that the lexicon does not know yet.

Sellers move to new words after every takedown round; a sweep only searches words the lexicon has, so a
listing that uses only a new word is never fetched unless discovery proposes that word. :func:`discover`
ranks 1–3-word phrases (normalised text) from the sweep's **candidates** (listings scoring candidate or
strong) with four kinds of evidence, each reported as a *source* when it holds on its own:

- ``contrast`` — the phrase is over-represented among candidates compared with the **background**: ordinary
  clothing listings from a few generic queries (:mod:`crawler.terms.background`), minus any background
  listing that scores as a candidate or that a lexicon query also returned. Titles are compared with titles
  and descriptions with descriptions (the background opens fewer listing pages than a sweep). For ``a`` of
  ``Na`` candidate fields and ``b`` of ``Nb`` background fields, the test is exact: under "no difference"
  each of the ``a + b`` fields holding the phrase is a candidate's with probability ``Na / (Na + Nb)``, and
  ``z`` is the normal quantile of the binomial tail ``P(X ≥ a)`` (exact to 400 trials, continuity-corrected
  normal beyond). The phrase's contrast is the best of title ``z``, description ``z`` and their Stouffer sum.
- ``context`` — the phrase stands where known seller words stand: PPMI context vectors trained on the run's
  listings and the background (:mod:`crawler.terms.similarity`); the mean cosine to the 3 nearest known
  bulk/regional/import terms.
- ``platform:<name>`` — a platform suggested it (related searches) or refuses to search for it
  (a search answer that marks the keyword refused, found by a probe).
- ``sellers`` — confirmed sellers use it in their other listings (seller following).

Score (the ranking): ``contrast z + CONTEXT_WEIGHT × context + PLATFORM_WEIGHT × suggesting platforms +
BLOCKED_WEIGHT × blocking platforms + sellers z``. A phrase is proposed when ``min_support`` candidates carry
it and its contrast reaches ``min_z`` — or, with modest support, ``rescue_z`` together with a context
similarity of at least ``context_min`` — or a platform blocks it.

Never proposed: phrases starting or ending with a stopword, an ordinary word (``crawler/data/
ordinary_words.txt``: sizes, colours, garments, materials, brands, cities, commerce words) or a lexicon word;
phrases with a number, a handle or an address; phrases the lexicon already explains; phrases an analyst
rejected. A phrase nearly always inside a longer proposed phrase (≥ 90 %) gives way to it; a longer phrase
that only adds words to a better-ranked one is dropped.

:func:`run_discovery` applies this to one stored sweep run; its evidence (example listings with links,
sellers, sources, first seen, counts) is kept in ``Term.discovery`` for ``tertib terms suggest`` and
``tertib terms show``. Bad input gives a status line and no proposals rather than noise: a run with no
listings, no candidates, or no usable background (never crawled, or blocked) proposes nothing from the
corpus.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from statistics import NormalDist
from typing import Any

from sqlalchemy import select

from crawler.errors import NotFound
from crawler.terms import store
from crawler.terms.lexicon import Lexicon, load_stopwords
from crawler.terms.matcher import CONTEXT_WORDS, Matcher
from crawler.terms.normalise import Normalised, normalise, normalise_phrase
from crawler.terms.similarity import NUM, ContextModel
from storage.models import Listing, Sighting, SweepRun, Term

CANDIDATE_VERDICTS = ("strong", "candidate")
CONTEXT_WEIGHT = 4.0  # a context cosine of 0.5 adds 2 to the score, as much as z = 2 of contrast
PLATFORM_WEIGHT = 1.0
BLOCKED_WEIGHT = 3.0
MAX_CONTEXT_TARGETS = 600  # candidate phrases that get a context vector (best contrast first)
EXACT_LIMIT = 400  # binomial tails up to this many trials are summed exactly
Z_CAP = 12.0
# lexicon terms whose contexts define "where seller words stand"
KNOWN_CATEGORIES = ("bulk", "event", "regional")
KNOWN_SIGNALS = ("IMPORT", "IMPORT-leaning")
_NORMAL = NormalDist()
FOLLOW_MAX_AGE = timedelta(days=30)  # a follow round older than this no longer feeds discovery


@dataclass(slots=True)
class Doc:
    """One listing's text and where it came from (the evidence an analyst sees)."""

    title: str
    description: str = ""
    key: str = ""
    url: str = ""
    seller: str = ""

    @classmethod
    def of(cls, value: Doc | str) -> Doc:
        return value if isinstance(value, Doc) else cls(title=value)


@dataclass(slots=True)
class Options:
    """Tuning knobs (``tertib terms discover`` exposes the first three)."""

    min_support: int = 3  # candidates carrying the phrase
    min_z: float = 1.96  # contrast alone
    limit: int = 50
    rescue_z: float = 1.0  # contrast that context similarity can lift to a proposal
    context_min: float = 0.35  # that similarity
    max_n: int = 3
    use_ordinary: bool = True  # off only to measure what the background contrast does alone
    use_context: bool = True


@dataclass(slots=True)
class Proposal:
    phrase: str  # normalised form (the key)
    display: str  # the commonest original spelling among candidates, lower-cased
    count_candidates: int  # candidate listings carrying it (title or description)
    count_background: int  # background listings carrying it
    lift: float  # share among candidates / share among candidates + background
    contrast: float  # combined contrast z
    z_title: float = 0.0
    z_description: float = 0.0
    context: float = 0.0  # mean cosine to the nearest known terms
    neighbours: list[str] = field(default_factory=list)  # those terms
    platforms: list[str] = field(default_factory=list)  # platforms suggesting it
    blocked_on: list[str] = field(default_factory=list)  # platforms refusing to search for it
    followed: int = 0  # confirmed sellers' other listings carrying it
    followed_z: float = 0.0
    score: float = 0.0
    sources: list[str] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)  # indices into the candidates
    sellers: list[tuple[str, int]] = field(default_factory=list)

    @property
    def log_odds(self) -> float:  # the name older rows and tools use for the ranking figure
        return self.score


@dataclass(slots=True)
class Result:
    proposals: list[Proposal]
    status: str  # one line: what was compared, or why nothing could be
    counts: dict[str, int] = field(default_factory=dict)
    skipped: bool = False  # nothing sound to compare: no proposals on purpose


# -- vocabulary ----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def load_ordinary_words() -> frozenset[str]:
    """Words any clothing seller uses (``crawler/data/ordinary_words.txt``), normalised."""
    text = resources.files("crawler").joinpath("data/ordinary_words.txt").read_text(encoding="utf-8")
    out: set[str] = set()
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            out.update(normalise_phrase(line).split())
    return frozenset(out)


class _Coverage:
    """Does the lexicon (or everyday vocabulary) already explain a phrase? Cached per phrase.

    Covered: every word is a stopword, an ordinary word, a generic clothing/commerce word
    (:data:`CONTEXT_WORDS`), a word of some lexicon term or variant ("segel" from "bal segel"), or inside a
    lexicon match (exact, joined or fuzzy).
    """

    def __init__(self, lexicon: Lexicon, stopwords: frozenset[str], ordinary: frozenset[str]) -> None:
        self.matcher = Matcher(lexicon)
        self.vocabulary = frozenset(
            w for t in lexicon.active for f in t.forms() for w in normalise(f).text.split()
        )
        self.stopwords = stopwords | CONTEXT_WORDS | self.vocabulary | ordinary
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


def known_terms(lexicon: Lexicon) -> dict[str, list[str]]:
    """Seller words whose contexts define "where such words stand": bulk, event and regional terms, and
    standard terms leaning to import — each with its normalised forms of at most 3 words."""
    out: dict[str, list[str]] = {}
    for term in lexicon.active:
        if term.category not in KNOWN_CATEGORIES and not (
            term.category == "standard" and term.signal in KNOWN_SIGNALS
        ):
            continue
        forms = [
            f for f in dict.fromkeys(normalise_phrase(x) for x in term.forms()) if 0 < len(f.split()) <= 3
        ]
        if forms:
            out[normalise_phrase(term.text)] = forms
    return out


# -- tokens and phrases ----------------------------------------------------------------------------------


def _is_handle(norm: Normalised, start: int, end: int) -> bool:
    """An @account, e-mail or web address: a seller's name, not a product word."""
    a, b = norm.original_span(start, end)
    before = norm.original[a - 1] if a > 0 else ""
    return before == "@" or any(c in norm.original[a:b] for c in "._/@")


@dataclass(slots=True)
class _Field:
    words: list[str]
    bad: list[bool]  # a number, a one-letter piece, or part of a handle/address
    spelling: list[tuple[int, int]]  # original span per token
    norm: Normalised


def _field(text: str) -> _Field:
    norm = normalise(text)
    toks = norm.tokens()
    words = [w for w, _, _ in toks]
    bad = []
    needs_span = any(c in text for c in "@._/")
    for w, s, e in toks:
        bad.append(len(w) < 2 or any(c.isdigit() for c in w) or (needs_span and _is_handle(norm, s, e)))
    return _Field(words, bad, [(s, e) for _, s, e in toks], norm)


def _phrases(f: _Field, edge: frozenset[str], max_n: int) -> set[str]:
    """Every 1..max_n-word phrase of a field that may be proposed (edges, numbers, handles checked)."""
    out: set[str] = set()
    words, bad = f.words, f.bad
    n = len(words)
    for i in range(n):
        if bad[i] or words[i] in edge:
            continue
        for size in range(1, max_n + 1):
            j = i + size
            if j > n or bad[j - 1]:
                break
            if words[j - 1] in edge:
                continue
            out.add(words[i] if size == 1 else " ".join(words[i:j]))
    return out


def _context_tokens(f: _Field, stopwords: frozenset[str]) -> list[str]:
    """Tokens for context vectors: stopwords out, numbers as one token, handles out."""
    out = []
    for w, b in zip(f.words, f.bad, strict=True):
        if any(c.isdigit() for c in w):
            out.append(NUM)
        elif not b and w not in stopwords:
            out.append(w)
    return out


# -- statistics ------------------------------------------------------------------------------------------


def binomial_z(a: int, na: int, b: int, nb: int) -> float:
    """z of the one-sided test "the phrase is no commoner among candidates than in the background".

    Under the null each of the ``a + b`` fields holding the phrase is a candidate's with probability
    ``p = na / (na + nb)``; the tail ``P(X ≥ a)`` of Binomial(a + b, p) is summed exactly for up to
    :data:`EXACT_LIMIT` trials (normal approximation with continuity correction beyond) and returned as a
    standard normal quantile (capped at ±:data:`Z_CAP`).
    """
    n = a + b
    if n == 0 or na <= 0:
        return 0.0
    if nb <= 0:
        return 0.0  # no background: no contrast can be measured
    p = na / (na + nb)
    if n > EXACT_LIMIT:
        mean, sd = n * p, math.sqrt(n * p * (1 - p))
        return max(-Z_CAP, min(Z_CAP, (a - 0.5 - mean) / sd))
    log_p, log_q = math.log(p), math.log1p(-p)
    lg = math.lgamma
    terms = [lg(n + 1) - lg(k + 1) - lg(n - k + 1) + k * log_p + (n - k) * log_q for k in range(a, n + 1)]
    top = max(terms)
    tail_log = top + math.log(sum(math.exp(t - top) for t in terms))
    if tail_log >= 0:
        return -Z_CAP if a == 0 else 0.0
    tail = math.exp(tail_log)
    if tail <= 0.0:
        return Z_CAP
    return max(-Z_CAP, min(Z_CAP, -_NORMAL.inv_cdf(min(tail, 1 - 1e-16))))


def log_odds_z(a: int, na: int, b: int, nb: int, prior_strength: float = 10.0) -> float:
    """Log-odds ratio z with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008); kept for
    comparison with the exact test in the tests and the evaluation."""
    alpha = max(prior_strength * (a + b) / max(1, na + nb), 0.5)
    delta = math.log((a + alpha) / (na - a + alpha)) - math.log((b + alpha) / (nb - b + alpha))
    var = 1 / (a + alpha) + 1 / (na - a + alpha) + 1 / (b + alpha) + 1 / (nb - b + alpha)
    return delta / math.sqrt(var)


# -- the ranking -----------------------------------------------------------------------------------------


def discover(
    candidates: Sequence[Doc | str],
    background: Sequence[Doc | str],
    lexicon: Lexicon,
    *,
    options: Options | None = None,
    context_docs: Sequence[Doc | str] = (),
    followed: Sequence[Doc | str] = (),
    related: Mapping[str, Iterable[str]] | None = None,
    blocked: Mapping[str, Iterable[str]] | None = None,
    rejected: Iterable[str] = (),
) -> Result:
    """Rank phrases that candidates use and ordinary listings do not; see the module docstring.

    ``context_docs``: more crawled text for the context vectors (the run's other listings); ``followed``:
    confirmed sellers' other listings; ``related``/``blocked``: platform → phrases it suggested / refused;
    ``rejected``: phrases an analyst rejected (normalised or not), never proposed again.
    """
    opt = options or Options()
    cand = [Doc.of(d) for d in candidates]
    back = [Doc.of(d) for d in background]
    counts = {"candidates": len(cand), "background": len(back)}
    if not cand:
        return Result([], "no candidate listings to learn from", counts, skipped=True)
    stopwords = load_stopwords()
    ordinary = load_ordinary_words() if opt.use_ordinary else frozenset()
    coverage = _Coverage(lexicon, stopwords, ordinary)
    edge = stopwords | coverage.vocabulary | ordinary
    never = {normalise_phrase(r) for r in rejected}

    # 1. candidates: phrase → fields holding it (titles, descriptions), spellings, examples, sellers
    c_title, c_desc = _fields(cand)
    title_df: Counter[str] = Counter()
    desc_df: Counter[str] = Counter()
    any_df: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[int]] = defaultdict(list)
    sellers: dict[str, Counter[str]] = defaultdict(Counter)
    for i, (ft, fd) in enumerate(zip(c_title, c_desc, strict=True)):
        pt = _phrases(ft, edge, opt.max_n) if ft else set()
        pd = _phrases(fd, edge, opt.max_n) if fd else set()
        title_df.update(pt)
        desc_df.update(pd)
        for key in pt | pd:
            any_df[key] += 1
            if len(examples[key]) < 5:
                examples[key].append(i)
            if cand[i].seller:
                sellers[key][cand[i].seller] += 1
    # confirmed sellers' other listings (seller following) bring their own phrases
    f_title, f_desc = _fields([Doc.of(d) for d in followed])
    f_any: Counter[str] = Counter()
    for ft, fd in zip(f_title, f_desc, strict=True):
        f_any.update(
            (_phrases(ft, edge, opt.max_n) if ft else set())
            | (_phrases(fd, edge, opt.max_n) if fd else set())
        )
    pool = {
        k
        for k in {
            *(k for k, a in any_df.items() if a >= opt.min_support),
            *(k for k, a in f_any.items() if a >= opt.min_support),
        }
        if k not in never and not coverage.covered(k)
    }
    for key in pool:
        for idx in examples[key]:
            for f in (c_title[idx], c_desc[idx]):
                spelling = _spelling(f, key) if f is not None else None
                if spelling:
                    spellings[key][spelling] += 1
                    break

    # 2. background: the same phrases, counted per field
    b_title, b_desc = _fields(back)
    first = {k.split()[0] for k in pool}
    bt_df, bd_df = _count_in(b_title, pool, first, opt.max_n), _count_in(b_desc, pool, first, opt.max_n)
    n_ct = sum(1 for f in c_title if f and f.words)
    n_cd = sum(1 for f in c_desc if f and f.words)
    n_bt = sum(1 for f in b_title if f and f.words)
    n_bd = sum(1 for f in b_desc if f and f.words)
    counts.update(
        candidate_titles=n_ct,
        candidate_descriptions=n_cd,
        background_titles=n_bt,
        background_descriptions=n_bd,
    )

    # 3. contrast per field, combined
    props: dict[str, Proposal] = {}
    for key in pool:
        zt = binomial_z(title_df[key], n_ct, bt_df[key], n_bt) if n_bt else 0.0
        zd = binomial_z(desc_df[key], n_cd, bd_df[key], n_bd) if n_bd and n_cd else 0.0
        contrast = max(zt, zd, (zt + zd) / math.sqrt(2)) if (zt or zd) else 0.0
        a, b = any_df[key], max(bt_df[key], bd_df[key])
        share_c = a / max(1, len(cand))
        share_all = (a + b) / max(1, len(cand) + n_bt)
        props[key] = Proposal(
            phrase=key,
            display=spellings[key].most_common(1)[0][0] if spellings[key] else key,
            count_candidates=a,
            count_background=b,
            lift=round(share_c / share_all, 3) if share_all else 0.0,
            contrast=round(contrast, 3),
            z_title=round(zt, 3),
            z_description=round(zd, 3),
            examples=examples[key],
            sellers=sellers[key].most_common(5),
        )

    # 4. context similarity for the best-contrast phrases
    known = known_terms(lexicon)
    if opt.use_context and known:
        targets = sorted(props.values(), key=lambda p: (-p.contrast, p.phrase))[:MAX_CONTEXT_TARGETS]
        model = ContextModel([p.phrase for p in targets] + [f for forms in known.values() for f in forms])
        extra = [Doc.of(d) for d in context_docs]
        e_title, e_desc = _fields(extra)
        for group in (c_title, c_desc, b_title, b_desc, e_title, e_desc):
            for fld in group:
                if fld is not None and fld.words:
                    model.add(_context_tokens(fld, stopwords))
        model.finish()
        for p in targets:
            sim, near = model.similarity(p.phrase, known)
            p.context = round(sim, 3)
            p.neighbours = [n for n, s in near if s > 0]

    # 5. platform signals and followed sellers
    for signals, is_block in ((related, False), (blocked, True)):
        for platform, phrases in sorted((signals or {}).items()):
            for raw in phrases:
                key = _trim(normalise_phrase(str(raw)), edge)  # "baju X" from a platform supports "X"
                _platform_hit(props, key, raw, platform, coverage, never, blocked_hit=is_block)
    n_f = len(followed)
    for key, p in props.items():
        if f_any[key]:
            p.followed = f_any[key]
            p.followed_z = round(binomial_z(f_any[key], n_f, bt_df[key], n_bt), 3) if n_bt else 0.0

    # 6. score, sources, the proposal rule
    kept: list[Proposal] = []
    for p in props.values():
        p.score = round(
            max(0.0, p.contrast)
            + CONTEXT_WEIGHT * max(0.0, p.context)
            + PLATFORM_WEIGHT * len(p.platforms)
            + BLOCKED_WEIGHT * len(p.blocked_on)
            + max(0.0, p.followed_z),
            3,
        )
        p.sources = _sources(p, opt)
        supported = max(p.count_candidates, p.followed) >= opt.min_support
        if p.blocked_on or (
            supported
            and (
                p.contrast >= opt.min_z
                or (p.contrast >= opt.rescue_z and p.context >= opt.context_min)
                or p.followed_z >= opt.min_z
            )
        ):
            kept.append(p)
        elif p.platforms and not p.count_candidates:
            kept.append(p)  # a platform suggestion with no corpus support: listed, ranked low
    return Result(_collapse(kept, opt.limit), _status(counts), counts)


def _fields(docs: Sequence[Doc]) -> tuple[list[_Field | None], list[_Field | None]]:
    titles: list[_Field | None] = []
    descs: list[_Field | None] = []
    for d in docs:
        titles.append(_field(d.title) if d.title else None)
        descs.append(_field(d.description) if d.description else None)
    return titles, descs


def _count_in(fields: Sequence[_Field | None], pool: set[str], first: set[str], max_n: int) -> Counter[str]:
    """Fields holding each pooled phrase (only positions whose word can start one are looked at)."""
    df: Counter[str] = Counter()
    for f in fields:
        if f is None:
            continue
        words, bad = f.words, f.bad
        n = len(words)
        seen: set[str] = set()
        for i in range(n):
            if words[i] not in first or bad[i]:
                continue
            for size in range(1, max_n + 1):
                j = i + size
                if j > n or bad[j - 1]:
                    break
                key = words[i] if size == 1 else " ".join(words[i:j])
                if key in pool:
                    seen.add(key)
        df.update(seen)
    return df


def _spelling(f: _Field, key: str) -> str | None:
    """The original characters of the first occurrence of ``key`` in a field, lower-cased."""
    words = key.split()
    n = len(words)
    for i in range(len(f.words) - n + 1):
        if f.words[i : i + n] == words:
            start, end = f.spelling[i][0], f.spelling[i + n - 1][1]
            return " ".join(f.norm.original_text(start, end).lower().split())
    return None


def _trim(phrase: str, edge: frozenset[str]) -> str:
    words = phrase.split()
    while words and words[0] in edge:
        words.pop(0)
    while words and words[-1] in edge:
        words.pop()
    return " ".join(words)


def _platform_hit(
    props: dict[str, Proposal],
    key: str,
    raw: Any,
    platform: str,
    coverage: _Coverage,
    never: set[str],
    *,
    blocked_hit: bool,
) -> None:
    if not key or key in never or coverage.covered(key) or any(c.isdigit() for c in key):
        return
    p = props.get(key)
    if p is None:
        p = props[key] = Proposal(key, key, 0, 0, 0.0, 0.0)
    target = p.blocked_on if blocked_hit else p.platforms
    if platform not in target:
        target.append(platform)


def _sources(p: Proposal, opt: Options) -> list[str]:
    out = []
    if p.contrast >= opt.min_z:
        out.append("contrast")
    if p.context >= opt.context_min:
        out.append("context")
    out += [f"platform:{x}" for x in sorted(set(p.platforms) | set(p.blocked_on))]
    if p.followed_z >= opt.min_z:
        out.append("sellers")
    return out


def _collapse(props: list[Proposal], limit: int) -> list[Proposal]:
    """Best first; a phrase nearly always inside a longer kept phrase gives way to it, and a longer phrase
    that only adds words to a better-ranked one is dropped."""
    by_key = {p.phrase: p for p in props}
    drop: set[str] = set()
    for p in props:
        words = p.phrase.split()
        for n in range(1, len(words)):
            for i in range(len(words) - n + 1):
                sub = by_key.get(" ".join(words[i : i + n]))
                if (
                    sub is not None
                    and sub.count_candidates
                    and p.count_candidates >= 0.9 * sub.count_candidates
                ):
                    drop.add(sub.phrase)
    ranked = sorted((p for p in props if p.phrase not in drop), key=lambda p: (-p.score, p.phrase))
    kept: list[Proposal] = []
    for p in ranked:
        padded = f" {p.phrase} "
        if any(f" {k.phrase} " in padded for k in kept):
            continue
        kept.append(p)
        if len(kept) >= limit:
            break
    return kept


def _status(counts: Mapping[str, int]) -> str:
    c, b = counts.get("candidates", 0), counts.get("background", 0)
    cd, bd = counts.get("candidate_descriptions", 0), counts.get("background_descriptions", 0)
    return f"compared {c} candidates ({cd} with a description) with {b} ordinary listings ({bd} with one)"


# -- database --------------------------------------------------------------------------------------------


def _term_keys(session: Any) -> dict[str, Any]:
    """Normalised text of every term and variant → its row (any status)."""

    keys: dict[str, Any] = {}
    for row in session.scalars(select(Term).order_by(Term.id)):
        keys.setdefault(normalise_phrase(row.text), row)
        for v in row.variants or ():
            keys.setdefault(normalise_phrase(v), row)
    return keys


@dataclass(slots=True)
class RunInputs:
    """What discovery reads for one sweep run (see :func:`gather`)."""

    run: Any
    lexicon: Lexicon
    candidates: list[Doc]
    others: list[Doc]
    background: list[Doc]
    background_status: str
    related: dict[str, list[str]]
    blocked: dict[str, list[str]]
    rejected: list[str]
    listings: int
    followed: list[Doc] = field(default_factory=list)


def gather(session: Any, sweep_run_id: int, *, thresholds: Any = None, model: Any = None) -> RunInputs:
    """The run's candidates and other listings, the usable background, platform signals, rejections.

    ``thresholds`` and ``model`` (the detection model sweeps score with) judge which background listings
    would be candidates."""

    from crawler.terms.background import load_background
    from crawler.terms.scorer import Scorer, Thresholds
    from storage.models import Finding, Seller

    run = session.get(SweepRun, sweep_run_id)
    if run is None:
        raise NotFound(f"no sweep run #{sweep_run_id}")
    # the run's listings: candidates (what sellers of bales write) and the rest (context only)
    listing_ids = select(Sighting.listing_id).where(Sighting.sweep_run_id == sweep_run_id).distinct()
    rows = session.execute(
        select(
            Listing.listing_key,
            Listing.url,
            Listing.title,
            Listing.description,
            Listing.verdict,
            Seller.name,
            Seller.platform_seller_id,
        )
        .outerjoin(Seller, Seller.id == Listing.seller_id)
        .where(Listing.id.in_(listing_ids))
        .order_by(Listing.id)
    ).all()
    cands: list[Doc] = []
    others: list[Doc] = []
    seen_keys: set[str] = set()
    candidate_shops: set[str] = set()
    for key, url, title, description, verdict, seller_name, seller_id in rows:
        seen_keys.add(key)
        shop = f"{key.split(':', 1)[0]}:{seller_id}" if seller_id else ""
        doc = Doc(title or "", description or "", key, url or "", seller_name or shop)
        if verdict in CANDIDATE_VERDICTS:
            cands.append(doc)
            if shop:
                candidate_shops.add(shop)
        else:
            others.append(doc)
    lexicon = store.load_lexicon(session)
    # the background: ordinary listings — minus any that a lexicon query also returned, that scores as a
    # candidate, or that a shop with candidates in this run sells (its other listings are not ordinary)
    background = load_background(session)
    scorer = Scorer(lexicon, thresholds or Thresholds(), model)
    back = [
        Doc(d.title, d.description, d.listing_key)
        for d in background.docs
        if d.listing_key not in seen_keys
        and d.seller_key not in candidate_shops
        and scorer.score(f"{d.title}\n{d.description}" if d.description else d.title).verdict
        not in CANDIDATE_VERDICTS
    ]
    related = (run.stats or {}).get("related_terms") or {}
    blocked: dict[str, list[str]] = defaultdict(list)
    for f in session.scalars(
        select(Finding).where(Finding.sweep_run_id == sweep_run_id, Finding.kind == "query_blocked")
    ):
        if f.query:
            blocked[f.platform].append(f.query)
    # the latest follow round (confirmed sellers' shops) within FOLLOW_MAX_AGE of this run
    followed: list[Doc] = []
    follow = session.scalars(
        select(SweepRun)
        .where(
            SweepRun.kind == "follow",
            SweepRun.status.in_(("completed", "partial")),
            SweepRun.started_at >= run.started_at - FOLLOW_MAX_AGE,
        )
        .order_by(SweepRun.id.desc())
        .limit(1)
    ).first()
    if follow is not None:
        ids = select(Sighting.listing_id).where(Sighting.sweep_run_id == follow.id).distinct()
        followed = [
            Doc(title or "", description or "", key, url or "")
            for key, url, title, description in session.execute(
                select(Listing.listing_key, Listing.url, Listing.title, Listing.description).where(
                    Listing.id.in_(ids)
                )
            )
        ]
    return RunInputs(
        run=run,
        lexicon=lexicon,
        candidates=cands,
        others=others,
        background=back,
        background_status=background.status(),
        related={str(k): [str(x) for x in v or ()] for k, v in related.items()}
        if isinstance(related, dict)
        else {},
        blocked=dict(blocked),
        rejected=[k for k, row in _term_keys(session).items() if row.status == "rejected"],
        listings=len(rows),
        followed=followed,
    )


def analyse(inputs: RunInputs, options: Options | None = None, *, min_background: int = 150) -> Result:
    """Rank one run's phrases — or say why nothing sound can be ranked (no listings, no candidates, too
    small a background): no proposals rather than noise."""
    run_id = inputs.run.id
    problem = None
    if not inputs.listings:
        problem = f"sweep run #{run_id} found no listings: nothing to learn from"
    elif not inputs.candidates:
        problem = f"sweep run #{run_id} has no candidate listings: nothing to learn from"
    elif len(inputs.background) < min_background:
        problem = (
            f"{inputs.background_status}; {len(inputs.background)} usable ordinary listings, "
            f"{min_background} needed to tell new words from everyday ones: no proposals "
            "(tertib terms background refresh)"
        )
    if problem is not None:
        counts = {"candidates": len(inputs.candidates), "background": len(inputs.background)}
        return Result([], problem, counts, skipped=True)
    return discover(
        inputs.candidates,
        inputs.background,
        inputs.lexicon,
        options=options,
        context_docs=inputs.others,
        related=inputs.related,
        blocked=inputs.blocked,
        rejected=inputs.rejected,
        followed=inputs.followed,
    )


def run_discovery(
    session: Any,
    sweep_run_id: int,
    *,
    min_support: int = 3,
    min_z: float = 1.96,
    limit: int = 30,
    actor: str = "discovery",
    options: Options | None = None,
    thresholds: Any = None,
    model: Any = None,
    min_background: int = 150,
) -> list[Any]:
    """Mine one sweep run against the stored background; store/update proposed terms.

    Steps: 1. gather the run's listings, the usable background and platform signals; 2. record what the
    run's queries for approved discovered terms found (:func:`record_yields`); 3. rank (or say why not);
    4. store the proposals with their evidence. Returns the Term rows touched; what was compared (or why
    nothing could be) is kept in the run's ``stats["discovery"]`` and shown by ``tertib terms suggest``.
    """
    # 1. inputs
    inputs = gather(session, sweep_run_id, thresholds=thresholds, model=model)
    # 2. closing the loop for terms approved earlier
    record_yields(session, inputs.run)
    # 3. rank
    opt = options or Options(min_support=min_support, min_z=min_z, limit=limit)
    result = analyse(inputs, opt, min_background=min_background)
    inputs.run.stats = {
        **(inputs.run.stats or {}),
        "discovery": {
            "status": "skipped" if result.skipped else "ok",
            "message": result.status,
            "proposals": len(result.proposals),
            **result.counts,
        },
    }
    # 4. store
    return _store(session, inputs.run, result.proposals, inputs.candidates, actor)


def _store(session: Any, run: Any, proposals: list[Proposal], cands: list[Doc], actor: str) -> list[Any]:

    now = datetime.now(UTC)
    existing = _term_keys(session)
    touched: list[Any] = []
    for p in proposals:
        examples = [cands[i] for i in p.examples]
        evidence = {
            "score": p.score,
            "contrast": p.contrast,
            "z_title": p.z_title,
            "z_description": p.z_description,
            "context": p.context,
            "neighbours": p.neighbours,
            "count_candidates": p.count_candidates,
            "count_background": p.count_background,
            "lift": p.lift,
            "platforms": p.platforms,
            "blocked_on": p.blocked_on,
            "followed": p.followed,
            "followed_z": p.followed_z,
            "sources": p.sources,
            "examples": [d.key for d in examples],
            "example_listings": [
                {"key": d.key, "url": d.url, "title": d.title[:200], "seller": d.seller} for d in examples
            ],
            "sellers": [[name, count] for name, count in p.sellers],
            "sweep_run_id": run.id,
            "last_seen": now.isoformat(),
        }
        row = existing.get(p.phrase)
        if row is not None:
            if row.status != "proposed":
                continue  # active, retired or rejected: an analyst already decided
            old = row.discovery or {}
            runs = sorted({*old.get("sweep_run_ids", []), run.id})
            first = old.get("first_seen") or now.isoformat()
            sources = sorted({*old.get("sources_seen", []), *p.sources})
            row.discovery = {**evidence, "first_seen": first, "sweep_run_ids": runs, "sources_seen": sources}
            touched.append(row)
            continue
        row = Term(
            text=p.display[:200],
            variants=[],
            category="standard",
            signal="IMPORT-leaning",
            strength="M",
            status="proposed",
            provenance="discovered",
            note="proposed by discovery",
            created_at=now,
            created_by=actor,
            discovery={
                **evidence,
                "first_seen": now.isoformat(),
                "sweep_run_ids": [run.id],
                "sources_seen": list(p.sources),
            },
        )
        session.add(row)
        existing[p.phrase] = row
        touched.append(row)
    session.flush()
    return touched


@dataclass(slots=True)
class ProposalView:
    """A stored proposal as the CLI (and any reader) shows it; tolerant of rows written by older code."""

    id: int
    phrase: str
    status: str
    provenance: str
    score: float
    count_candidates: int
    count_background: int
    contrast: float
    context: float
    neighbours: list[str]
    platforms: list[str]
    blocked_on: list[str]
    followed: int
    sources: list[str]
    first_seen: str | None
    last_seen: str | None
    sweep_run_ids: list[int]
    example_listings: list[dict[str, str]]
    sellers: list[tuple[str, int]]
    yields: list[dict[str, Any]]

    @classmethod
    def of(cls, row: Any) -> ProposalView:
        d = row.discovery or {}
        examples = [x for x in d.get("example_listings") or [] if isinstance(x, dict)]
        if not examples:  # rows from before evidence was kept: keys only
            examples = [{"key": k, "url": "", "title": "", "seller": ""} for k in d.get("examples") or []]
        return cls(
            id=row.id,
            phrase=row.text,
            status=row.status,
            provenance=row.provenance,
            score=float(d.get("score", d.get("log_odds")) or 0.0),
            count_candidates=int(d.get("count_candidates") or 0),
            count_background=int(d.get("count_background", d.get("count_others")) or 0),
            contrast=float(d.get("contrast") or 0.0),
            context=float(d.get("context") or 0.0),
            neighbours=[str(x) for x in d.get("neighbours") or []],
            platforms=[str(x) for x in d.get("platforms") or []],
            blocked_on=[str(x) for x in d.get("blocked_on") or []],
            followed=int(d.get("followed") or 0),
            sources=[str(x) for x in d.get("sources") or []],
            first_seen=d.get("first_seen"),
            last_seen=d.get("last_seen") or d.get("updated_at"),
            sweep_run_ids=[int(x) for x in d.get("sweep_run_ids") or []],
            example_listings=[{k: str(v) for k, v in x.items()} for x in examples],
            sellers=[(str(x[0]), int(x[1])) for x in d.get("sellers") or [] if len(x) == 2],
            yields=[x for x in d.get("yield") or [] if isinstance(x, dict)],
        )

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}


def ranked_proposals(session: Any) -> list[Any]:
    """Proposed terms, best first: the latest score, then support, then age."""
    rows = list(session.scalars(select(Term).where(Term.status == "proposed")))

    def key(row: Any) -> tuple[float, int, int]:
        d = row.discovery or {}
        score = d.get("score", d.get("log_odds")) or 0.0
        return (-float(score), -int(d.get("count_candidates") or 0), row.id)

    return sorted(rows, key=key)


def last_discovery(session: Any) -> dict[str, Any] | None:
    """The discovery status of the latest sweep run that has one (for ``tertib terms suggest``)."""

    for run in session.scalars(
        select(SweepRun).where(SweepRun.kind == "sweep").order_by(SweepRun.id.desc()).limit(20)
    ):
        info = (run.stats or {}).get("discovery")
        if info:
            return {"sweep_run_id": run.id, **info}
    return None


def _chunks(values: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def record_yields(session: Any, run: Any) -> None:
    """Closing the loop: for each approved discovered term this sweep searched for, record what its query
    found and how much of it no other term's query had found (in this run or any earlier one)."""
    from sqlalchemy import func

    queries = set(run.queries or [])
    if not queries:
        return
    terms = session.scalars(
        select(Term).where(Term.provenance == "discovered", Term.status == "active", Term.text.in_(queries))
    ).all()
    for term in terms:
        d = term.discovery or {}
        yields = [y for y in d.get("yield") or [] if isinstance(y, dict)]
        if any(y.get("sweep_run_id") == run.id for y in yields):
            continue
        ids = sorted(
            session.scalars(
                select(Sighting.listing_id)
                .where(Sighting.sweep_run_id == run.id, Sighting.query == term.text)
                .distinct()
            )
        )
        elsewhere: set[int] = set()
        for chunk in _chunks(ids):
            elsewhere.update(
                session.scalars(
                    select(Sighting.listing_id)
                    .where(Sighting.listing_id.in_(chunk), Sighting.query != term.text)
                    .distinct()
                )
            )
        new = [i for i in ids if i not in elsewhere]
        new_candidates = 0
        examples: list[str] = []
        for chunk in _chunks(new):
            new_candidates += int(
                session.scalar(
                    select(func.count())
                    .select_from(Listing)
                    .where(Listing.id.in_(chunk), Listing.verdict.in_(CANDIDATE_VERDICTS))
                )
                or 0
            )
            if len(examples) < 5:
                examples += session.scalars(
                    select(Listing.listing_key).where(Listing.id.in_(chunk)).order_by(Listing.id).limit(5)
                ).all()
        yields.append(
            {
                "sweep_run_id": run.id,
                "listings": len(ids),
                "new_listings": len(new),
                "new_candidates": new_candidates,
                "examples": examples[:5],
                "at": datetime.now(UTC).isoformat(),
            }
        )
        term.discovery = {**d, "yield": yields}


def source_precision(session: Any) -> dict[str, tuple[int, int]]:
    """Per discovery source: (approved, rejected) proposals — precision = approved / decided.

    A proposal counts for every source that ever backed it (``sources_seen``); approved means an analyst
    activated it (it may have been retired since), rejected that an analyst rejected it.
    """

    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in session.scalars(select(Term).where(Term.provenance == "discovered")):
        if row.status == "rejected":
            slot = 1
        elif row.approved_at is not None and row.status in ("active", "retired"):
            slot = 0
        else:
            continue
        d = row.discovery or {}
        for source in d.get("sources_seen") or d.get("sources") or ["unattributed"]:
            counts[str(source)][slot] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}
