"""Evasion-proof normalisation of Indonesian listing text, with a map back to the original characters.

Sellers dodge keyword filters with Unicode look-alikes, decoration, leetspeak, stretched letters,
separators inside words and joined words. :func:`normalise` undoes these and returns a
:class:`Normalised` whose ``text`` is lower-case ASCII-ish tokens separated by single spaces, plus two
offset arrays so that any span of the normalised text maps back to the exact original characters
(:meth:`Normalised.original_span`). The matcher, the scorer's explanations and discovery all rely on that.

Steps, in order (the same numbers appear as comments in :func:`normalise`):

1. Fold each character: NFKC/NFKD compatibility forms (full-width, mathematical bold, ligatures),
   diacritics stripped, case folded, Cyrillic/Greek homoglyphs mapped to Latin, zero-width characters
   removed, emoji and other decoration turned into separators.
2. Split into word pieces (``[a-z0-9@$]+``) and the gaps between them.
3. Re-join pieces that a seller split: a single joiner (``. - _ ' *``) between letters ("bal-pres",
   "t.h.r.i.f.t"), runs of three or more single letters ("b a l"), thousands groups ("5.000").
4. Per token: leetspeak (0→o 1→i/l 3→e 4→a 5→s 7→t @→a $→s; ! → i and | → l between letters), only
   where a digit sits among letters, so
   "500pcs" and "100kg" stay numbers), repeated letters collapsed to one ("thriftt", "baaal", "ballpress"
   → "thrift", "bal", "balpres"; patterns are normalised the same way, so real double letters still
   match), then common abbreviations (:data:`ABBREVIATIONS`, e.g. "bks" → "bekas").

Speed (``docs/terms.md``, Throughput): when no piece can be re-joined (step 3 has nothing to do, which
three cheap searches tell), each word goes through steps 4 alone via a bounded per-word memo
(:data:`_WORDS`), and the offset table behind :meth:`Normalised.original_span` is built only when a span
is asked for; the same per-word function (:func:`_word_map`) serves re-joined words. Any change to
steps 1–4 must keep ``tests/test_score_regression.py`` green.

Joined words ("balpresimport") are split by the matcher, which knows the lexicon (see
:mod:`crawler.terms.matcher`). No settings drive this module; extend it by adding to
:data:`ABBREVIATIONS`, :data:`HOMOGLYPHS`, :data:`LEET` or :data:`JOINERS` and adding a test case in
``tests/test_normalise.py`` with its original-span check.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from functools import lru_cache
from typing import cast

# Leetspeak digits/symbols → letters. "1" is "l" after a vowel ("ba1" → "bal"), else "i" ("thr1ft").
LEET: dict[str, str] = {
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l",
}  # fmt: skip
VOWELS = frozenset("aeiou")

# Look-alike letters from other scripts that NFKC leaves alone.
HOMOGLYPHS: dict[str, str] = {
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
    "ѕ": "s", "к": "k", "м": "m", "т": "t", "н": "h", "в": "b", "ԁ": "d", "ӏ": "l", "ո": "n",
    "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "β": "b", "η": "n", "μ": "u",
}  # fmt: skip

# Abbreviations sellers use, keyed by their normalised (collapsed) form.
ABBREVIATIONS: dict[str, str] = {
    "bks": "bekas",
    "bkas": "bekas",
    "bekass": "bekas",
    "brg": "barang",
    "brng": "barang",
    "pkaian": "pakaian",
    "pakean": "pakaian",
    "pkn": "pakaian",
    "bju": "baju",
    "scnd": "second",
    "secon": "second",
    "seccond": "second",
    "krg": "karung",
    "krgn": "karungan",
    "blpres": "balpres",
    "inport": "import",
    "imprt": "import",
    "impot": "import",
    "jpn": "jepang",
    "jpng": "jepang",
    "kor": "korea",
    "krea": "korea",
    "negri": "negeri",
    "lsn": "lusin",
    "sortir": "sortir",
    "thrif": "thrift",
    "trift": "thrift",
    "thrif7": "thrift",
    "preloved": "preloved",
    "prelove": "preloved",
}

_JOINER_SET = frozenset(".-_'*’`")

# Characters that glue a word back together when they sit between two letters.
JOINERS = frozenset(".-_'*’`")
_GLUE = JOINERS | {","}  # a one-character gap that may join two pieces (joiners, thousands separators)

_PIECE = re.compile(r"[a-z0-9@$]+(?:[!|][a-z][a-z0-9@$]*)*")  # "!" and "|" only inside a word
_HAS_REPEAT = re.compile(r"([a-z])\1")
_JOINED = re.compile(r"[a-z@$][.\-_'*’`][a-z@$]")
_THOUSANDS = re.compile(r"\d[.,]\d{3}")
# Whether step 3 may re-join pieces (:func:`_may_join`): a lone letter (or @/$) between non-word
# characters, a joiner between letters, a thousands group. Three cheap searches beat one alternation.
_LONE = re.compile(r"[^a-z0-9@$][a-z@$][^a-z0-9@$]")  # searched in the text padded with spaces
_LONE_PADDED = re.compile(r" [a-z] ")  # the same for text of letters, digits and spaces only
_NON_PLAIN = re.compile(r"[^a-z0-9 ]")
_DIGITS = frozenset("0123456789")
_LEET_CHARS = frozenset(LEET)


# One output token: (text, start in the normalised text, start in the folded text when its characters map
# one to one, else per-character folded (starts, ends)). A plain tuple: built once per word, so it is cheap.
_Tok = tuple[str, int, int, tuple[tuple[int, ...], tuple[int, ...]] | None]


class Normalised:
    """Normalised text plus the way back: any normalised span maps to the original characters.

    Offsets are kept per token and resolved only when asked (:meth:`original_span`), so normalising
    stays cheap for the many texts whose matches are never shown. For plain ASCII text (the fast path)
    even the token table is built only on demand.
    """

    __slots__ = ("_fmap", "_folded_text", "_groups", "_starts_cache", "_toks_cache", "original", "text")

    def __init__(
        self,
        original: str,
        text: str,
        toks: tuple[_Tok, ...] | None,
        fmap: Sequence[int] | None,
        folded: str = "",
        groups: list[list[tuple[int, int]]] | None = None,
    ) -> None:
        self.original = original
        self.text = text
        self._toks_cache = toks
        self._starts_cache: tuple[int, ...] | None = None
        self._fmap = fmap  # folded index → original index (None: identity)
        self._folded_text = folded  # kept for the lazy token table
        self._groups = groups  # the folded spans of each token's pieces (None: one piece per token)

    @property
    def _toks(self) -> tuple[_Tok, ...]:
        if self._toks_cache is None:
            toks: list[_Tok] = []
            pos = 0
            groups = self._groups
            if groups is None:  # every piece a token of its own
                groups = [[m.span()] for m in _PIECE.finditer(self._folded_text)]
            folded = self._folded_text
            for group in groups:
                if len(group) == 1:
                    fs, fe = group[0]
                    tok, rel = _word_map(folded[fs:fe])
                    if not tok:
                        continue
                    if rel is None:
                        toks.append((tok, pos, fs, None))
                    else:
                        starts = tuple([fs + k for k in rel[0]])
                        toks.append((tok, pos, starts[0], (starts, tuple([fs + k for k in rel[1]]))))
                else:  # pieces re-joined across gaps: map through the folded index of each character
                    idx = [fi for a, b in group for fi in range(a, b)]
                    tok, rel = _word_map("".join([folded[a:b] for a, b in group]))
                    if not tok:
                        continue
                    if rel is None:
                        maps = (tuple(idx), tuple([fi + 1 for fi in idx]))
                    else:
                        maps = (tuple([idx[k] for k in rel[0]]), tuple([idx[k - 1] + 1 for k in rel[1]]))
                    toks.append((tok, pos, maps[0][0], maps))
                pos += len(tok) + 1
            self._toks_cache = tuple(toks)
        return self._toks_cache

    @property
    def _starts(self) -> tuple[int, ...]:
        if self._starts_cache is None:
            self._starts_cache = tuple([t[1] for t in self._toks])
        return self._starts_cache

    def __repr__(self) -> str:
        return f"Normalised({self.original!r} -> {self.text!r})"

    def _folded(self, pos: int, *, end: bool) -> int:
        i = bisect_right(self._starts, pos) - 1
        text, start, fstart, fmaps = self._toks[max(i, 0)]
        k = pos - start
        if k >= len(text):  # a space between tokens: snap to the neighbouring token
            if end:
                k = len(text) - 1
            else:
                text, start, fstart, fmaps = self._toks[i + 1]
                k = 0
        if fmaps is None:
            return fstart + k + (1 if end else 0)
        return fmaps[1][k] if end else fmaps[0][k]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map the normalised span ``[start, end)`` to the original text's ``[start, end)``."""
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"span {start}..{end} outside normalised text of length {len(self.text)}")
        fs = self._folded(start, end=False)
        fe = self._folded(end - 1, end=True)
        if self._fmap is None:
            return fs, fe
        return self._fmap[fs], self._fmap[fe - 1] + 1

    def original_text(self, start: int, end: int) -> str:
        a, b = self.original_span(start, end)
        return self.original[a:b]

    def tokens(self) -> list[tuple[str, int, int]]:
        """``(token, start, end)`` in normalised coordinates."""
        return [(t[0], t[1], t[1] + len(t[0])) for t in self._toks]

    def words(self) -> list[str]:
        return [t[0] for t in self._toks]


@lru_cache(maxsize=4096)
def _fold_char(c: str) -> str:
    """One non-ASCII character → its folded form ('' to drop, ' ' for a separator)."""
    if c in HOMOGLYPHS:
        return HOMOGLYPHS[c]
    cat = unicodedata.category(c)
    if cat == "Cf" or c in "\ufe0e\ufe0f":  # zero-width joiners/spaces, variation selectors
        return ""
    if cat in ("Mn", "Me"):
        return ""
    if cat == "Pd":
        return "-"
    if c in "·•∙":
        return "."
    out = []
    for d in unicodedata.normalize("NFKD", c):
        if unicodedata.category(d) in ("Mn", "Me"):
            continue
        for e in d.casefold():
            e = HOMOGLYPHS.get(e, e)
            if e.isascii():
                out.append(e)
            elif unicodedata.category(e)[0] in "LN":
                # letters of other scripts have no Latin reading: keep them out of the tokens
                out.append(" ")
            else:
                out.append(" ")
    return "".join(out)


_ASCII_RUN = re.compile(r"[\x00-\x7f]+|[^\x00-\x7f]")


def _fold(text: str) -> tuple[str, list[int] | None]:
    if text.isascii():
        return text.lower(), None
    chars: list[str] = []
    fmap: list[int] = []
    for m in _ASCII_RUN.finditer(text):  # runs of ASCII in bulk, other characters one by one
        s, e = m.span()
        if e - s > 1 or text[s] < "\x80":
            chars.append(m.group().lower())
            fmap.extend(range(s, e))
            continue
        for ch in _fold_char(text[s]):
            chars.append(ch)
            fmap.append(s)
    return "".join(chars), fmap


def _leet(tok: str) -> str:
    """Leetspeak inside a word; numbers ("500pcs", "isi500", "rp5", "x100") are left alone.

    A leet character is read as a letter when it has a letter before it and either a letter after it
    ("b4l", "thr1ft") or nothing after it ("ba1"), and it is not part of a run of two or more digits.
    A leading "@" (an account handle) is dropped and a leading "$" read as "s".
    """
    if tok.startswith("rp") or _LEET_CHARS.isdisjoint(tok):
        return tok
    n = len(tok)
    out = list(tok)
    before = False  # a letter among out[:i] (kept as we go: linear in the word's length)
    for i, c in enumerate(tok):
        if c not in _LEET_CHARS:
            before = before or c.isalpha()
            continue
        if i == 0:
            if c == "@":
                out[0] = ""
            elif c == "$" and n > 1 and tok[1].isalpha():
                out[0] = "s"
                before = True
            continue
        if c in _DIGITS and ((i > 0 and tok[i - 1] in _DIGITS) or (i + 1 < n and tok[i + 1] in _DIGITS)):
            continue  # a multi-digit number
        last = i + 1 == n
        if not before or not (last or tok[i + 1].isalpha() or tok[i + 1] in "@$"):
            continue
        if last and not tok[i - 1].isalpha():
            continue
        if c == "1":
            out[i] = "l" if out[i - 1] in VOWELS else "i"
        else:
            out[i] = LEET[c]
        before = before or out[i].isalpha()
    return "".join(out)


def _may_join(folded: str) -> bool:
    """Whether step 3 might re-join some pieces (False: every piece is a word of its own)."""
    return (
        _LONE.search(f" {folded} ") is not None
        or (not _JOINER_SET.isdisjoint(folded) and _JOINED.search(folded) is not None)
        or (("." in folded or "," in folded) and _THOUSANDS.search(folded) is not None)
    )


def _collapse(tok: str, idx: list[int]) -> tuple[str, list[int], list[int]]:
    """Collapse repeated letters; each kept letter's folded span grows over the letters it absorbed."""
    t_chars: list[str] = []
    t_starts: list[int] = []
    t_ends: list[int] = []
    for c, fi in zip(tok, idx, strict=True):
        if t_chars and c == t_chars[-1] and c.isalpha():
            t_ends[-1] = fi + 1
        else:
            t_chars.append(c)
            t_starts.append(fi)
            t_ends.append(fi + 1)
    return "".join(t_chars), t_starts, t_ends


_Rel = tuple[tuple[int, ...], tuple[int, ...]]
# word → its token, filled by :func:`_word`: titles repeat words far more than they repeat themselves
_WORDS: dict[str, str] = {}
_WORDS_MAX = 100_000


def _word_map(raw: str) -> tuple[str, _Rel | None]:
    """Step 4 for one word piece: its token ('' to drop) and each token character's (starts, ends)
    relative to the piece, or None when the token is the piece itself."""
    tok = raw if raw.isalpha() else _leet(raw)
    if tok == raw and raw not in ABBREVIATIONS and _HAS_REPEAT.search(raw) is None:
        return raw, None  # nothing to undo (most words, and numbers or codes without leetspeak)
    idx = list(range(len(raw)))
    if len(tok) != len(raw):  # a dropped leading "@": keep the indices aligned
        idx = idx[len(raw) - len(tok) :]
    if not tok:
        return "", None
    t_starts: list[int]
    t_ends: list[int]
    if _HAS_REPEAT.search(tok):
        tok, t_starts, t_ends = _collapse(tok, idx)
    else:
        t_starts = idx
        t_ends = [fi + 1 for fi in idx]
    expansion = ABBREVIATIONS.get(tok)
    if expansion is not None and expansion != tok:
        first, last = t_starts[0], t_ends[-1]
        tok = expansion
        t_starts = [first] * len(tok)
        t_ends = [last] * len(tok)
    if tok == raw:  # nothing dropped, collapsed or expanded: the identity map
        return raw, None
    return tok, (tuple(t_starts), tuple(t_ends))


def _word(raw: str) -> str:
    """The token of one word piece (memoised in :data:`_WORDS`)."""
    tok = _word_map(raw)[0]
    if len(_WORDS) >= _WORDS_MAX:
        _WORDS.clear()
    _WORDS[raw] = tok
    return tok


def normalise(text: str) -> Normalised:
    """Normalise ``text`` for matching; see the module docstring for the steps."""
    # 1. fold characters (fmap maps folded index → original index; None means identity)
    folded, fmap = _fold(text)

    # fast paths — most titles: no piece can be re-joined with its neighbours (no single letters, no
    # joiner between letters, no thousands group), so each word is normalised on its own (leetspeak,
    # repeated letters, abbreviations: :func:`_word`, memoised per word in :data:`_WORDS`) and the token
    # table is rebuilt from the folded text only if a span is asked for (:attr:`Normalised._toks`)
    if _NON_PLAIN.search(folded) is None:
        # only a-z, 0-9 and spaces: the words are the space-separated runs, joins need a lone letter
        if _LONE_PADDED.search(f" {folded} ") is None:
            words = folded.split()
            known = list(map(_WORDS.get, words))
            plain_toks = (
                [t if t is not None else _word(w) for t, w in zip(known, words, strict=True)]
                if None in known
                else cast("list[str]", known)
            )
            return Normalised(text, " ".join(plain_toks), None, fmap, folded)
    elif not _may_join(folded):
        words = _PIECE.findall(folded)
        get = _WORDS.get
        toks_text = [get(w) or _word(w) for w in words]
        if "" in toks_text:  # a lone "@"
            toks_text = [t for t in toks_text if t]
        return Normalised(text, " ".join(toks_text), None, fmap, folded)

    # 2. word pieces and the gaps between them
    pieces: list[tuple[int, int]] = [m.span() for m in _PIECE.finditer(folded)]
    may_join = (
        any(e - s == 1 and folded[s] not in _DIGITS for s, e in pieces)
        or (any(j in folded for j in JOINERS) and _JOINED.search(folded) is not None)
        or (("." in folded or "," in folded) and _THOUSANDS.search(folded) is not None)
    )
    if not may_join:  # the quick test above was too cautious: every piece is a word of its own
        toks_text = [_WORDS.get(w) or _word(w) for w in [folded[s:e] for s, e in pieces]]
        if "" in toks_text:
            toks_text = [t for t in toks_text if t]
        return Normalised(text, " ".join(toks_text), None, fmap, folded)

    # 3. re-join split words: groups of piece indices that form one token
    groups: list[list[int]] = []
    i = 0
    n = len(pieces)
    while i < n:
        s, e = pieces[i]
        if (e - s > 1 or folded[s] in _DIGITS) and folded[e : e + 1] not in _GLUE:
            groups.append([i])  # neither a single letter nor followed by a joiner: a word on its own
            i += 1
            continue
        group = [i]
        # 3a. runs of >= 3 single letters with short gaps: "b a l", "t . h . r"
        if e - s == 1 and folded[s] not in _DIGITS:
            j = i
            while j + 1 < n:
                ns, ne = pieces[j + 1]
                gap = folded[pieces[j][1] : ns]
                if ne - ns == 1 and folded[ns] not in _DIGITS and len(gap) <= 3 and "\n" not in gap:
                    j += 1
                else:
                    break
            if j - i + 1 >= 3:
                groups.append(list(range(i, j + 1)))
                i = j + 1
                continue
        # 3b. single joiners between letters ("bal-pres", "t.h.r.i.f.t") or thousands groups ("5.000")
        j = i
        while j + 1 < n:
            ns, ne = pieces[j + 1]
            pe = pieces[j][1]
            gap = folded[pe:ns]
            if len(gap) != 1 or gap not in _GLUE:
                break
            left, right = folded[pe - 1], folded[ns]
            letters = (left.isalpha() or left in "@$") and (right.isalpha() or right in "@$")
            thousands = gap in ".," and left in _DIGITS and ne - ns == 3 and folded[ns:ne].isdigit()
            if not ((gap in JOINERS and letters) or thousands):
                break
            j += 1
        group = list(range(i, j + 1))
        groups.append(group)
        i = j + 1

    # 4. per token: leetspeak, repeated letters, abbreviations (:func:`_word`, on the joined pieces); the
    # offsets are resolved from the groups only if a span is asked for
    spans = [[pieces[k] for k in group] for group in groups]
    raws = [folded[g[0][0] : g[0][1]] if len(g) == 1 else "".join([folded[a:b] for a, b in g]) for g in spans]
    toks_text = [_WORDS.get(r) or _word(r) for r in raws]
    if "" in toks_text:
        toks_text = [t for t in toks_text if t]
    return Normalised(text, " ".join(toks_text), None, fmap, folded, spans)


def normalise_phrase(text: str) -> str:
    """The normalised text only (for lexicon patterns, stopwords and discovery keys)."""
    return normalise(text).text


def word_set(words: str) -> frozenset[str]:
    """Whitespace-separated words, each normalised (for built-in word lists)."""
    return frozenset(normalise_phrase(w) for w in words.split())
