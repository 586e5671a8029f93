"""Volume facts of one sighting: how much a listing has sold, its stock, price and what one unit holds.

Platforms show sold counts in their own words, often rounded or as a floor, and the precision matters when
volumes are added up for a referral: an exact ``81`` (Tokopedia ``txStats.countSold``, Shopee
``historical_sold``, TikTok Shop ``sold_count``), a floor ``80+`` / ``100+ terjual`` / ``1 rb+ terjual``
(Tokopedia's labels), or a rounded ``85,2 rb terjual`` / ``1.2K sold`` (85,200 … 85,299). :func:`parse_sold`
keeps that as an interval ``[low, high]`` (``high`` None: open above) and a precision word. Facebook and
Instagram show no sold count: the interval is absent, never zero.

Pieces or kilograms per unit come from the seller's text ("isi 300 pcs", "± 300 potong", "100 kg",
"per kilo"): :func:`parse_units`. A bale ("bal", "karung", "balpres") or per-kilo unit is a wholesale
unit; the words are kept so a reader can see what was matched.

:func:`volume_facts` reads all of it from a :class:`crawler.items.Listing` (``sold_text``, ``price``,
``raw.stock`` / ``raw.count_sold`` where the profile keeps them) and is stored per sighting
(``storage.models.Sighting.sold_low`` …), so changes between sightings stay visible. Add a platform's sold
wording by extending :data:`_SOLD_RE` / :data:`_MULTIPLIERS` and a case in ``tests/test_intel_volume.py``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from crawler.items import Listing

# "rb"/"ribu" = thousand, "jt"/"juta" = million; K/M as on English pages
_MULTIPLIERS = {
    "": 1,
    "rb": 1_000,
    "ribu": 1_000,
    "k": 1_000,
    "jt": 1_000_000,
    "juta": 1_000_000,
    "m": 1_000_000,
}
_SOLD_RE = re.compile(
    r"(?P<num>\d{1,3}(?:[.,]\d{3})+(?![\d])|\d+(?:[.,]\d+)?)\s*"
    r"(?P<mult>rb|ribu|jt|juta|k|m)?\b\s*(?P<plus>\+)?",
    re.IGNORECASE,
)
_PRECISIONS = ("exact", "rounded", "at_least")


@dataclass(frozen=True, slots=True)
class Sold:
    """A sold count as the platform showed it: ``low`` ≤ true count ≤ ``high`` (None: no upper bound)."""

    low: int
    high: int | None
    precision: str  # exact / rounded / at_least

    @property
    def estimate(self) -> float:
        """A point estimate: the value, the middle of a rounded interval, the floor of an open one."""
        return float(self.low) if self.high is None else (self.low + self.high) / 2


def _number(text: str) -> tuple[float, int]:
    """A displayed number and the size of its last shown digit: "85,2" → (85.2, 0.1), "1.234" → (1234, 1).

    Indonesian pages write decimals with a comma and thousands with a dot; English ones the reverse. A
    separator followed by exactly three digits (and nothing after) is a thousands separator.
    """
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", text):
        return float(re.sub(r"[.,]", "", text)), 1
    if re.fullmatch(r"\d+[.,]\d+", text):
        whole, _, frac = re.split(r"([.,])", text, maxsplit=1)
        return float(f"{whole}.{frac}"), -len(frac)
    return float(text), 0


def parse_sold(value: Any) -> Sold | None:
    """The sold interval of a platform's sold field (int or text), or None when it says nothing countable.

    >>> parse_sold("85,2 rb terjual")
    Sold(low=85200, high=85299, precision='rounded')
    >>> parse_sold("100+ terjual")
    Sold(low=100, high=None, precision='at_least')
    >>> parse_sold(81)
    Sold(low=81, high=81, precision='exact')
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            return None
        return Sold(int(value), int(value), "exact")
    text = str(value).strip().lower()
    if not text:
        return None
    match = _SOLD_RE.search(text)
    if match is None:
        return None
    raw = match.group("num")
    mult = _MULTIPLIERS[(match.group("mult") or "").lower()]
    plus = match.group("plus") is not None or "lebih dari" in text or "more than" in text
    if mult == 1:
        # without a multiplier a separator is a thousands separator ("1.234 terjual")
        number, step_exp = float(re.sub(r"[.,]", "", raw)), 0
    else:
        number, step_exp = _number(raw)
        if step_exp == 1:  # "1.234 rb" is not a shape we know; read it as written
            step_exp = 0
    low = round(number * mult)
    if plus:
        return Sold(low, None, "at_least")
    if mult == 1:
        return Sold(low, low, "exact")
    # rounded down to the last shown digit: "85,2 rb" is 85,200 … 85,299, "2 rb" 2,000 … 2,999
    step = round(mult * (10.0**step_exp))
    return Sold(low, low + step - 1, "rounded")


# -- units -----------------------------------------------------------------------------------------

_PIECES_RE = re.compile(
    r"(?:isi|±|\+-|kurang lebih|sekitar|approx\.?)?\s*(\d{2,5})\s*"
    r"(?:pcs|pc|potong|helai|lembar|piece|pieces)\b",
    re.IGNORECASE,
)
_ISI_RE = re.compile(r"\bisi\s+(\d{2,5})\b(?!\s*(?:kg|kilo|pack|pak|lembar tisu|sheet))", re.IGNORECASE)
_KG_RE = re.compile(r"(\d{1,4}(?:[.,]\d+)?)\s*(?:kg|kilo(?:gram)?)\b", re.IGNORECASE)
_PER_KILO_RE = re.compile(r"\bper\s*(?:kg|kilo)\b|/\s*kg\b", re.IGNORECASE)
_BALE_RE = re.compile(
    r"\b(?:bal|ball|balpres|bal\s*pres|karung|karungan|bal\s*segel|per\s*bal|per\s*karung|per\s*ikat)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Units:
    """What one sold unit is, from the seller's text: pieces and/or kilograms, and the words that said so."""

    pieces: int | None = None
    kg: float | None = None
    kind: str = "piece"  # bale / kg / piece (nothing says otherwise)
    words: tuple[str, ...] = ()

    @property
    def wholesale(self) -> bool:
        return self.kind in ("bale", "kg") or (self.pieces or 0) >= 50


def parse_units(text: str) -> Units:
    """Pieces or kilograms per unit from a title and description ("isi 300 pcs", "100 kg", "per kilo")."""
    words: list[str] = []
    pieces: int | None = None
    for rx in (_PIECES_RE, _ISI_RE):
        m = rx.search(text)
        if m:
            pieces = int(m.group(1))
            words.append(m.group(0).strip())
            break
    kg: float | None = None
    m = _KG_RE.search(text)
    if m:
        kg = float(m.group(1).replace(",", "."))
        words.append(m.group(0).strip())
    per_kilo = _PER_KILO_RE.search(text)
    bale = _BALE_RE.search(text)
    if per_kilo:
        words.append(per_kilo.group(0).strip())
        kind = "kg"
        kg = kg or 1.0
    elif bale:
        words.append(bale.group(0).strip())
        kind = "bale"
    elif kg is not None and kg >= 10:
        kind = "kg"
    else:
        kind = "piece"
    return Units(pieces, kg, kind, tuple(dict.fromkeys(words)))


# -- a sighting's facts ----------------------------------------------------------------------------


def _stock(raw: dict[str, Any]) -> int | None:
    value = raw.get("stock")
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number >= 0 else None


@dataclass(frozen=True, slots=True)
class VolumeFacts:
    sold: Sold | None
    stock: int | None
    price: int | None
    units: Units

    def to_row(self) -> dict[str, Any]:
        """The ``sightings`` columns (``storage.models.Sighting``)."""
        return {
            "price": self.price,
            "sold_low": self.sold.low if self.sold else None,
            "sold_high": self.sold.high if self.sold else None,
            "sold_precision": self.sold.precision if self.sold else None,
            "stock": self.stock,
            "unit_kind": self.units.kind,
            "unit_pieces": self.units.pieces,
            "unit_kg": self.units.kg,
        }


def volume_facts(listing: Listing) -> VolumeFacts:
    """Sold interval, stock, price and unit of one sighting of ``listing``.

    An exact count the profile kept beside a rounded label (Tokopedia's detail ``count_sold`` next to
    ``itemSoldFmt`` "80+") wins over the label.
    """
    raw = listing.raw or {}
    sold = parse_sold(raw.get("count_sold"))
    if sold is None or sold.precision != "exact":
        sold = parse_sold(listing.sold_text) or sold
    return VolumeFacts(sold, _stock(raw), listing.price, parse_units(listing.text()))


__all__ = [
    "Sold",
    "Units",
    "VolumeFacts",
    "parse_sold",
    "parse_units",
    "volume_facts",
]
