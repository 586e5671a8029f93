"""Product-type facts about a listing: what the thing is, new or used, and what a bulk unit means.

Most false positives of the word rules are not about the trade's words at all but about the *thing*: new
socks sold per bal, school books sold used, a sewing machine "ex Jepang", a volley ball. This module reads
the normalised tokens and answers three questions, with the words that made it say so:

1. **kind** — ``clothing`` (garments, footwear, bags and worn accessories such as hats, scarves, belts,
   gloves: HS 6309 covers "worn clothing and other worn articles"), ``textile`` (household textiles —
   blankets, bedcovers, curtains, towels, rugs — worn articles when used, everyday goods when new),
   ``non_clothing`` (goods, machines, books, food, services, fabric by the metre, balls …) or ``unknown``;
2. **condition** — ``used``, ``new`` or ``unknown`` (``mixed`` when both are said);
3. **bulk** — when a bulk unit or a lot is present (bal, karung, kg, lusin, kodi, karton, paket, borongan,
   campur …): ``used_bale`` (used clothing by the bale/sack/weight or in lots), ``new_wholesale`` (ordinary
   wholesale of new goods: lusin/kodi/karton, a konveksi, a factory, "baru"), ``non_clothing`` (the unit
   sells something else), or ``none``.

Besides these, :func:`analyse` reports markers the learned model uses as features: ``abroad`` (luar negeri,
LN, foreigners, kontainer, kapal, pelabuhan, border ports, countries and their cities), ``personal``
(koleksi pribadi, jarang dipakai, oleh-oleh, liburan), ``style`` (korean style, ala thrift, kw),
``export`` (sisa ekspor, reject, overstock), ``maker`` (konveksi, produksi, pabrik), ``trade`` (grosir,
reseller, partai), ``wear`` (kondisi, minus, noda), ``lot`` (paket, borongan, campur), ``live`` (live,
unboxing, spill, pecah/bedah, keranjang kuning). A condition word denied by a negator ("belum pernah
dipakai", "bukan bekas") says the opposite.

The word lists are deliberately about *things and conditions*, not the trade's evasive vocabulary (that is
the lexicon's job). Extend them here; every list is normalised with :func:`crawler.terms.normalise.word_set`
so leetspeak and stretched letters match. Used by :mod:`crawler.terms.features` (model features) and
shown in explanations (``ScoreResult.product``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

from crawler.terms.normalise import word_set

GARMENT_WORDS = word_set(
    """baju pakaian kaos kaus tshirt shirt shirts tee tees kemeja hem jaket jacket jackets celana jeans denim
    hoodie hoodies sweater sweaters sweatshirt dress dresses gaun rok skirt blouse blus blazer cardigan
    kardigan outer atasan bawahan gamis tunik kebaya jas mantel coat coats parka rompi vest windbreaker
    bomber kulot legging leggings jogger chino cargo piyama pajamas daster jersey busana sandang fashion
    seragam kimono yukata hanbok jubah abaya koko mukena rukuh sarung hijab jilbab kerudung pashmina
    sweatpants overall jumpsuit romper longdress polo singlet kutang bra lingerie boxer kolor sempak
    underwear apparel outfit ootd flanel flannel setelan stelan training trening tracksuit longcoat trench
    puffer fleece anorak raincoat tanktop crop croptop pullover jumper turtleneck rajut knit knitwear
    trousers pants shorts batik tuxedo clothes clothing clothings garment garments wear wears menswear
    womenswear kidswear workwear outerwear sportswear baggy"""
)
# Worn accessories (HS 6309 covers "worn clothing and other worn articles").
ACCESSORY_WORDS = word_set(
    """topi cap caps hat hats beanie kupluk syal scarf scarves shawl bandana slayer gloves glove mittens
    belt belts sabuk dasi necktie socks sock kaoskaki"""
)
FOOTWEAR_WORDS = word_set(
    """sepatu shoes shoe sneakers sneaker kets sandal sandals sendal selop slipper slippers boots boot heels
    wedges loafers loafer pantofel flatshoes footwear crocs flipflop slipon moccasin mocassin"""
)
BAG_WORDS = word_set(
    """tas bag bags ransel backpack backpacks daypack handbag handbags tote totebag clutch dompet wallet
    wallets purse pouch selempang sling waistbag duffel duffle messenger"""
)
# Household textiles: worn articles too when sold used (used blankets, curtains, towels and rugs come in
# the same bales), everyday wholesale goods when new. Their own kind, so the model weighs them apart.
HOUSEHOLD_TEXTILE = word_set(
    """selimut blanket blankets bedcover bedcovers quilt comforter duvet seprei sprei seprai bedsheet
    sheets gorden gordyn hordeng curtain curtains handuk towel towels karpet carpet carpets rug rugs
    permadani taplak keset doormat bantal guling bedding linens"""
)
# Things that are not worn. Fabric and yarn are here on purpose: kain perca/benang by the kilo is a
# different trade from used clothing.
NON_CLOTHING_WORDS = word_set(
    """tisu tissue beras gula tepung semen pupuk plastik kresek kertas sabun deterjen rokok kabel bola
    voli volley volleyball basket basketball futsal golf tenis tennis bowling takraw pingpong ballpoint
    baseball softball football handball paintball meatball badminton bulutangkis shuttlecock kasti sepak
    bearing valve joint pulpen pena masker popok pampers sayur buah bawang kopi teh garam jagung pakan
    kedelai pasir arang besi buku novel komik majalah koran kamus kardus rak hanger gantungan manekin
    etalase mesin motor mobil sepeda hp handphone iphone laptop tablet kamera lensa kulkas kompor panci
    piring gelas kursi meja lemari kasur springbed ranjang sofa koper mainan lego boneka gitar piano
    keyboard raket jam kacamata parfum kosmetik lipstik skincare laundry cuci setrika kain perca benang
    majun lap velg ban aki oli spare part sparepart knalpot helm genteng seng triplek kayu keramik botol
    kaleng jerigen drum palet tembaga kuningan aluminium timbangan lakban stiker label rafia wrap gabah
    ayam ikan daging frozen bakso kue snack cetakan tripod onigiri galon tv televisi speaker kipas
    blender dispenser cooker oven microwave printer monitor charger powerbank headset earphone lampu
    stroller carseat perhiasan cincin kalung gelang anting kaset vinyl piringan tanaman bibit jasa servis
    service sewa kursus"""
)
NEW_WORDS = word_set(
    "baru new bnwt bnwot nwt bnib bnip brandnew bnew unused ready readystock gress gres anyar tag tags"
)
USED_WORDS = word_set(
    """bekas bekasan second secondhand seconds seken sekenan 2nd preloved preowned thrift thrifting thrifted
    used worn vintage rekondisi lungsuran lungsur dipakai dipake pemakaian pakai pake terpakai layak
    turunan loak"""
)
# Talk about wear and defects, which sellers of used goods give ("kondisi 90%", "minus noda").
WEAR_WORDS = word_set("kondisi minus mulus noda kusam pudar luntur bolong sobek")
PERSONAL_WORDS = word_set(
    """pribadi sendiri punya milik koleksi jarang sekali pindahan muat kekecilan kebesaran oleh liburan
    trip holiday traveling kuliah wisuda nikahan lebaran umroh haji mudik nego butuh suami istri
    kakak adik personal own once twice"""
)
ABROAD_WORDS = word_set(
    """luar negeri negri ln mancanegara asing bule ekspatriat expat turis overseas abroad foreign
    kontainer container kapal pelabuhan dermaga peti bea cukai selundupan impor import imported importir
    batam tanjung balai tanjungbalai karimun dumai tawau entikong nunukan bengkalis tarakan sebatik sambas
    atambua selatpanjang tembilahan tanjungpinang belawan pontianak
    korea seoul busan jepang japan tokyo osaka kyoto usa amerika america eropa europe taiwan taipei
    hongkong hk china cina tiongkok singapura singapore malaysia thailand bangkok vietnam australia
    inggris uk london jerman germany italia italy prancis perancis france paris belanda kanada canada
    swedia ginseng sakura jiran kanguru"""
)
STYLE_WORDS = word_set(
    """style styles gaya ala look vibes vibe aesthetic estetik model inspired korean japanese nuansa kw
    replika replica"""
)
EXPORT_WORDS = word_set("ekspor export overproduksi overrun overstock reject cacat outlet buangan lebihan")
MAKER_WORDS = word_set(
    """konveksi produksi produsen pabrik sablon jahit dijahit custom pesanan umkm lokal buatan handmade"""
)
# Trade words both lawful wholesale and the bale trade use (not a sign of new goods on their own).
TRADE_WORDS = word_set("grosir grosiran reseller dropship supplier distributor partai agen")
LIVE_WORDS = word_set(
    "live unboxing spill pecah bedah bongkar buka open rebutan lelang auction keranjang tiktok streaming"
)
# Units a bale of used clothing is sold by, and units ordinary wholesale uses.
BALE_UNITS = word_set(
    """bal bale bales ball balpres balan karung karungan goni sack sacks kg kilo kilogram kiloan koli ikat
    kwintal ton"""
)
WHOLESALE_UNITS = word_set("lusin dozen kodi karton seri rim pack pak slop roll meter box dus lembar pasang")
# Lots: a whole lot taken at once, smaller than a bale or not ("paket reseller", "borongan", "take all").
LOT_WORDS = word_set(
    """paket paketan borong borongan lot lots bundle bundling sekarung sekilo take campur campuran mix mixed
    acak"""
)
# Words that deny the next condition word: "belum pernah dipakai" is new, "bukan bekas" is not used.
NEGATOR_WORDS = word_set("belum blm tidak tdk bukan bkn tanpa non no never not gak ga nggak enggak tak")


_SETS: tuple[tuple[str, frozenset[str]], ...] = (
    ("clothing", GARMENT_WORDS),
    ("accessory", ACCESSORY_WORDS),
    ("footwear", FOOTWEAR_WORDS),
    ("bags", BAG_WORDS),
    ("household_textile", HOUSEHOLD_TEXTILE),
    ("non_clothing", NON_CLOTHING_WORDS),
    ("new", NEW_WORDS),
    ("used", USED_WORDS),
    ("wear", WEAR_WORDS),
    ("personal", PERSONAL_WORDS),
    ("abroad", ABROAD_WORDS),
    ("style", STYLE_WORDS),
    ("export", EXPORT_WORDS),
    ("maker", MAKER_WORDS),
    ("trade", TRADE_WORDS),
    ("live", LIVE_WORDS),
    ("bale_unit", BALE_UNITS),
    ("wholesale_unit", WHOLESALE_UNITS),
    ("lot", LOT_WORDS),
    ("negator", NEGATOR_WORDS),
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
    kind: str  # clothing / textile / non_clothing / unknown
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
            for flag in _flags_of(word):
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
    unit, and a "baru" about the stock or the bale ("stok baru", "baru buka bal") is not a new-goods word.
    A word denied by a negator right before it ("belum pernah dipakai", "bukan barang bekas", "tanpa
    noda") is the hit ``"not <word>"``: a denied used word says new, a denied new word says used,
    any other denied word says nothing."""
    hits: list[str] = []
    negators = None
    for i, t in enumerate(tokens):
        if t not in WORD_FLAGS:
            if not t[:1].isdigit():
                continue
            t = t.lstrip(_DIGITS)
            if t not in WORD_FLAGS:
                continue
        if t in NEW_WORDS and _stock_new(tokens, i):
            continue
        if negators is None:
            negators = not NEGATOR_WORDS.isdisjoint(tokens)
        if negators and t not in NEGATOR_WORDS and _denied(tokens, i):
            t = f"not {t}"
        hits.append(t)
    return tuple(hits)


_SKIP_AFTER_NEGATOR = frozenset(
    {"pernah", "barang", "brg", "baju", "pakaian", "ada", "sekali", "dari", "produk"}
)


def _denied(tokens: list[str] | tuple[str, ...], i: int) -> bool:
    """Whether a negator stands right before ``tokens[i]`` (skipping "pernah", "barang", "ada" …)."""
    for k in range(i - 1, max(-1, i - 4), -1):
        if tokens[k] in NEGATOR_WORDS:
            return True
        if tokens[k] not in _SKIP_AFTER_NEGATOR:
            break
    return False


def _flags_of(word: str) -> tuple[str, ...]:
    """The flags of a hit (:func:`hits_of`), denied ones included."""
    flags = WORD_FLAGS.get(word)
    if flags is not None:
        return flags
    denied = WORD_FLAGS.get(word[4:], ())
    if "used" in denied:
        return ("new",)
    if "new" in denied:
        return ("used",)
    return ()


_DERIVED: dict[frozenset[str], Derived] = {}


def analyse(tokens: list[str] | tuple[str, ...]) -> ProductFacts:
    """Product facts from normalised tokens (``Normalised.text.split()``)."""
    hits = hits_of(tokens)
    return ProductFacts(derived_for(frozenset([f for word in hits for f in _flags_of(word)])), hits)


def derived_for(flags: frozenset[str]) -> Derived:
    derived = _DERIVED.get(flags)
    if derived is None:
        derived = _DERIVED[flags] = derive(flags)  # at most 2^15 keys, in practice a few hundred
    return derived


# Each flag as a bit, so that a text's flags are the OR of its words' masks (the model's scorer memoises a
# mask per word and needs no set per text).
FLAG_BITS: dict[str, int] = {flag: 1 << i for i, flag in enumerate(FLAGS)}
_CONTEXT_BITS = FLAG_BITS["new"] | FLAG_BITS["negator"]  # "stok baru", "belum dipakai": need the words
_BY_MASK: dict[int, Derived] = {}


def token_mask(token: str) -> int:
    """The flags one token raises on its own, as bits (a unit glued to its number counts as the unit)."""
    flags = WORD_FLAGS.get(token)
    if flags is None and token[:1].isdigit():
        flags = WORD_FLAGS.get(token.lstrip(_DIGITS))
    mask = 0
    for flag in flags or ():
        mask |= FLAG_BITS[flag]
    return mask


def facts_from_masks(masks: list[int], tokens: list[str]) -> ProductFacts:
    """:func:`analyse` from each token's :func:`token_mask` (which a caller may have memoised): the same
    answer, with the words behind it found only when an explanation asks."""
    mask = reduce(or_, masks, 0)
    if not mask:
        return _NO_FACTS
    if mask & _CONTEXT_BITS:  # a "baru" or a negator: whether it counts depends on its neighbours
        mask = _context_mask(masks, tokens)
    derived = _BY_MASK.get(mask)
    if derived is None:
        derived = _BY_MASK[mask] = derived_for(frozenset(f for f, bit in FLAG_BITS.items() if mask & bit))
    return ProductFacts(derived, None, tokens)


_NEW_BIT, _USED_BIT, _NEGATOR_BIT = FLAG_BITS["new"], FLAG_BITS["used"], FLAG_BITS["negator"]


def _context_mask(masks: list[int], tokens: list[str]) -> int:
    """The flag bits :func:`hits_of` would give: "baru" about the stock dropped, denied words turned."""
    negators = not NEGATOR_WORDS.isdisjoint(tokens)
    out = 0
    for i, m in enumerate(masks):
        if not m:
            continue
        if m & _NEW_BIT and _stock_new(tokens, i):
            continue
        if negators and not m & _NEGATOR_BIT and _denied(tokens, i):
            m = (_NEW_BIT if m & _USED_BIT else 0) | (_USED_BIT if m & _NEW_BIT else 0)
        out |= m
    return out


def derive(flags: frozenset[str]) -> Derived:
    """kind, condition and bulk meaning from the flags present."""
    has = flags.__contains__
    kind = "unknown"
    if has("clothing") or has("accessory") or has("footwear") or has("bags"):
        kind = "clothing"
    elif has("household_textile"):
        kind = "textile"
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
    bale, wholesale, lot = has("bale_unit"), has("wholesale_unit"), has("lot")
    if bale or wholesale or lot:
        if kind == "non_clothing":
            bulk = "non_clothing"
        elif has("used") or ((bale or lot) and has("abroad") and not has("new") and not has("maker")):
            bulk = "used_bale"
        elif has("new") or has("maker") or has("export") or (wholesale and not bale):
            bulk = "new_wholesale"
        elif bale:
            bulk = "used_bale"
    names = (*[f for f in FLAGS if f in flags], f"kind:{kind}", f"cond:{condition}", f"bulk:{bulk}")
    return Derived(flags, kind, condition, bulk, names)


_NO_FACTS = ProductFacts(derive(frozenset()), ())

_STOCK = frozenset({"stok", "stock", "buka", "bongkar", "datang", "masuk", "tiba", "sampai", "dibuka"})


def _stock_new(tokens: list[str] | tuple[str, ...], i: int) -> bool:
    """True when the "baru" at ``i`` is about the stock or the bale ("stok baru", "baru buka bal")."""
    before = tokens[i - 1] if i > 0 else ""
    after = tokens[i + 1] if i + 1 < len(tokens) else ""
    return before in _STOCK or after in _STOCK or after in ("turun", "pecah", "dibongkar", "bongkar")
