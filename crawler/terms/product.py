"""Product-type facts about a listing: what the thing is, new or used, and what a bulk unit means.

Most false positives of the word rules are not about the trade's words at all but about the *thing*: new
socks sold per bal, school books sold used, a sewing machine "ex Jepang", a volley ball. This module reads
the normalised tokens and answers three questions, with the words that made it say so:

1. **kind** — ``clothing`` (garments, footwear, bags and worn accessories: HS 6309 covers "worn clothing and
   other worn articles"), ``non_clothing`` (goods, machines, books, food, services, fabric by the metre,
   balls …) or ``unknown``;
2. **condition** — ``used``, ``new`` or ``unknown`` (``mixed`` when both are said);
3. **bulk** — when a bulk unit is present (bal, karung, kg, lusin, kodi, karton …): ``used_bale`` (used
   clothing by the bale/sack/weight), ``new_wholesale`` (ordinary wholesale of new goods: lusin/kodi/karton,
   a konveksi, a factory, "baru"), ``non_clothing`` (the unit sells something else),
   or ``none``.

Besides these, :func:`analyse` reports markers the learned model uses as features: ``abroad`` (luar negeri,
LN, kontainer, pelabuhan, a border port, "dipakai orang jepang"), ``personal`` (koleksi pribadi, jarang
dipakai, oleh-oleh), ``style`` (korean style, ala thrift), ``export`` (sisa ekspor), ``maker`` (konveksi,
produksi, pabrik), ``live`` (live, unboxing, spill, pecah/bedah).

The word lists are deliberately about *things and conditions*, not the trade's evasive vocabulary (that is
the lexicon's job). Extend them here; every list is normalised with :func:`crawler.terms.normalise.word_set`
so leetspeak and stretched letters match. Used by :mod:`crawler.terms.features` (model features) and
shown in explanations (``ScoreResult.product``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crawler.terms.normalise import word_set

GARMENT_WORDS = word_set(
    """baju pakaian kaos kaus tshirt shirt kemeja hem jaket jacket celana jeans denim hoodie sweater
    sweatshirt dress gaun rok skirt blouse blus blazer cardigan kardigan outer atasan bawahan gamis tunik
    kebaya jas
    mantel coat parka rompi vest windbreaker bomber kulot legging jogger chino cargo piyama daster jersey
    busana sandang fashion seragam kimono yukata hanbok jubah abaya koko mukena rukuh sarung hijab jilbab
    kerudung pashmina syal scarf topi cap beanie sweatpants overall jumpsuit longdress
    polo singlet kutang bra lingerie boxer kolor sempak underwear kaoskaki apparel outfit ootd
    flanel flannel setelan stelan training trening longcoat trench puffer fleece"""
)
FOOTWEAR_WORDS = word_set(
    """sepatu shoes shoe sneakers sneaker sandal sendal selop slipper boots boot heels wedges loafers
    pantofel flatshoes """
)
BAG_WORDS = word_set(
    """tas bag bags ransel backpack handbag tote clutch dompet wallet pouch selempang sling totebag"""
)
# Things that are not worn. Fabric and yarn are here on purpose: kain perca/benang by the kilo is a
# different trade from used clothing.
NON_CLOTHING_WORDS = word_set(
    """tisu tissue beras gula tepung semen pupuk plastik kresek kertas sabun deterjen rokok kabel bola
    voli volley volleyball basket basketball futsal golf tenis tennis bowling takraw pingpong ballpoint
    bearing valve joint pulpen pena masker popok pampers sayur buah bawang kopi teh garam jagung pakan
    kedelai pasir arang besi buku novel komik majalah koran kardus rak hanger gantungan manekin
    etalase mesin motor mobil sepeda hp handphone laptop kamera lensa kulkas kompor panci piring gelas
    kursi meja lemari kasur sofa koper mainan lego boneka gitar piano keyboard raket jam kacamata parfum
    kosmetik lipstik skincare laundry cuci setrika kain perca benang majun keset lap velg ban aki oli
    spare part sparepart genteng seng triplek kayu keramik botol kaleng tembaga timbangan lakban stiker
    label rafia wrap beras gabah ayam ikan daging frozen bakso meatball kue snack cetakan tripod
    onigiri galon karpet gorden kasur bantal guling seprei sprei selimut handuk"""
)
# Household textiles are worn-article adjacent (HS 6309 covers used blankets too) but sold new in bulk
# every day; they count as clothing only when the text also says used.
HOUSEHOLD_TEXTILE = word_set("selimut seprei sprei handuk gorden bantal guling karpet keset")
NEW_WORDS = word_set("baru new bnwt bnib bnip brandnew ready readystock gress gres")
USED_WORDS = word_set(
    """bekas second seken 2nd preloved thrift thrifting used worn vintage rekondisi lungsuran dipakai
    pemakaian pakai  turunan"""
)
PERSONAL_WORDS = word_set(
    """pribadi sendiri koleksi jarang sekali pindahan muat oleh liburan kuliah wisuda nikahan lebaran
    pernah nego butuh suami istri kakak adik"""
)
ABROAD_WORDS = word_set(
    """luar negeri negri ln mancanegara asing bule ekspatriat turis kontainer container kapal pelabuhan
    impor import imported selundupan batam tanjung balai karimun dumai tawau entikong nunukan bengkalis
    korea jepang japan usa amerika eropa europe taiwan hongkong china cina singapura malaysia thailand
    bangkok australia inggris uk jerman italia prancis perancis belanda kanada ginseng sakura jiran"""
)
STYLE_WORDS = word_set("style styles gaya ala look vibes aesthetic model inspired")
EXPORT_WORDS = word_set("ekspor export overproduksi reject cacat outlet")
MAKER_WORDS = word_set(
    """konveksi produksi produsen pabrik sablon jahit dijahit custom pesanan partai umkm lokal supplier
    distributor grosir grosiran reseller dropship"""
)
LIVE_WORDS = word_set("live unboxing spill pecah bedah bongkar buka open rebutan")
# Units a bale of used clothing is sold by, and units ordinary wholesale uses.
BALE_UNITS = word_set(
    """bal bale ball balpres balan karung karungan goni kg kilo kiloan koli ikat kwintal ton"""
)
WHOLESALE_UNITS = word_set("lusin kodi karton seri rim pack pak slop roll meter box dus lembar pasang")


_SETS: tuple[tuple[str, frozenset[str]], ...] = (
    ("clothing", GARMENT_WORDS),
    ("footwear", FOOTWEAR_WORDS),
    ("bags", BAG_WORDS),
    ("non_clothing", NON_CLOTHING_WORDS),
    ("household_textile", HOUSEHOLD_TEXTILE),
    ("new", NEW_WORDS),
    ("used", USED_WORDS),
    ("personal", PERSONAL_WORDS),
    ("abroad", ABROAD_WORDS),
    ("style", STYLE_WORDS),
    ("export", EXPORT_WORDS),
    ("maker", MAKER_WORDS),
    ("live", LIVE_WORDS),
    ("bale_unit", BALE_UNITS),
    ("wholesale_unit", WHOLESALE_UNITS),
)
FLAGS: tuple[str, ...] = tuple(name for name, _ in _SETS)
# word -> the flags it raises (a word may raise several: "kontainer" is abroad, "bal" a bale unit …)
WORD_FLAGS: dict[str, tuple[str, ...]] = {}
for _flag, _words in _SETS:
    for _w in _words:
        WORD_FLAGS[_w] = (*WORD_FLAGS.get(_w, ()), _flag)
_DIGITS = "0123456789"


@dataclass(frozen=True, slots=True)
class Derived:
    """The answers, from the set of flags present (memoised: few distinct flag sets exist)."""

    flags: frozenset[str]
    kind: str  # clothing / non_clothing / unknown
    condition: str  # used / new / mixed / unknown
    bulk: str  # used_bale / new_wholesale / non_clothing / none
    names: tuple[str, ...]  # flags, then kind:/cond:/bulk: — the model's p: features


class ProductFacts:
    """What :func:`analyse` found for one text: the answers (:class:`Derived`) and the words behind them
    (``hits``; given, or found in ``tokens`` when first asked for)."""

    __slots__ = ("_hits", "_tokens", "derived")

    def __init__(
        self, derived: Derived, hits: tuple[str, ...] | None = (), tokens: list[str] | None = None
    ) -> None:
        self.derived = derived
        self._hits = hits
        self._tokens = tokens

    @property
    def hits(self) -> tuple[str, ...]:
        if self._hits is None:
            self._hits = hits_of(self._tokens or [])
        return self._hits

    @property
    def kind(self) -> str:
        return self.derived.kind

    @property
    def condition(self) -> str:
        return self.derived.condition

    @property
    def bulk(self) -> str:
        return self.derived.bulk

    @property
    def names(self) -> tuple[str, ...]:
        return self.derived.names

    def has(self, flag: str) -> bool:
        return flag in self.derived.flags

    @property
    def evidence(self) -> dict[str, list[str]]:
        """Each flag present and the words that raised it."""
        out: dict[str, list[str]] = {}
        for word in self.hits:
            for flag in WORD_FLAGS.get(word, ()):
                words = out.setdefault(flag, [])
                if word not in words:
                    words.append(word)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "condition": self.condition, "bulk": self.bulk, "evidence": self.evidence}

    def __repr__(self) -> str:
        return f"ProductFacts({self.kind}, {self.condition}, bulk={self.bulk}, hits={self.hits})"


def hits_of(tokens: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The tokens any fact rests on, in order; a unit glued to its number ("100kg", "2lusin") counts as the
    unit, and a "baru" about the stock or the bale ("stok baru", "baru buka bal") is not a new-goods word."""
    hits: list[str] = []
    for i, t in enumerate(tokens):
        if t not in WORD_FLAGS:
            if not t[:1].isdigit():
                continue
            t = t.lstrip(_DIGITS)
            if t not in WORD_FLAGS:
                continue
        if t in NEW_WORDS and _stock_new(tokens, i):
            continue
        hits.append(t)
    return tuple(hits)


_DERIVED: dict[frozenset[str], Derived] = {}


def analyse(tokens: list[str] | tuple[str, ...]) -> ProductFacts:
    """Product facts from normalised tokens (``Normalised.text.split()``)."""
    hits = hits_of(tokens)
    return ProductFacts(derived_for(frozenset([f for word in hits for f in WORD_FLAGS[word]])), hits)


def derived_for(flags: frozenset[str]) -> Derived:
    derived = _DERIVED.get(flags)
    if derived is None:
        derived = _DERIVED[flags] = derive(flags)  # at most 2^15 keys, in practice a few hundred
    return derived


def token_flags(token: str) -> tuple[str, ...]:
    """The flags one token raises on its own (a unit glued to its number counts as the unit)."""
    flags = WORD_FLAGS.get(token)
    if flags is None and token[:1].isdigit():
        flags = WORD_FLAGS.get(token.lstrip(_DIGITS))
    return flags or ()


def facts_from_token_flags(per_token: list[tuple[str, ...]], tokens: list[str]) -> ProductFacts:
    """:func:`analyse` from each token's :func:`token_flags` (which a caller may have memoised): the same
    answer, with the words behind it found only when an explanation asks."""
    flat = [f for flags in per_token if flags for f in flags]
    if not flat:
        return _NO_FACTS
    if "new" in flat:  # "stok baru" is about the stock, not the goods: that needs the context
        return analyse(tokens)
    return ProductFacts(derived_for(frozenset(flat)), None, tokens)


def derive(flags: frozenset[str]) -> Derived:
    """kind, condition and bulk meaning from the flags present."""
    has = flags.__contains__
    kind = "unknown"
    if has("clothing") or has("footwear") or has("bags"):
        kind = "clothing"
    elif has("household_textile"):
        kind = "clothing" if has("used") else "non_clothing"
    elif has("non_clothing"):
        kind = "non_clothing"
    condition = "unknown"
    if has("used") and has("new"):
        condition = "mixed"
    elif has("used"):
        condition = "used"
    elif has("new") or has("export"):
        condition = "new"
    bulk = "none"
    bale, wholesale = has("bale_unit"), has("wholesale_unit")
    if bale or wholesale:
        if kind == "non_clothing":
            bulk = "non_clothing"
        elif has("used") or (bale and has("abroad") and not has("new") and not has("maker")):
            bulk = "used_bale"
        elif has("new") or has("maker") or has("export") or (wholesale and not bale):
            bulk = "new_wholesale"
        else:
            bulk = "used_bale" if bale else "new_wholesale"
    names = (*[f for f in FLAGS if f in flags], f"kind:{kind}", f"cond:{condition}", f"bulk:{bulk}")
    return Derived(flags, kind, condition, bulk, names)


_NO_FACTS = ProductFacts(derive(frozenset()), ())

_STOCK = frozenset({"stok", "stock", "buka", "bongkar", "datang", "masuk", "tiba", "sampai", "dibuka"})


def _stock_new(tokens: list[str] | tuple[str, ...], i: int) -> bool:
    """True when the "baru" at ``i`` is about the stock or the bale ("stok baru", "baru buka bal")."""
    before = tokens[i - 1] if i > 0 else ""
    after = tokens[i + 1] if i + 1 < len(tokens) else ""
    return before in _STOCK or after in _STOCK or after in ("turun", "pecah", "dibongkar", "bongkar")
