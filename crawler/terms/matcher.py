"""Find lexicon terms and bulk quantities in normalised listing text.

:class:`Matcher` is built once from a :class:`~crawler.terms.lexicon.Lexicon` and reused for every
listing. For one :class:`~crawler.terms.normalise.Normalised` text it finds, in this order:

1. **Quantities** by regular expression (:data:`QUANTITY_PATTERNS`): piece counts ("isi 500 pcs",
   "300pcs"), weights ("100 kg"), bale counts ("1 bal", "2 karung"), prices per bale ("Rp 5 jt/bal").
   Money amounts ("50rb", "5 jt") are masked so "rb" (a regional word for used goods) is not read in a price.
2. **Exact terms** with one Aho-Corasick automaton over every term and variant, normalised the same way
   as the text; a hit counts only on token boundaries, and a hit inside a longer hit is dropped.
3. **Joined words** ("balpresimport", "thriftkorea"): a token no exact hit explains is segmented into
   lexicon pieces and known filler words (stopwords, clothing words); it counts when every piece is known
   and at least one is a lexicon term. Pieces are at least 3 letters, so "balita" or "sambal" never match.
4. **Fuzzy near-misses** of longer single-word terms (7+ letters) with rapidfuzz Levenshtein distance
   (1 edit up to 9 letters, 2 from 10), same first letter, tokens of 6+ letters only: bounded work.

Segmentation and fuzzy results are cached per token, and tokens that give neither are remembered, so
most texts skip step 3/4 with one set test; exact terms are found with space-padded keys over the
space-padded text, so every hit is on token boundaries. :meth:`Matcher.match_rows` gives the matches as
plain tuples (the scorer's fast path); :meth:`Matcher.match` wraps them in :class:`Match`.

No settings drive this module; to extend, add filler words to :data:`CONTEXT_WORDS` (or the packaged
stopword list) or a pattern to :data:`QUANTITY_PATTERNS` (the scorer reads its ``kind``; a kind whose
number and unit should be read without a second match also goes into :data:`_VALUE_GROUPS`).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from operator import itemgetter

import ahocorasick
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from crawler.terms.lexicon import Lexicon, LexTerm, load_stopwords
from crawler.terms.normalise import Normalised, normalise_phrase, word_set

# Clothing and commerce words that may be glued to a lexicon term ("jualbalkorea", "bajuthrift").
CONTEXT_WORDS = word_set(
    """baju pakaian kaos kemeja jaket celana hoodie sweater dress rok jeans jean sepatu tas outer blazer
    cardigan kardigan anak pria wanita cewek cowok branded brand murah jual ready stok gudang bundle bundel
    fashion original ori asli celana kulot atasan bawahan setelan gamis hijab kerudung jas mantel parka
    coat jacket shirt tshirt kaus polo import impor korea jepang grosir reseller ecer premium super
    """
)

# No look-behind at the start (it defeats the regex engine's prefix scan): the left word boundary is
# checked in code instead.
_E = r"(?![a-z0-9])"
_MONEY = r"(?:rp ?\d+(?: ?(?:jt|juta|rb|ribu|k))?|\d+ ?(?:jt|juta|rb|ribu|k))"
# kind → regex body; group "n" is the number, "u" the unit, "money" the amount. Tried in this order at
# each position (first alternative wins), as one combined pattern: a single scan of the text.
QUANTITY_SOURCES: dict[str, str] = {
    "price_per_bale": r"(?P<money>" + _MONEY + r") ?(?:per ?|/ ?)?(?P<u>bal|bale|karung|koli)",
    "pieces": r"isi ?(?P<n>\d+) ?(?P<u>pcs|pc|helai|potong|lembar|biji|pieces|piece|pasang)?"
    r"|(?P<n2>\d+) ?(?P<u2>pcs|helai|potong|lembar|pieces)",
    "weight": r"(?P<n>\d+) ?(?P<u>kg|kilo|kilogram|ton)",
    "bales": r"(?P<n>\d+) ?(?P<u>bal|bale|karung|karungan|koli|dus)",
    "money": _MONEY,
}
QUANTITY_PATTERNS: dict[str, re.Pattern[str]] = {k: re.compile(v + _E) for k, v in QUANTITY_SOURCES.items()}
_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>")


def _combined(sources: dict[str, str]) -> re.Pattern[str]:
    """One alternation of every kind: the kind is the outer named group (``lastgroup``), its inner
    groups are renamed ``{kind}__{name}`` so one match gives every value."""
    parts = []
    for kind, src in sources.items():
        inner = _NAMED_GROUP.sub(lambda g, k=kind: f"(?P<{k}__{g[1]}>", src)  # type: ignore[misc]
        parts.append(f"(?P<{kind}>(?:{inner}){_E})")
    return re.compile("|".join(parts))


_COMBINED = _combined(QUANTITY_SOURCES)
# Kinds whose number and unit are read straight from the combined match: (number group, unit group).
# Any other kind is read from its own pattern, as is "pieces" in its first alternative ("isi 300"), so
# a new kind works without an entry here.
_VALUE_GROUPS: dict[str, tuple[str, str]] = {
    "pieces": ("pieces__n2", "pieces__u2"),
    "weight": ("weight__n", "weight__u"),
    "bales": ("bales__n", "bales__u"),
}
# every quantity starts at "rp", "isi" or the first digit of a number: try the patterns only there. The
# same as ``rp ?\d|isi ?\d|(?<!\d)\d``, written to start with a character class so that the regex
# engine skips ahead to the next [0-9ri] instead of trying three alternatives at every position
_ANCHOR = re.compile(r"[0-9ri](?:(?<=r)p ?\d|(?<=i)si ?\d|(?<=\d)(?<!\d\d))")
_HAS_DIGIT = re.compile(r"\d")
# Longest token tried as joined words (real ones, e.g. "jualbalpresimportkorea", stay under 40 letters):
# bounds the per-token work and what the caches keep when a seller pastes one endless word.
MAX_JOINED_TOKEN = 100


@dataclass(slots=True)
class Match:
    """One signal found in normalised text; ``start``/``end`` are normalised offsets."""

    name: str  # the term's text, or a readable quantity such as "isi 300 pcs"
    start: int
    end: int
    kind: str  # exact / joined / fuzzy, or a quantity kind: pieces / weight / bales / price_per_bale
    term: LexTerm | None = None
    form: str = ""  # the normalised variant that matched
    similarity: float = 1.0
    quantity: int | None = None
    unit: str = ""


_ROW_SPAN = itemgetter(1, 2)


def _start_longest_first(hit: tuple[int, int, str, LexTerm]) -> tuple[int, int]:
    return hit[0], hit[0] - hit[1]


# A match as a plain tuple, in Match's field order: name, start, end, kind, term, form, similarity,
# quantity, unit
MatchRow = tuple[str, int, int, str, LexTerm | None, str, float, int | None, str]


class Matcher:
    def __init__(self, lexicon: Lexicon, *, fuzzy_min_len: int = 7) -> None:
        self.lexicon = lexicon
        self.terms = lexicon.active
        self._automaton = ahocorasick.Automaton()
        self._keys: dict[str, tuple[LexTerm, str]] = {}
        joined: dict[str, tuple[LexTerm, str]] = {}
        for term in self.terms:
            for form in term.forms():
                for variant in {form, form.replace("-", " ")}:
                    key = normalise_phrase(variant)
                    if not key or key in self._keys:
                        continue
                    self._keys[key] = (term, key)
                    spaceless = key.replace(" ", "")
                    if len(spaceless) >= 3 and not spaceless.isdigit():
                        joined.setdefault(spaceless, (term, key))
        for key, value in self._keys.items():
            # padded with spaces (see :meth:`match`); the value: hit end - this = start in the text
            self._automaton.add_word(f" {key} ", (len(key) + 1, key, value[0]))
        if self._keys:
            self._automaton.make_automaton()
        self._joined = joined
        stop = load_stopwords()
        self._fillers = frozenset(w for w in stop | CONTEXT_WORDS if len(w) >= 3)
        self._known = self._fillers | frozenset(self._keys)
        self._fuzzy_keys = [k for k in self._keys if " " not in k and len(k) >= fuzzy_min_len and k.isalpha()]
        self._fuzzy_min_len = fuzzy_min_len
        # a token more than two edits longer than every fuzzy key cannot be a near-miss of one
        self._fuzzy_max_len = max((len(k) for k in self._fuzzy_keys), default=0) + 2
        self._seg_cache: dict[str, tuple[tuple[int, int, str], ...]] = {}
        self._plain: set[str] = set(self._fillers)
        self._fuzzy_cache: dict[str, tuple[str, int] | None] = {}
        self._token_hits: dict[str, tuple[tuple[int, int, str, str, float], ...]] = {}
        self._max_piece = max((len(k) for k in joined), default=3)

    # -- per-token helpers (cached) ------------------------------------------------------------
    def _segment(self, tok: str) -> tuple[tuple[int, int, str], ...]:
        """Lexicon pieces (start, end, key) of a joined token, or () when it is not made of known parts."""
        cached = self._seg_cache.get(tok)
        if cached is not None:
            return cached
        n = len(tok)
        # best[i] = (pieces used, lexicon pieces, previous cut, lexicon key of the last piece or None) for
        # tok[:i]; back-pointers instead of paths keep this linear in the token's length
        best: list[tuple[int, int, int, str | None] | None] = [None] * (n + 1)
        best[0] = (0, 0, -1, None)
        for i in range(n):
            cur = best[i]
            if cur is None:
                continue
            for j in range(i + 3, min(n, i + self._max_piece + 12) + 1):
                piece = tok[i:j]
                lex = self._joined.get(piece)
                if lex is None and piece not in self._fillers:
                    continue
                cand = (cur[0] + 1, cur[1] + (lex is not None), i, lex[1] if lex is not None else None)
                old = best[j]
                if old is None or (cand[0], -cand[1]) < (old[0], -old[1]):
                    best[j] = cand
        end = best[n]
        result: tuple[tuple[int, int, str], ...] = ()
        if end is not None and end[1] > 0 and end[0] >= 2:
            path: list[tuple[int, int, str]] = []
            j = n
            while j > 0:
                step = best[j]
                assert step is not None
                if step[3] is not None:
                    path.append((step[2], j, step[3]))
                j = step[2]
            result = tuple(reversed(path))
        if len(self._seg_cache) > 200_000:
            self._seg_cache.clear()
        self._seg_cache[tok] = result
        return result

    def _fuzzy(self, tok: str) -> tuple[str, int] | None:
        if tok in self._fuzzy_cache:
            return self._fuzzy_cache[tok]
        result: tuple[str, int] | None = None
        if self._fuzzy_keys and tok not in self._known:
            max_d = 1 if len(tok) < 10 else 2
            found = process.extractOne(tok, self._fuzzy_keys, scorer=Levenshtein.distance, score_cutoff=max_d)
            if found is not None and found[0][0] == tok[0] and abs(len(found[0]) - len(tok)) <= max_d:
                result = (found[0], int(found[1]))
        if len(self._fuzzy_cache) > 200_000:
            self._fuzzy_cache.clear()
        self._fuzzy_cache[tok] = result
        return result

    def _in_token(self, tok: str) -> tuple[tuple[int, int, str, str, float], ...]:
        """Joined pieces, else a fuzzy near-miss, of one token: (start, end, key, kind, similarity)
        relative to the token; () when neither (whether an exact hit covers the token is checked by the
        caller, so the answer depends on the token alone)."""
        if len(tok) < 5 or len(tok) > MAX_JOINED_TOKEN or not tok.isalpha():
            return ()
        pieces = self._segment(tok)
        if pieces:
            return tuple((a, b, key, "joined", 1.0) for a, b, key in pieces)
        fz = self._fuzzy(tok) if self._fuzzy_min_len - 1 <= len(tok) <= self._fuzzy_max_len else None
        if fz is None:
            return ()
        key, dist = fz
        return ((0, len(tok), key, "fuzzy", 1.0 - dist / max(len(key), len(tok))),)

    # -- matching --------------------------------------------------------------------------------
    def quantities(self, text: str) -> tuple[list[Match], list[tuple[int, int]]]:
        """Quantity matches and the money spans to mask."""
        found, money = self._quantities(text)
        return [Match(*q) for q in found], money

    def _quantities(self, text: str) -> tuple[list[MatchRow], list[tuple[int, int]]]:
        if not _HAS_DIGIT.search(text):
            return [], []
        found: list[MatchRow] = []
        money: list[tuple[int, int]] = []
        covered = 0
        for anchor in _ANCHOR.finditer(text):
            start = anchor.start()
            if start < covered or (start and text[start - 1].isalnum()):
                continue  # inside the previous quantity, or not on a word boundary ("x100 kg", "tisi 300")
            hit = _COMBINED.match(text, start)
            if hit is None:
                continue
            covered = hit.end()
            kind = hit.lastgroup or ""
            if kind == "money":
                money.append(hit.span())
                continue
            if kind == "price_per_bale":
                money.append(hit.span("price_per_bale__money"))
                unit = hit.group("price_per_bale__u")
                found.append((hit.group(), start, covered, kind, None, "", 1.0, None, unit))
                continue
            value_groups = _VALUE_GROUPS.get(kind)
            if value_groups is None or (kind == "pieces" and hit.group("pieces__n") is not None):
                # the kind's own pattern gives the span: in "pieces" its "isi N" alternative has no end
                # check, so the span may run on ("isi 2 " in "isi 2 0 0 pcs") and always has
                m = QUANTITY_PATTERNS[kind].match(text, start)
                if m is None:
                    continue
                hit = m
                groups = m.groupdict()
                n = groups.get("n") or groups.get("n2")
                unit = groups.get("u") or groups.get("u2")
            else:
                n, unit = hit.group(*value_groups)
            if not n or len(n) > 9:
                continue
            found.append((hit.group(), hit.start(), hit.end(), kind, None, "", 1.0, int(n), unit or ""))
        return found, money

    def match(self, norm: Normalised) -> list[Match]:
        return [Match(*row) for row in self.match_rows(norm.text)[0]]

    def match_rows(self, text: str) -> tuple[list[MatchRow], list[str]]:
        """:meth:`match` on normalised text as plain tuples in :class:`Match`'s field order (cheaper to
        build, for the scorer), and the text's words."""
        quantities, money = self._quantities(text)
        # the automaton holds " key " and runs over " text ": every hit sits on token boundaries
        hits: list[tuple[int, int, str, LexTerm]] = (
            [(pe - o, pe - 1, key, term) for pe, (o, key, term) in self._automaton.iter(f" {text} ")]
            if self._keys
            else []
        )
        # longest first; a hit inside a longer one is dropped (partial overlaps of different terms stay,
        # "baju bekas korea" is both "baju bekas" and "bekas korea"); never inside a money amount
        # (linear: hits by start, longer first, so a hit is inside an earlier one exactly when an earlier
        # hit reaches as far; the kept hits then have increasing starts *and* ends, which lets the token
        # walk below find an overlapping hit by bisection; money spans are disjoint and sorted)
        if len(hits) > 1:
            hits.sort(key=_start_longest_first)
        taken_starts: list[int] = []
        taken_ends: list[int] = []
        out: list[MatchRow] = []
        reach = -1
        money_starts = [a for a, _ in money]
        for start, end, key, term in hits:
            if end <= reach:
                continue  # inside a longer (or earlier, equally long) hit
            reach = end
            if money:
                k = bisect_right(money_starts, start) - 1
                if k >= 0 and end <= money[k][1]:
                    continue  # never inside a money amount
            taken_starts.append(start)
            taken_ends.append(end)
            out.append((term.text, start, end, "exact", term, key, 1.0, None, ""))
        # joined words and fuzzy near-misses in tokens no exact hit explains; ``plain`` holds the tokens
        # known to yield neither (short, not all letters, or tried before), so most texts skip the walk
        plain = self._plain
        words = text.split(" ")
        te = -1
        for tok in () if plain.issuperset(words) else words:
            ts = te + 1  # words are separated by exactly one space in normalised text
            te = ts + len(tok)
            if tok in plain:
                continue
            found = self._token_hits.get(tok)
            if found is None:
                found = self._in_token(tok)
                if not found:
                    if len(plain) < 500_000:
                        plain.add(tok)  # next time this costs one set lookup
                    continue
                if len(self._token_hits) > 200_000:
                    self._token_hits.clear()
                self._token_hits[tok] = found
            k = bisect_right(taken_ends, ts)  # the first kept hit ending after ts: does it start before te?
            if k < len(taken_ends) and taken_starts[k] < te:
                continue
            for a, b, key, kind, sim in found:
                term = self._keys[key][0]
                out.append((term.text, ts + a, ts + b, kind, term, key, sim, None, ""))
        out.extend(quantities)
        if len(out) > 1:
            out.sort(key=_ROW_SPAN)
        return out, words
