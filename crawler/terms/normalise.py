"""Evasion-proof normalisation of Indonesian listing text, with a map back to the original characters.

Sellers dodge keyword filters with Unicode look-alikes, decoration, leetspeak, stretched letters,
separators inside words and joined words. :func:`normalise` undoes these and returns a
:class:`Normalised` whose ``text`` is lower-case ASCII-ish tokens separated by single spaces, plus two
offset arrays so that any span of the normalised text maps back to the exact original characters
(:meth:`Normalised.original_span`). The matcher, the scorer's explanations and discovery all rely on that.

Steps, in order (the same numbers appear as comments in :func:`normalise`):

1. Fold each character: NFKC/NFKD compatibility forms (full-width, mathematical bold, ligatures,
   circled and squared letters), diacritics stripped, case folded, look-alike letters mapped to Latin
   (Cyrillic/Greek, small capitals, "fancy text" letters, letters with strokes, currency signs:
   :data:`HOMOGLYPHS`), zero-width characters removed, flags read as their country (🇰🇷 → "korea"),
   emoji and other decoration turned into separators — or, between two letters, into a mask
   (:data:`SOFT_MASK`) that may stand for a hidden letter ("b♥l").
2. Split into word pieces (``[a-z0-9@$]+``) and the gaps between them.
3. Re-join pieces that a seller split: a single joiner (``. - _ ' *``) between letters ("bal-pres",
   "t.h.r.i.f.t"), runs of three or more single letters ("b a l"), thousands groups ("5.000"); masks
   between letters ("b#l", "b**l", "b * l") join for now. 3c: the vocabulary (:func:`vocabulary`, the
   trade's words and the packaged lexicon's) then decides (:func:`_resolve`): masked pieces that spell
   exactly one known word with hidden letters become that word ("b*l" → "bal", "imp*r" → "impor",
   "B**L J*P*NG" → "bal jepang"), known words glued by a joiner stand apart again ("bal.korea.isi",
   "ex-jepang"), a mask that spells nothing separates ("jaket🔥korea"), and a lone letter split off a
   word joins it when that spells a known word ("ba l" → "bal").
4. Per token: leetspeak (0→o 1→i/l 3→e 4→a 5→s 7→t @→a $→s; ! → i and | → l between letters), only
   where a digit sits among letters, so
   "500pcs" and "100kg" stay numbers), repeated letters collapsed to one ("thriftt", "baaal", "ballpress"
   → "thrift", "bal", "balpres"; patterns are normalised the same way, so real double letters still
   match), then common abbreviations (:data:`ABBREVIATIONS`, e.g. "bks" → "bekas"). 4b: a token that is
   not a known word but whose other readings spell exactly one is read so (:func:`_vocab_reading`): a
   leading digit ("7hrift", "1mp0r", "8al"), other digit readings (8→b, 6/9→g), "|"/"!" as a dropped
   character ("b|a|l"), and vowel-less forms ("thrft", "blprs") by their consonants. Numbers never are:
   a run of digits is not a letter, and "2nd", "3second", "500pcs" spell no known word.

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
from pathlib import Path
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
    "χ": "x", "β": "b", "η": "n", "μ": "u", "є": "e", "ѵ": "v", "ԝ": "w", "ɡ": "g", "λ": "a",
    # small capitals ("ʙᴀʟ"), which NFKD leaves alone
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j",
    "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ǫ": "q", "ʀ": "r", "ꜱ": "s", "ᴛ": "t",
    "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
    # letters with strokes and hooks, and the "fancy text" letters of other scripts sellers paste
    "ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ŧ": "t", "ƀ": "b", "ɨ": "i", "ʉ": "u", "ɍ": "r", "ƶ": "z",
    "ȼ": "c", "ɇ": "e", "ɓ": "b", "ƈ": "c", "ɗ": "d", "ɠ": "g", "ƙ": "k", "ɱ": "m", "ɲ": "n", "ƥ": "p",
    "ʂ": "s", "ƭ": "t", "ʋ": "v", "ƴ": "y", "ȥ": "z", "ɑ": "a", "ɛ": "e", "ɔ": "o",
    "ᗷ": "b", "ᗩ": "a", "ᒪ": "l", "ᑎ": "n", "ᑕ": "c", "ᗪ": "d", "ᗴ": "e", "ᖴ": "f", "ᕼ": "h",
    "ᒍ": "j", "ᛕ": "k", "ᗰ": "m", "ᑭ": "p", "ᖇ": "r", "ᔕ": "s", "ᑌ": "u", "ᐯ": "v", "ᗯ": "w", "ᘔ": "z",
    "Ꭺ": "a", "Ᏼ": "b", "Ꮯ": "c", "Ꭰ": "d", "Ꭼ": "e", "Ꮐ": "g", "Ꮋ": "h", "Ꭻ": "j", "Ꮶ": "k", "Ꮮ": "l",
    "Ꮇ": "m", "Ꮲ": "p", "Ꮢ": "r", "Ꮪ": "s", "Ꭲ": "t", "Ꮩ": "v", "Ꮃ": "w", "Ꮓ": "z",
    # currency signs read as letters ("b€kas", "₿al")
    "€": "e", "¢": "c", "₳": "a", "฿": "b", "₿": "b", "₭": "k", "₦": "n", "₱": "p", "₮": "t", "₩": "w",
    "¥": "y", "£": "l",
}  # fmt: skip
# Flags (two regional-indicator letters) say a country: "thrift🇰🇷" is "thrift korea". Other runs of
# regional indicators are letters ("🇧🇦🇱").
FLAGS: dict[str, str] = {
    "kr": "korea", "kp": "korea", "jp": "jepang", "us": "usa", "cn": "china", "tw": "taiwan",
    "hk": "hongkong", "gb": "inggris", "eu": "eropa", "my": "malaysia", "sg": "singapura",
    "th": "thailand", "au": "australia", "de": "jerman", "fr": "prancis", "it": "italia",
    "nl": "belanda", "ca": "kanada", "ph": "filipina", "vn": "vietnam", "id": "indonesia",
}  # fmt: skip
# A decoration symbol (emoji, ♥, ★ …) folds to this private character, not a space: between letters it
# may stand for a hidden letter ("b♥l"), which the vocabulary decides (step 3c); elsewhere it separates.
SOFT_MASK = "\ue000"

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

# The words a masked token is read back to (step 4b, :func:`_unmask`): the trade's words, the things it
# sells, where they come from. The packaged lexicon's words are added when first needed
# (:func:`vocabulary`); a word outside this list is never guessed, so an ordinary word cannot turn into a
# trade word ("k-pop" stays "kpop", "jaket/kemeja" stays two words).
MASK_WORDS = """
bal bale ball balpres balle karung karungan goni kiloan kilo bekas bekasan second secondhand seken
thrift thrifting preloved preowned vintage used worn impor import imported importir korea korean jepang
japan japanese china taiwan hongkong singapura singapore malaysia thailand bangkok eropa europe amerika
america usa inggris australia jerman luar negeri negri asing bule pakaian baju busana jaket jacket
kemeja celana hoodie sweater kaos tshirt shirt dress sepatu sneakers tas sandal selimut gorden handuk
karpet topi syal campur campuran segel sortir sortiran grade monza cakar cakaran awulawul rombengan
rombeng lelong cimol burjam ukay ukayukay bundle kontainer container pelabuhan gudang kapal clothes
clothing garment garments borongan paket reseller premium original branded dipakai pakai layak
lungsuran sisa grosir murah bongkar bongkaran pecah sealed mix mixed bekas pakai lusin kodi pcs
"""
# A vowel-less token is read as the vocabulary word with the same consonants ("thrft", "blprs") unless it
# is one of these everyday abbreviations.
_SKELETON_STOP_WORDS = """
    yg dgn utk sdh blm jg krn tdk bgt pcs kg cm dll jkt spt srt sby bdg mlg smg bgr dpk tbk pt cv hrg brp
    gmn lgsg bnyk msh bsk ttp dr sm tgl jln rt rw wa cod pm dm ig fb wib"""
SKELETON_STOP = frozenset(_SKELETON_STOP_WORDS.split())
_VOCAB: frozenset[str] | None = None
_PREFIXES: frozenset[str] = frozenset()
_LONGEST = 0  # the longest vocabulary word's length (set with the vocabulary)
_SKELETONS: dict[str, str] = {}
_BY_FIRST: dict[str, list[str]] = {}
_CUT_WORDS = frozenset({"ex", "eks"})  # "ex-korea", "eks-LN": a prefix, not part of one word
_VOWELS_RE = re.compile(r"[aeiouy]")
_REPEATS = re.compile(r"([a-z])\1+")


def _collapsed(word: str) -> str:
    return _REPEATS.sub(r"\1", word)


def _skeleton(word: str) -> str:
    return _collapsed(_VOWELS_RE.sub("", word))


def vocabulary() -> frozenset[str]:
    """:data:`MASK_WORDS` and the packaged lexicon's words of three letters or more, as normalised
    tokens (built on first use; reading the lexicon file here avoids an import cycle)."""
    global _VOCAB, _PREFIXES, _SKELETONS, _LONGEST
    if _VOCAB is None:
        words = set(MASK_WORDS.split())
        path = Path(__file__).resolve().parent.parent / "data" / "lexicon.tsv"
        try:
            rows = path.read_text(encoding="utf-8").splitlines()[1:]
        except OSError:
            rows = []
        for row in rows:
            cols = row.split("\t")
            for form in [cols[0], *(cols[1].split("|") if len(cols) > 1 else [])]:
                form = form.lower()
                words.update(w for w in re.split(r"[^a-z]+", form) if w)
                if "-" in form:
                    words.add(re.sub(r"[^a-z]+", "", form))
        vocab = frozenset(_collapsed(w) for w in words if len(w) >= 3 and w.isalpha())
        by_skeleton: dict[str, set[str]] = {}
        for w in vocab:
            by_skeleton.setdefault(_skeleton(w), set()).add(w)
        _SKELETONS = {
            k: next(iter(v))
            for k, v in by_skeleton.items()
            if len(v) == 1 and len(k) >= 3 and k not in SKELETON_STOP and k not in vocab
        }
        _PREFIXES = frozenset(w[:i] for w in vocab for i in range(2, len(w) + 1))
        _LONGEST = max(map(len, vocab), default=0)
        for w in sorted(vocab):
            _BY_FIRST.setdefault(w[0], []).append(w)
        _VOCAB = vocab
    return _VOCAB


# Readings of a digit or symbol inside a word beyond :data:`LEET` (tried only against the vocabulary)
_LEET_ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "0": ("o",), "1": ("i", "l"), "2": ("z",), "3": ("e",), "4": ("a",), "5": ("s",), "6": ("g",),
    "7": ("t",), "8": ("b",), "9": ("g",), "@": ("a",), "$": ("s",), "!": ("i", "l", ""),
    "|": ("l", "i", ""),
}  # fmt: skip
_MAX_READINGS = 64


def _vocab_reading(raw: str, tok: str) -> str | None:
    """Step 4b for one piece: the vocabulary word a masked piece stands for, or None.

    Tried only when the usual reading ``tok`` is not a vocabulary word: every reading of its single
    digits and leet symbols (a leading one too: "7hrift", "1mp0r", "8al"), then, for a token without
    vowels, the vocabulary word with the same consonants ("thrft" → "thrift"). Numbers ("500pcs",
    "2nd", "x100") have no such reading: runs of digits are never letters, and the vocabulary decides.
    """
    vocab = vocabulary()
    if not raw.isalpha() and any(c.isalpha() for c in raw) and len(raw) > 1:
        # the first two letters must start a vocabulary word: seller codes ("k7x9m2") stop here
        first = _LEET_ALTERNATIVES.get(raw[0], (raw[0],))
        second = _LEET_ALTERNATIVES.get(raw[1], (raw[1],))
        if "" not in second and not any(a + b in _PREFIXES for a in first for b in second):
            return _SKELETONS.get(tok) if tok.isalpha() and _VOWELS_RE.search(tok) is None else None
        options: list[tuple[str, ...]] = []
        n = len(raw)
        count = 1
        for i, c in enumerate(raw):
            alt = _LEET_ALTERNATIVES.get(c)
            in_run = c in _DIGITS and (
                (i > 0 and raw[i - 1] in _DIGITS) or (i + 1 < n and raw[i + 1] in _DIGITS)
            )
            if alt is None or in_run:
                options.append((c,))
            else:
                options.append(alt)
                count *= len(alt)
        if 1 < count <= _MAX_READINGS or (count == 1 and [o[0] for o in options] != list(raw)):
            found = set()
            for reading in _readings(options):
                word = ABBREVIATIONS.get(reading, reading)
                if word in vocab or (_HAS_REPEAT.search(word) and (word := _collapsed(word)) in vocab):
                    found.add(word)
            if len(found) == 1:
                return found.pop()
    if tok.isalpha() and len(tok) >= 3 and _VOWELS_RE.search(tok) is None:
        return _SKELETONS.get(tok)
    return None


def _readings(options: list[tuple[str, ...]]) -> list[str]:
    out = [""]
    for opt in options:
        out = [o + c for o in out for c in opt]
    return out


_UNMASKED: dict[tuple[tuple[str, ...], tuple[int, ...]], str | None] = {}


def _unmask(parts: list[str], gaps: list[int]) -> str | None:
    """The vocabulary word that ``parts`` (tokens of word pieces) spell with up to ``gap + 1`` hidden
    letters in each gap ("b" "l" → "bal", "imp" "r" → "impor"), when exactly one word (or one shortest
    word) fits. Memoised; only words with the right first letter and length are tried."""
    key = (tuple(parts), tuple(gaps))
    if key in _UNMASKED:
        return _UNMASKED[key]
    word = None
    known = sum(len(p) for p in parts)
    if known >= 2 and parts[0]:
        vocabulary()
        longest = known + sum(g + 1 for g in gaps)
        pool = [w for w in _BY_FIRST.get(parts[0][0], ()) if known <= len(w) <= longest]
        if pool:
            rx = re.compile(
                "".join(
                    re.escape(part) + (f"[a-z]{{0,{gaps[k] + 1}}}" if k < len(gaps) else "")
                    for k, part in enumerate(parts)
                )
            )
            found = sorted((w for w in pool if rx.fullmatch(w)), key=len)
            if len(found) == 1 or (len(found) > 1 and len(found[0]) < len(found[1])):
                word = found[0]
    if len(_UNMASKED) >= 20_000:
        _UNMASKED.clear()
    _UNMASKED[key] = word
    return word


# Characters that glue a word back together when they sit between two letters.
JOINERS = frozenset(".-_'*’`")
# Characters that may stand for hidden letters between two letters ("b#l", "b**l", "b♥l"): such a gap
# joins only when the vocabulary knows the word it makes (:func:`_resolve`).
MASKS = frozenset("*#?%~^+=" + SOFT_MASK)
_JOINER_SET = JOINERS | MASKS
_GLUE = JOINERS | {","}  # a one-character gap that may join two pieces (joiners, thousands separators)
_GAP_START = _GLUE | MASKS | {" "}
_MASK_GAP = _JOINER_SET | {" "}  # what a gap holding a mask may also hold ("b * l")

_PIECE = re.compile(r"[a-z0-9@$]+(?:[!|][a-z][a-z0-9@$]*)*")  # "!" and "|" only inside a word
_HAS_REPEAT = re.compile(r"([a-z])\1")
_JOINED = re.compile("[a-z@$][.\\-_'*’`#?%~^+=\ue000]{1,3}[a-z@$]")
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

    __slots__ = (
        "_fmap", "_folded_text", "_groups", "_overrides", "_starts_cache", "_toks_cache", "original", "text",
    )  # fmt: skip

    def __init__(
        self,
        original: str,
        text: str,
        toks: tuple[_Tok, ...] | None,
        fmap: Sequence[int] | None,
        folded: str = "",
        groups: list[list[tuple[int, int]]] | None = None,
        overrides: dict[int, str] | None = None,
    ) -> None:
        self.original = original
        self.text = text
        self._toks_cache = toks
        self._starts_cache: tuple[int, ...] | None = None
        self._fmap = fmap  # folded index → original index (None: identity)
        self._folded_text = folded  # kept for the lazy token table
        self._groups = groups  # the folded spans of each token's pieces (None: one piece per token)
        self._overrides = overrides  # group index → the vocabulary word its masked pieces spell

    @property
    def _toks(self) -> tuple[_Tok, ...]:
        if self._toks_cache is None:
            toks: list[_Tok] = []
            pos = 0
            groups = self._groups
            if groups is None:  # every piece a token of its own
                groups = [[m.span()] for m in _PIECE.finditer(self._folded_text)]
            folded = self._folded_text
            overrides = self._overrides or {}
            for gi, group in enumerate(groups):
                word = overrides.get(gi)
                if word is not None:  # an unmasked word: every character maps to all its pieces
                    first, last = group[0][0], group[-1][1]
                    toks.append((word, pos, first, ((first,) * len(word), (last,) * len(word))))
                    pos += len(word) + 1
                    continue
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
    cp = ord(c)
    if 0x1F150 <= cp <= 0x1F169 or 0x1F170 <= cp <= 0x1F189:  # negative circled/squared letters (🅑)
        return chr(97 + (cp - 0x1F150) % 32)
    if 0x1F1E6 <= cp <= 0x1F1FF:  # a regional indicator on its own is a letter (flags: :func:`_fold`)
        return chr(97 + cp - 0x1F1E6)
    if cat[0] == "S" and not unicodedata.decomposition(c):
        return SOFT_MASK  # emoji, ♥, ★, ∞ …: a separator, or a hidden letter between letters
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
_FLAG = re.compile("[\U0001f1e6-\U0001f1ff]{2}")


def _fold(text: str) -> tuple[str, list[int] | None]:
    if text.isascii():
        return text.lower(), None
    chars: list[str] = []
    fmap: list[int] = []
    flags = {
        m.start(): FLAGS.get(_fold_char(m.group()[0]) + _fold_char(m.group()[1]))
        for m in _FLAG.finditer(text)
    }
    skip = -1
    for m in _ASCII_RUN.finditer(text):  # runs of ASCII in bulk, other characters one by one
        s, e = m.span()
        if e - s > 1 or text[s] < "\x80":
            chars.append(m.group().lower())
            fmap.extend(range(s, e))
            continue
        if s == skip:
            continue
        country = flags.get(s) if flags else None
        if country:  # a flag: its country's name, as a word of its own
            skip = s + 1
            chars.append(f" {country} ")
            # the first letter maps to the first indicator, the rest to the second: a span covers both
            fmap.extend([s, s, *[s + 1] * len(country)])
            continue
        folded_char = _fold_char(text[s])
        if folded_char == SOFT_MASK and not _between_letters(text, s):
            folded_char = " "  # decoration beside a space or at an end: a plain separator
        for ch in folded_char:
            chars.append(ch)
            fmap.append(s)
    return "".join(chars), fmap


def _between_letters(text: str, s: int) -> bool:
    """Whether the symbol at ``s`` sits inside a word: the nearest characters on both sides that are not
    symbols, joiners or format characters are letters."""
    for step in (-1, 1):
        k = s + step
        while 0 <= k < len(text) and _fold_char(text[k]) in (SOFT_MASK, "") and not text[k].isascii():
            k += step
        if not (0 <= k < len(text)) or not text[k].isalpha():
            return False
    return True


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
    relative to the piece, or None when the token is the piece itself. A piece whose usual reading is
    not a vocabulary word but one of its other readings is (step 4b, :func:`_vocab_reading`) becomes
    that word, every character mapping to the whole piece."""
    tok, rel = _plain_word_map(raw)
    if tok and (not raw.isalpha() or _VOWELS_RE.search(tok) is None) and tok not in vocabulary():
        fixed = _vocab_reading(raw, tok)
        if fixed is not None and fixed != tok:
            n = len(raw)
            return fixed, ((0,) * len(fixed), (n,) * len(fixed))
    return tok, rel


def _plain_word_map(raw: str) -> tuple[str, _Rel | None]:
    """:func:`_word_map` without the vocabulary: leetspeak, repeated letters, abbreviations."""
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
        or (not _JOINER_SET.isdisjoint(folded) and _JOINED.search(folded) is not None)
        or (("." in folded or "," in folded) and _THOUSANDS.search(folded) is not None)
    )
    if not may_join:  # the quick test above was too cautious: every piece is a word of its own
        toks_text = [_WORDS.get(w) or _word(w) for w in [folded[s:e] for s, e in pieces]]
        if "" in toks_text:
            toks_text = [t for t in toks_text if t]
        return Normalised(text, " ".join(toks_text), None, fmap, folded)

    # 3. re-join split words: groups of piece indices that form one token
    groups: list[list[int]] = []
    lone_groups: list[int] = []  # the groups of one single letter
    i = 0
    n = len(pieces)
    while i < n:
        s, e = pieces[i]
        after = folded[e : e + 1]
        if (e - s > 1 or folded[s] in _DIGITS) and (
            after not in _GAP_START or (after == " " and folded[e + 1 : e + 2] not in MASKS)
        ):
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
                if (
                    ne - ns == 1
                    and folded[ns] not in _DIGITS
                    and len(gap) <= 3
                    and "\n" not in gap
                    and MASKS.isdisjoint(gap)  # "b**l j*p*ng": masks hide letters inside one word (3b)
                ):
                    j += 1
                else:
                    break
            if j - i + 1 >= 3:
                groups.append(list(range(i, j + 1)))
                i = j + 1
                continue
        # 3b. single joiners between letters ("bal-pres", "t.h.r.i.f.t") or thousands groups ("5.000");
        # masks between letters ("b#l", "b**l", "b♥l") join for now, step 3c decides
        j = i
        while j + 1 < n:
            ns, ne = pieces[j + 1]
            pe = pieces[j][1]
            gap = folded[pe:ns]
            left, right = folded[pe - 1], folded[ns]
            letters = (left.isalpha() or left in "@$") and (right.isalpha() or right in "@$")
            if len(gap) == 1 and gap in _GLUE:
                thousands = gap in ".," and left in _DIGITS and ne - ns == 3 and folded[ns:ne].isdigit()
                if (gap in JOINERS and letters) or thousands:
                    j += 1
                    continue
            if (
                letters
                and len(gap) <= 3
                and not MASKS.isdisjoint(gap)
                and _MASK_GAP.issuperset(gap)
                and (gap[0] != " " or gap[-1] == " ")  # "b * l", not the decoration in "jual 🔥B A L"
                and (gap[-1] != " " or gap[0] == " ")
            ):
                j += 1
                continue
            break
        if j == i and e - s == 1 and folded[s].isalpha():
            lone_groups.append(len(groups))
        groups.append(list(range(i, j + 1)))
        i = j + 1

    # 3c. joined pieces the vocabulary reads otherwise (:func:`_resolve`): masks spelling a known word
    # ("b*l" → "bal"), known words glued by a joiner ("bal.korea", "ex-jepang") cut apart again; a lone
    # letter split off a word ("ba l", "b al") joins it when that spells a vocabulary word
    if lone_groups:
        groups = _attach_lone_letters(folded, pieces, groups, lone_groups)
    overrides: dict[int, str] = {}
    if any(len(g) > 1 for g in groups):
        resolved: list[list[int]] = []
        for group in groups:
            if len(group) == 1:
                resolved.append(group)
                continue
            for part, word in _resolve(folded, pieces, group):
                if word is not None:
                    overrides[len(resolved)] = word
                resolved.append(part)
        groups = resolved

    # 4. per token: leetspeak, repeated letters, abbreviations (:func:`_word`, on the joined pieces); the
    # offsets are resolved from the groups only if a span is asked for
    spans = [[pieces[k] for k in group] for group in groups]
    raws = [folded[g[0][0] : g[0][1]] if len(g) == 1 else "".join([folded[a:b] for a, b in g]) for g in spans]
    toks_text = [_WORDS.get(r) or _word(r) for r in raws]
    for gi, word in overrides.items():
        toks_text[gi] = word
    if "" in toks_text:
        toks_text = [t for t in toks_text if t]
    return Normalised(text, " ".join(toks_text), None, fmap, folded, spans, overrides or None)


def _attach_lone_letters(
    folded: str, pieces: list[tuple[int, int]], groups: list[list[int]], lone: list[int]
) -> list[list[int]]:
    """A single-letter group (indices ``lone``) next to a one-piece word (a gap of at most two characters,
    no line break) joins it when the two spell a vocabulary word: "ba l" → "bal", "b al" → "bal"."""
    vocab = vocabulary()
    merged: dict[int, int] = {}  # group index → the neighbour it joins (-1: before, +1: after)
    for gi in lone:
        s, e = pieces[groups[gi][0]]
        for step in (-1, 1):
            ni = gi + step
            if not (0 <= ni < len(groups)) or len(groups[ni]) != 1 or ni in merged or gi in merged:
                continue
            ns, ne = pieces[groups[ni][0]]
            gap = folded[ne:s] if step < 0 else folded[e:ns]
            if len(gap) > 2 or "\n" in gap:
                continue
            word = folded[ns:ne] + folded[s] if step < 0 else folded[s] + folded[ns:ne]
            if (_WORDS.get(word) or _word(word)) in vocab:
                merged[gi] = step
                merged[ni] = -step
    if not merged:
        return groups
    out: list[list[int]] = []
    for gi, group in enumerate(groups):
        if merged.get(gi) == -1:
            out[-1] = out[-1] + group
        else:
            out.append(group)
    return out


def _resolve(
    folded: str, pieces: list[tuple[int, int]], group: list[int]
) -> list[tuple[list[int], str | None]]:
    """Step 3c for one group of joined pieces: the parts it stays as, each with the vocabulary word its
    masked pieces spell (or None: the usual token of the joined pieces).

    1. The joined pieces are a vocabulary word ("bal-pres" → "balpres"): one token.
    2. With hidden letters in the gaps they spell exactly one vocabulary word ("b*l", "b**l", "b♥l" →
       "bal"; "imp*r" → "impor"): that word.
    3. Otherwise the pieces are joined left to right while the join is a vocabulary word or the start of
       one, or while neither side is a known word ("k-pop", "anak-anak"); a known word or an "ex"/"eks"
       beside a joiner stands alone ("bal.korea.isi" → three words, "ex-jepang" → "ex jepang"); a mask
       that spells nothing separates ("jaket🔥korea"). Each part then gets steps 1–2 again.
    """
    vocab = vocabulary()
    raw = "".join([folded[a:b] for a, b in (pieces[k] for k in group)])
    if (_WORDS.get(raw) or _word(raw)) in vocab:
        return [(group, None)]  # 1. (the usual case: "bal-pres", "t.h.r.i.f.t", "b a l")
    toks = [_WORDS.get(r) or _word(r) for r in (folded[a:b] for a, b in (pieces[k] for k in group))]
    gaps = [folded[pieces[k][1] : pieces[k + 1][0]] for k in group[:-1]]

    def spelt(idx: list[int]) -> str | None:
        first, last = idx[0], idx[-1]
        inner = [gaps[k] for k in range(first, last)]
        if len(inner) > 6 or (len(inner) > 3 and all(MASKS.isdisjoint(g) for g in inner)):
            return None  # a word spelt out letter by letter ("t.h.r.i.f.t") hides none
        if all(g.isspace() for g in inner):
            return None  # nor do spaced-out letters ("b a l")
        joined = _WORDS.get(r := "".join(folded[a:b] for a, b in (pieces[group[k]] for k in idx))) or _word(r)
        if joined in vocab:
            return None  # the usual token is already the word
        return _unmask([toks[k] for k in idx], [len(gaps[k]) for k in range(first, last)])

    everything = list(range(len(group)))
    if _collapsed("".join(toks)) in vocab:
        return [(group, None)]
    word = spelt(everything)
    if word is not None:
        return [(group, word)]
    parts: list[list[int]] = [[0]]
    acc = toks[0]
    for k in range(1, len(group)):
        tok = toks[k]
        gap = gaps[k - 1]
        # each token is collapsed already: a repeat can only form where they meet
        joined = acc + tok[1:] if tok[:1] == acc[-1:] else acc + tok
        if joined in _PREFIXES:
            parts[-1].append(k)
            acc = joined
        else:
            mask = not ((len(gap) == 1 and gap in JOINERS) or MASKS.isdisjoint(gap))  # spelling nothing
            known = (len(acc) >= 3 and acc in vocab) or acc in _CUT_WORDS or (len(tok) >= 3 and tok in vocab)
            if mask or known:
                parts.append([k])
                acc = tok
                continue
            parts[-1].append(k)
            acc = joined
        if len(acc) > _LONGEST:
            # longer than any vocabulary word, it can match nothing any more: keep only its last letter
            # (repeats form there) behind a mark no word holds, so a run of letters stays linear
            acc = "\0" + acc[-1]
    out: list[tuple[list[int], str | None]] = []
    for part in parts:
        word = spelt(part) if len(part) > 1 else None
        out.append(([group[m] for m in part], word))
    return out


def normalise_phrase(text: str) -> str:
    """The normalised text only (for lexicon patterns, stopwords and discovery keys)."""
    return normalise(text).text


def word_set(words: str) -> frozenset[str]:
    """Whitespace-separated words, each normalised (for built-in word lists)."""
    return frozenset(normalise_phrase(w) for w in words.split())
