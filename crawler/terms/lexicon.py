"""The lexicon as a plain value: terms with variants, category, signal and strength.

One class, :class:`Lexicon`, whether it comes from the seed TSV shipped in the package
(``crawler/data/lexicon.tsv``, :meth:`Lexicon.packaged`), from any TSV file in the same format
(:meth:`Lexicon.from_tsv`), or from the database's active terms (:func:`crawler.terms.store.load_lexicon`).
The matcher and scorer are built from it, so a sweep scores with exactly the version it records.

TSV format (header required): ``term  variants  category  signal  strength  note`` with variants
separated by ``|``. Categories: standard, bulk, event, regional, origin, negative. Strength: S (strong),
M (medium), W (weak), NEG (look-alike negative). :meth:`Lexicon.content_hash` is the SHA-256 of the
canonical JSON of the active terms' matching fields, sorted: the same content always gives the same hash,
whatever its source. Extend the format by adding a column at the end and to :data:`TSV_COLUMNS`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from crawler.errors import ParseError
from crawler.terms.normalise import normalise_phrase

TSV_COLUMNS = ("term", "variants", "category", "signal", "strength", "note")
CATEGORIES = ("standard", "bulk", "event", "regional", "origin", "negative")
STRENGTHS = ("S", "M", "W", "NEG")
STATUSES = ("active", "proposed", "retired", "rejected")
PROVENANCES = ("seed", "discovered", "analyst")


@dataclass(frozen=True, slots=True)
class LexTerm:
    text: str
    variants: tuple[str, ...] = ()
    category: str = "standard"
    signal: str = "NEUTRAL"
    strength: str = "W"
    note: str = ""
    status: str = "active"
    provenance: str = "seed"
    id: int | None = None

    def forms(self) -> tuple[str, ...]:
        """The term and its variants, without duplicates, term first."""
        seen: dict[str, None] = {self.text: None}
        for v in self.variants:
            seen.setdefault(v, None)
        return tuple(seen)

    def content(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "variants": sorted(self.variants),
            "category": self.category,
            "signal": self.signal,
            "strength": self.strength,
        }


def validate_term(term: LexTerm) -> LexTerm:
    """Raise ParseError naming the bad field; returns the term stripped of blank variants."""
    if not term.text.strip():
        raise ParseError("a term must have text")
    if term.category not in CATEGORIES:
        raise ParseError(f"term {term.text!r}: category {term.category!r} not one of {', '.join(CATEGORIES)}")
    if term.strength not in STRENGTHS:
        raise ParseError(f"term {term.text!r}: strength {term.strength!r} not one of {', '.join(STRENGTHS)}")
    if term.status not in STATUSES:
        raise ParseError(f"term {term.text!r}: status {term.status!r} not one of {', '.join(STATUSES)}")
    variants = tuple(v.strip() for v in term.variants if v.strip() and v.strip() != term.text.strip())
    return replace(term, text=term.text.strip(), variants=variants)


@dataclass(frozen=True)
class Lexicon:
    terms: tuple[LexTerm, ...]
    source: str = ""
    version_id: int | None = None  # the LexiconVersion row when loaded from the database
    _hash: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def active(self) -> tuple[LexTerm, ...]:
        return tuple(t for t in self.terms if t.status == "active")

    def content_hash(self) -> str:
        if not self._hash:
            content = sorted((t.content() for t in self.active), key=lambda c: c["text"])
            blob = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
            self._hash.append(hashlib.sha256(blob.encode("utf-8")).hexdigest())
        return self._hash[0]

    def snapshot(self) -> list[dict[str, Any]]:
        return [dict(t.content(), id=t.id) for t in sorted(self.active, key=lambda t: t.text)]

    # -- TSV ---------------------------------------------------------------------------------------
    @classmethod
    def parse_tsv(cls, text: str, source: str = "") -> Lexicon:
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        if not lines:
            raise ParseError(f"{source or 'lexicon'}: empty lexicon file")
        header = [h.strip().lower() for h in lines[0].split("\t")]
        if header[: len(TSV_COLUMNS)] != list(TSV_COLUMNS[: len(header)]) or header[0] != "term":
            raise ParseError(
                f"{source or 'lexicon'}: header must be {' / '.join(TSV_COLUMNS)} (tab-separated)"
            )
        terms: list[LexTerm] = []
        seen: set[str] = set()
        for lineno, line in enumerate(lines[1:], start=2):
            cols = line.split("\t") + [""] * len(TSV_COLUMNS)
            text, variants, category, signal, strength, note = (c.strip() for c in cols[:6])
            term = LexTerm(
                text=text,
                variants=tuple(v for v in variants.split("|") if v.strip()),
                category=category or "standard",
                signal=signal or "NEUTRAL",
                strength=strength or "W",
                note=note,
            )
            try:
                term = validate_term(term)
            except ParseError as exc:
                raise ParseError(f"{source or 'lexicon'} line {lineno}: {exc}") from None
            if term.text in seen:
                raise ParseError(f"{source or 'lexicon'} line {lineno}: duplicate term {term.text!r}")
            seen.add(term.text)
            terms.append(term)
        return cls(tuple(terms), source=source)

    @classmethod
    def from_tsv(cls, path: Path) -> Lexicon:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ParseError(f"cannot read lexicon file {path}: {exc.strerror}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ParseError(f"{path} line {line}: not UTF-8 text (save the TSV as UTF-8)") from None
        if "\x00" in text:
            raise ParseError(f"{path}: binary data, not a tab-separated lexicon")
        return cls.parse_tsv(text, source=str(path))

    @classmethod
    def packaged(cls) -> Lexicon:
        """The seed lexicon shipped inside the package."""
        text = resources.files("crawler").joinpath("data/lexicon.tsv").read_text(encoding="utf-8")
        return cls.parse_tsv(text, source="packaged seed")

    @classmethod
    def of(cls, terms: Iterable[LexTerm], source: str = "", version_id: int | None = None) -> Lexicon:
        return cls(tuple(terms), source=source, version_id=version_id)

    def to_tsv(self, terms: Iterable[LexTerm] | None = None) -> str:
        rows = ["\t".join(TSV_COLUMNS)]
        for t in self.active if terms is None else terms:
            note = t.note.replace("\t", " ").replace("\n", " ")
            rows.append("\t".join([t.text, "|".join(t.variants), t.category, t.signal, t.strength, note]))
        return "\n".join(rows) + "\n"


def load_stopwords() -> frozenset[str]:
    """Indonesian + English stopwords and commerce filler (``crawler/data/stopwords.txt``), normalised."""
    text = resources.files("crawler").joinpath("data/stopwords.txt").read_text(encoding="utf-8")
    words = (ln.strip() for ln in text.splitlines())
    return frozenset(normalise_phrase(w) for w in words if w and not w.startswith("#"))
