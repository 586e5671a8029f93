"""The sandbox catalog: synthetic Indonesian marketplace listings with ground truth.

A catalog is a JSONL file, one :class:`CatalogListing` per line (format in ``docs/sandbox.md``). The
replica marketplaces (``sandbox/platforms/*``) serve any catalog in this format; :func:`generate` builds a
deterministic one from a seed (same seed and size → byte-identical JSONL).

What a generated catalog contains, and why:

- Label mix (exact shares, shuffled): 35% ``illegal_import`` (bale/bulk/origin+used wording), 20%
  ``legit_preloved``, 15% ``legit_new`` (sisa/reject ekspor, model korea, produk lokal), 10%
  ``legit_local_secondhand`` (donasi, titip jual, local thrift), 20% ``unrelated`` (new clothing, plus hard
  negatives such as "1 bal tisu" or an empty rice sack).
- Evasions on illegal listings: plain ~55%, spelling tricks ~25% ("thr1ft", "b a l", "b.a.l.p.r.e.s"),
  euphemism ~15% (regional words), none ~5% (no lexical signal; only the seller's contact handle or a
  relisting links it to the trade).
- Drift terms (:data:`DRIFT_TERMS`): seller words that are NOT in the seed lexicon, used in ~20% of illegal
  listings and never in legitimate ones; a listing that carries one records it in ``extra["drift_term"]``.
- Sellers: illegal sellers own several listings and appear on several platforms with the same WhatsApp
  or Instagram handle (``contact_handles``, also written into the description).
- Historic relistings: a few illegal listings are relistings (``relist_of``) of old Bukalapak listings that
  disappeared when Bukalapak closed; the state adds more relistings after takedowns (:func:`make_relisting`).

Extend: add vocabulary to the tables below (keep drift terms out of ``lexicon.tsv``). Platforms come from the
replica specs (:mod:`sandbox.replicas`): each replica's ``SPEC`` gives its share, id scheme and page URLs.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawler.errors import TertibError
from sandbox.replicas import Replicas, default_replicas

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # virtual day 0

LABELS = ("illegal_import", "legit_preloved", "legit_new", "legit_local_secondhand", "unrelated")
EVASIONS = ("plain", "spelling", "euphemism", "none")
CONDITIONS = ("NEW", "USED")

LABEL_SHARES = {
    "illegal_import": 0.35,
    "legit_preloved": 0.20,
    "legit_new": 0.15,
    "legit_local_secondhand": 0.10,
    "unrelated": 0.20,
}
EVASION_SHARES = {
    "plain": 0.56,
    "spelling": 0.25,
    "euphemism": 0.15,
    "none": 0.04,
}  # relistings add a few "none"
DRIFT_SHARE = 0.20  # of illegal listings

# Seller words that are not in the seed lexicon (checked by tests/test_sandbox_catalog.py).
DRIFT_TERMS: tuple[str, ...] = ("ukay", "bandela", "gelondongan", "lelang gudang", "jumbo pack")


class CatalogError(TertibError):
    """A catalog file is missing or has a malformed line (the message names the line)."""


@dataclass(slots=True)
class CatalogListing:
    platform: str
    listing_id: str
    seller_id: str
    seller_name: str
    seller_city: str
    shop_domain: str
    contact_handles: list[str]
    title: str
    description: str
    price: int
    category: str
    condition: str
    image_seed: str
    created_day: int
    label: str
    evasion: str
    relist_of: str | None
    sponsored: bool
    extra: dict[str, str] = field(default_factory=dict)
    active_from_day: int = 0
    # the person or business behind the shop (one id across its shops and platforms), its role in the
    # trade ("wholesale" / "retail"; "" for sellers outside it) and, for a reseller, the wholesaler whose
    # photos it reposts: the truth the dealer networks (crawler.intel) are measured against
    merchant: str = ""
    role: str = ""
    supplier: str = ""

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.listing_id}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))


# -- URLs ---------------------------------------------------------------------------------------------


def slugify(text: str, max_len: int = 80) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].strip("-") or "produk"


def listing_path(listing: CatalogListing, replicas: Replicas | None = None) -> tuple[str, str]:
    """(host key, path on that host) of the listing's public page, as in docs/contracts.md."""
    return (replicas or default_replicas()).listing_path(listing)


# -- vocabulary ------------------------------------------------------------------------------------------

CITIES = (
    "Jakarta Barat", "Jakarta Timur", "Jakarta Utara", "Bandung", "Surabaya", "Medan", "Makassar",
    "Batam", "Pekanbaru", "Pontianak", "Samarinda", "Palembang", "Jambi", "Yogyakarta", "Semarang",
    "Bekasi", "Tangerang", "Depok", "Bogor", "Denpasar", "Manado", "Kendari", "Malang", "Solo",
)  # fmt: skip
GARMENTS = (
    "kaos", "kemeja", "jaket", "hoodie", "sweater", "celana jeans", "celana chino", "blazer", "dress",
    "rok", "cardigan", "coat", "jaket kulit", "kemeja flanel", "jaket parka", "kaos polo", "sweatshirt",
    "windbreaker", "jaket denim", "celana cargo",
)  # fmt: skip
BRANDS = (
    "Uniqlo", "Nike", "Adidas", "Zara", "H&M", "Levi's", "The North Face", "Champion", "Carhartt", "GAP",
    "Columbia", "Puma", "Polo Ralph Lauren", "Tommy Hilfiger", "Muji",
)  # fmt: skip
LOCAL_BRANDS = ("Erigo", "Roughneck", "Thanksinsomnia", "Cottonink", "Kamengski", "Brodo", "Eiger")
FABRICS = ("katun combed 30s", "fleece tebal", "denim premium", "linen", "rayon", "cotton bamboo", "drill")
ORIGINS = ("korea", "ex korea", "jepang", "ex japan", "eks korea", "malaysia", "singapura", "usa", "eropa")
SIZES = ("S", "M", "L", "XL", "XXL", "all size")
GRADES = ("A", "B", "S", "A+")
PIECES = (200, 250, 300, 350, 400, 450, 500)
KILOS = (25, 50, 75, 100)
CATEGORIES = {
    "kaos": "Fashion Pria / Atasan Pria / Kaos Pria",
    "kemeja": "Fashion Pria / Atasan Pria / Kemeja Pria",
    "jaket": "Fashion Pria / Outerwear Pria / Jaket Pria",
    "hoodie": "Fashion Pria / Outerwear Pria / Hoodie Pria",
    "dress": "Fashion Wanita / Dress",
    "rok": "Fashion Wanita / Bawahan Wanita / Rok",
    "celana": "Fashion Pria / Bawahan Pria / Celana Panjang Pria",
    "bundle": "Fashion Pria / Pakaian Pria Lainnya",
}
SPELLING = {
    "bal": ("b a l", "baaal", "b@l", "ba.l", "B-A-L", "baall"),
    "balpres": ("b.a.l.p.r.e.s", "BALPRESIMPORT", "bal-pres", "b4lpres", "ba1pres"),
    "karungan": ("karungaan", "k4rungan", "k a r u n g a n", "karunggan"),
    "thrift": ("thr1ft", "thriift", "t h r i f t", "thr!ft"),
    "bekas": ("b3kas", "bekaas", "b.e.k.a.s"),
}
EUPHEMISMS = ("monza", "cakar", "awul-awul", "rombengan", "sortiran", "karungan", "baju bj", "cakaran")
ILLEGAL_SHOP_WORDS = ("Bal", "Monza", "Thrift", "Gudang", "Cakar", "Bundle", "Second", "Import", "Grosir")
LEGIT_SHOP_WORDS = ("Closet", "Lemari", "Butik", "Store", "Official", "Collection", "Shop", "Galeri")
NAMES = (
    "Rina", "Dewi", "Agus", "Budi", "Siti", "Andi", "Yudi", "Fitri", "Rizky", "Putri", "Hendra", "Wulan",
    "Dimas", "Ayu", "Fajar", "Intan", "Bayu", "Nanda", "Yusuf", "Mega",
)  # fmt: skip
COLOURS = (
    "hitam", "putih", "navy", "maroon", "abu-abu", "cream", "olive", "mocca", "army", "biru dongker",
    "merah", "hijau botol", "coklat", "khaki",
)  # fmt: skip
# Boilerplate every kind of seller writes (legitimate or not), in titles and descriptions alike: sizes,
# colours, cities, brands and commerce words. Drawn with the same odds for every label, so a contrast with
# ordinary listings must cancel them rather than a word list.
FILLER_TITLE = (
    "size {size}", "{size}", "{colour}", "ready", "ready stok", "COD", "bisa COD", "termurah", "promo",
    "best seller", "hits", "{city}", "free ongkir", "{brand}", "warna {colour}", "murah {city}",
)  # fmt: skip
FILLER_LINES = (
    "Warna {colour}.", "Ukuran {size}, warna {colour}.", "Bisa COD area {city}.", "Kirim dari {city}.",
    "Ready stok, langsung checkout.", "Pengiriman setiap hari kerja.", "Harga bisa nego tipis.",
    "Free ongkir pakai voucher.", "Packing rapi dan aman.", "Best seller, stok terbatas.",
    "Promo minggu ini.", "Tersedia warna {colour} dan {colour2}.", "Ada merk {brand}.",
    "Lokasi {city}, bisa ambil di tempat.", "Size {size} ready, tanya dulu sebelum order.",
)  # fmt: skip
TITLE_FILLER_SHARE = 0.35
LINE_FILLER_SHARE = 0.6

# Where a drift word goes (docs/sandbox.md): in the title only, the description only, both, or as the
# listing's only trade word (no lexicon phrase at all, so no lexicon query finds it).
DRIFT_PLACEMENTS = {"title": 0.34, "description": 0.30, "both": 0.21, "only_signal": 0.15}
DRIFT_SLANG = ("bal", "monza", "cakar", "thrift", "karungan", "sortiran", "rombengan", "awul-awul")
DRIFT_TERM_RE = re.compile(r"[a-z][a-z'\- ]{0,38}[a-z]")
MAX_DRIFT_TERMS = 20


@dataclass(slots=True)
class _Merchant:
    """One person or business; owns shops on one or more platforms under the same contact handles."""

    name: str
    city: str
    handles: list[str]
    illegal: bool
    shops: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # platform -> (id, name, domain)
    id: str = ""


class IdGen:
    """Deterministic draws for one catalog: ids, people, texts (the replica specs' id schemes use it)."""

    def __init__(
        self, seed: int, replicas: Replicas | None = None, drift_terms: tuple[str, ...] = DRIFT_TERMS
    ) -> None:
        self.rng = random.Random(seed)
        # wording that does not decide labels, ids or sellers (drift placement, boilerplate) draws from its
        # own stream, so it can change without moving anything else
        self.text_rng = random.Random(f"{seed}:text")
        self.drift_terms = drift_terms
        self.used_ids: set[str] = set()
        self.replicas = replicas or default_replicas()
        self.merchants = 0  # merchant ids are counted, not drawn: the random stream stays as it was

    # ids ------------------------------------------------------------------------------------------
    def digits(self, n: int) -> str:
        return str(self.rng.randint(10 ** (n - 1), 10**n - 1))

    def unique(self, make: Any) -> str:
        while True:
            value = str(make())
            if value not in self.used_ids:
                self.used_ids.add(value)
                return value

    def shortcode(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        return "C" + "".join(self.rng.choice(alphabet) for _ in range(10))

    def bukalapak_id(self) -> str:
        return "".join(self.rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(7))

    def blibli_sku(self) -> str:
        prefix = "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(3))
        return f"{prefix}-60{self.digits(3)}-{self.rng.randint(1, 999):05d}"

    # people ---------------------------------------------------------------------------------------
    def handles(self, illegal: bool, shop_word: str) -> list[str]:
        r = self.rng
        wa = f"wa:628{r.choice('1235789')}{self.digits(9)}"
        base = shop_word.lower() + r.choice(("", ".", "_")) + r.choice(ORIGINS[:4]).replace(" ", "")
        ig_name = (base if illegal else r.choice(NAMES).lower() + "." + shop_word.lower()) + str(
            r.randint(1, 99)
        )
        ig = f"ig:@{ig_name.replace('..', '.')}"
        if illegal:
            return [wa, ig] if r.random() < 0.7 else [wa]
        return [ig] if r.random() < 0.6 else []

    def merchant(self, illegal: bool) -> _Merchant:
        r = self.rng
        word = r.choice(ILLEGAL_SHOP_WORDS if illegal else LEGIT_SHOP_WORDS)
        owner = r.choice(NAMES)
        name = f"{word} {owner}" if r.random() < 0.5 else f"{owner} {word} {r.choice(CITIES).split()[0]}"
        self.merchants += 1
        return _Merchant(
            name=name,
            city=r.choice(CITIES),
            handles=self.handles(illegal, word),
            illegal=illegal,
            id=f"m{self.merchants:05d}",
        )

    def shop(self, m: _Merchant, platform: str, *, fresh: bool = False) -> tuple[str, str, str]:
        if platform in m.shops and not fresh:
            return m.shops[platform]
        r = self.rng
        name = m.name if not fresh else f"{r.choice(ILLEGAL_SHOP_WORDS)} {r.choice(NAMES)} {r.randint(2, 99)}"
        spec = self.replicas.get(platform)
        sid = spec.shop_id(self)
        if spec.shop_name is not None:
            name = spec.shop_name(m.handles, name, fresh)
        domain = slugify(name, 24).replace("-", "") or f"shop{sid}"
        domain = self.unique(lambda d=domain: d if d not in self.used_ids else f"{d}{r.randint(2, 999)}")
        shop = (sid, name, domain)
        if not fresh:
            m.shops[platform] = shop
        return shop

    # texts ----------------------------------------------------------------------------------------
    def contact_line(self, handles: list[str]) -> str:
        parts = []
        for h in handles:
            kind, _, value = h.partition(":")
            if kind == "wa":
                local = "0" + value[2:]
                style = self.rng.randrange(3)
                if style == 0:
                    parts.append(f"WA {local[:4]}-{local[4:8]}-{local[8:]}")
                elif style == 1:
                    parts.append(f"wa.me/{value}")
                else:
                    parts.append(f"Order via WA {local}")
            elif kind == "ig":
                parts.append(f"IG {value}")
        return " | ".join(parts)

    def illegal_text(
        self, evasion: str, drift: str | None, placement: str = "title"
    ) -> tuple[str, list[str], str]:
        r = self.rng
        g = r.choice(GARMENTS)
        origin = r.choice(ORIGINS)
        pcs = r.choice(PIECES)
        kg = r.choice(KILOS)
        grade = r.choice(GRADES)
        if evasion == "plain":
            title = r.choice(
                (
                    f"Bal {origin} {g} campur isi {pcs} pcs",
                    f"Balpres {g} {origin} {kg} kg grade {grade}",
                    f"Karungan {g} {origin} bal segel",
                    f"BUKA BAL {g} {origin} baju bekas impor",
                    f"Bal segel {g} {origin} isi {pcs} pcs",
                    f"Thrift {g} bal {origin} per kilo",
                    f"Bongkar bal {g} {origin} grade {grade}",
                )
            )
            body = [
                r.choice(
                    (f"Pakaian bekas impor langsung dari {origin}.", f"Barang {origin} bekas luar negeri.")
                ),
                r.choice((f"Isi {pcs} pcs campur.", f"Berat {kg} kg per bal.", f"1 karung isi {pcs} pcs.")),
                r.choice(("Buka bal tiap minggu.", "Bal segel belum dibongkar.", f"Grade {grade} sortiran.")),
                r.choice(("Cocok untuk paket usaha dan reseller.", "Harga partai besar bisa nego.", "")),
            ]
        elif evasion == "spelling":
            bal = r.choice(SPELLING["bal"])
            title = r.choice(
                (
                    f"{bal} {g} {origin} isi {pcs} pcs",
                    f"{r.choice(SPELLING['balpres'])} {g} {kg} kg",
                    f"{r.choice(SPELLING['karungan'])} {g} {origin} grade {grade}",
                    f"{r.choice(SPELLING['thrift'])} {g} {bal} {origin}",
                )
            )
            body = [
                f"Baju {r.choice(SPELLING['bekas'])} {origin}, 1 {bal} isi {pcs} pcs.",
                r.choice((f"Berat {kg} kg.", f"Grade {grade}.", "Segel pabrik.")),
                r.choice(("Siap kirim ke seluruh Indonesia.", "Stok terbatas.", "")),
            ]
        elif evasion == "euphemism":
            word = r.choice(EUPHEMISMS)
            title = r.choice(
                (
                    f"{word.title()} {g} pilihan {origin}",
                    f"{g.title()} {word} murah sortiran",
                    f"{word.title()} {g} grade {grade} per {r.choice(('karung', 'ikat'))}",
                    f"Hidden gem {g} {word}",
                )
            )
            body = [
                r.choice((f"Barang {word} pilihan, stok baru datang.", f"{word.title()} kualitas bagus.")),
                r.choice(
                    (f"Ambil banyak lebih murah, ± {pcs} potong.", "Harga per ikat.", "Bisa ambil ecer.")
                ),
                r.choice(("Lokasi gudang bisa datang langsung.", "")),
            ]
        else:  # none: no lexical signal at all
            title = r.choice(
                (
                    f"{g.title()} pilihan stok datang minggu ini",
                    f"{g.title()} aneka model murah meriah",
                    f"Paket hemat {g} pria wanita",
                )
            )
            body = ["Stok datang tiap minggu.", "Tanya stok lewat chat.", r.choice(("Harga terjangkau.", ""))]
        if drift:
            title, body = self.place_drift(title, body, drift, placement, g, origin)
        return title, [b for b in body if b], g

    def drift_casing(self, word: str) -> str:
        u = self.text_rng.random()
        return word if u < 0.5 else (word.title() if u < 0.8 else word.upper())

    def drift_placement(self) -> str:
        u = self.text_rng.random()
        for name, share in DRIFT_PLACEMENTS.items():
            if u < share:
                return name
            u -= share
        return "title"

    def place_drift(
        self, title: str, body: list[str], drift: str, placement: str, g: str, origin: str
    ) -> tuple[str, list[str]]:
        """Put ``drift`` into a listing in a varied position and phrasing (recorded in
        ``extra["drift_placement"]`` by :func:`_make`): the title only, the description only, both, or —
        for a listing with no lexicon phrase (evasion ``none``) — as its only trade word. Phrasings: in
        place of the bulk word, before or after the title, a separate segment or hashtag, next to other
        slang (or another drift word), a description sentence of its own."""
        t = self.text_rng
        w = self.drift_casing(drift)
        others = [d for d in self.drift_terms if d != drift]
        slang = t.choice(others) if others and t.random() < 0.25 else t.choice(DRIFT_SLANG)
        title_forms: tuple[str, ...]
        lines: tuple[str, ...]
        if placement == "only_signal":
            title_forms = (
                f"{w} {g} pilihan",
                f"{g.title()} {w} murah meriah",
                f"Paket {w} {g} pria wanita",
                f"{w} {g} stok baru",
                f"{g.title()} | {w}",
            )
            lines = (
                f"{w} baru masuk minggu ini.",
                f"Spesialis {w} sejak 2019.",
                f"Tanya stok {w} lewat chat.",
                f"{w}!!",
            )
        else:
            title_forms = (
                f"{w} {g} {origin}",
                f"{w} {origin} {g} campur",
                f"{title} {w}",
                f"{w} {title}",
                f"{title} | {w}",
                f"{title} #{w}",
                f"{title} {slang} {w}",
                f"{w} {slang} {g} {origin}",
                f"{g.title()} {w} {origin} pilihan",
            )
            lines = (
                f"Tersedia {w}.",
                f"Ready {w} {origin}.",
                f"{w} baru masuk minggu ini.",
                f"Spesialis {w} sejak 2019.",
                f"Kami jual {w} {g} campur.",
                f"#{w} #{slang}",
                f"{slang} {w} pilihan, datang tiap minggu.",
                f"{w}!!",
                f"Cari {w}? Langsung chat admin.",
            )
        in_title = placement in ("title", "both") or (placement == "only_signal" and t.random() < 0.8)
        in_body = placement in ("description", "both") or (placement == "only_signal" and not in_title)
        if in_title:
            title = t.choice(title_forms)
        if in_body:
            body.insert(t.randrange(len(body) + 1), t.choice(lines))
        return title, body

    def filler(self, title: str, body: list[str]) -> tuple[str, list[str]]:
        """Everyday boilerplate (sizes, colours, cities, brands, "ready", "COD") for any seller."""
        t = self.text_rng
        values = {
            "size": t.choice(("S", "M", "L", "XL", "XXL", "all size", "oversize")),
            "colour": t.choice(COLOURS),
            "colour2": t.choice(COLOURS),
            "city": t.choice(CITIES),
            "brand": t.choice(BRANDS),
        }
        if t.random() < TITLE_FILLER_SHARE:
            title = f"{title} {t.choice(FILLER_TITLE).format(**values)}"
        if t.random() < LINE_FILLER_SHARE:
            body.insert(t.randrange(len(body) + 1), t.choice(FILLER_LINES).format(**values))
        return title, body

    def legit_text(self, label: str) -> tuple[str, list[str], str, str]:
        """(title, body lines, garment, condition)."""
        r = self.rng
        g = r.choice(GARMENTS)
        brand = r.choice(BRANDS)
        size = r.choice(SIZES)
        if label == "legit_preloved":
            variant = r.randrange(5)
            if variant == 0:  # hard negative: personal item bought abroad
                title = f"Jaket {brand} preloved ex korea size {size}"
                body = ["Beli waktu liburan ke Seoul, koleksi pribadi.", "Jarang dipakai, kondisi 95%."]
            elif variant == 1:
                title = f"Preloved {brand} {g} size {size} jarang dipakai"
                body = ["Pemakaian pribadi, no minus.", f"Lingkar dada {r.randint(48, 62)} cm."]
            elif variant == 2:
                title = f"{g.title()} {brand} second original size {size}"
                body = ["Koleksi pribadi, dijual karena sudah tidak muat.", "BU, harga nego tipis."]
            elif variant == 3:
                title = f"Vintage {brand} {g} thrift pribadi"
                body = ["Punya sendiri, dipakai beberapa kali.", "Kondisi 90%, ada foto detail."]
            else:
                title = f"{g.title()} {brand} import preloved"
                body = ["Dibeli di mall, original.", "Dijual karena pindahan, koleksi pribadi."]
            return title, body, g, "USED"
        if label == "legit_new":
            variant = r.randrange(5)
            if variant == 0:
                title = f"{g.title()} sisa ekspor {brand} original"
                body = ["Barang baru sisa ekspor pabrik Bandung.", "Bukan bekas, label masih lengkap."]
            elif variant == 1:
                title = f"Reject ekspor {g} branded murah"
                body = ["Cacat produksi minor, barang baru.", "Produk ekspor asli buatan Indonesia."]
            elif variant == 2:
                title = f"{g.title()} model korea terbaru bahan {r.choice(FABRICS)}"
                body = ["Korean style, dijahit sendiri oleh konveksi kami.", "Barang baru, ready stok."]
            elif variant == 3:
                lb = r.choice(LOCAL_BRANDS)
                title = f"{lb} {g} produk lokal original"
                body = ["Brand lokal, made in Indonesia.", "Dukung UMKM, barang baru."]
            else:
                title = f"{g.title()} import {r.choice(('bangkok', 'china', 'guangzhou'))} baru"
                body = [
                    "Barang baru impor resmi, ada label dan plastik.",
                    "Model bangkok, ready semua ukuran.",
                ]
            return title, body, g, "NEW"
        if label == "legit_local_secondhand":
            variant = r.randrange(4)
            if variant == 0:
                title = f"Baju bekas layak pakai {g} donasi"
                body = [
                    "Hasil donasi warga, thrift amal untuk panti asuhan.",
                    "Semua hasil penjualan didonasikan.",
                ]
            elif variant == 1:
                title = f"Thrift lokal {g} {brand} titip jual"
                body = ["Konsinyasi dari pemilik di Jakarta.", "Barang bekas lokal, bukan impor."]
            elif variant == 2:
                title = f"{g.title()} second lokal size {size}"
                body = ["Bekas pakai sendiri dan keluarga.", "Kondisi layak pakai."]
            else:
                title = f"Lemari kakak: {g} bekas {brand}"
                body = ["Pakaian bekas keluarga, dicuci bersih.", "Titip jual, harga pas."]
            return title, body, g, "USED"
        # unrelated clothing and non-clothing hard negatives
        variant = r.randrange(7)
        if variant == 0:
            title = f"1 bal tisu {r.choice(('Paseo', 'Nice', 'Tessa'))} isi {r.choice((24, 40, 48))} pack"
            return title, ["Tisu wajah 250 sheet, grosir.", "Harga per bal."], "bundle", "NEW"
        if variant == 1:
            title = f"Karung beras kosong {r.choice((25, 50))} kg bekas"
            return (
                title,
                ["Karung plastik bekas beras, bersih.", "Cocok untuk tanaman atau sampah."],
                "bundle",
                "USED",
            )
        if variant == 2:
            return (
                f"{g.title()} polos {r.choice(FABRICS)} unisex",
                ["Barang baru, jahitan rapi.", f"Ukuran {size}, banyak warna."],
                g,
                "NEW",
            )
        if variant == 3:
            return f"Seragam sekolah {g} SD SMP", ["Bahan adem, jahitan kuat.", "Barang baru."], g, "NEW"
        if variant == 4:
            return f"Kaos kaki {brand} isi 3 pasang", ["Kaos kaki baru, bahan katun."], "kaos", "NEW"
        if variant == 5:
            return f"Setelan {g} anak {size}", ["Setelan anak baru, bahan lembut."], g, "NEW"
        return f"{g.title()} {brand} original store", [f"{brand} original, garansi resmi."], g, "NEW"


def _category(garment: str) -> str:
    for word, cat in CATEGORIES.items():
        if garment.startswith(word):
            return cat
    return "Fashion Pria / Pakaian Pria Lainnya"


def _apportion(shares: dict[str, float], n: int) -> list[str]:
    """Exactly n labels with the given shares (largest remainder)."""
    raw = {k: v * n for k, v in shares.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: (raw[k] - counts[k], k), reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1
    return [k for k in shares for _ in range(counts[k])]


def _price(gen: IdGen, label: str, title: str) -> int:
    r = gen.rng
    low = title.lower()
    if label == "illegal_import" and any(w in low for w in ("kg", "isi", "segel", "karung", "b a l", "pres")):
        return r.randrange(2_500_000, 9_000_000, 50_000)
    if "tisu" in low or "karung beras" in low:
        return r.randrange(5_000, 400_000, 500)
    return r.randrange(25_000, 450_000, 500)


def _image_seed(gen: IdGen) -> str:
    return f"{gen.rng.getrandbits(64):016x}"


def drift_plan(gen: IdGen, evasion: str, placement: str | None = None) -> tuple[str, str]:
    """(placement, evasion) of a drift listing: an ``only_signal`` listing carries no lexicon phrase."""
    placement = placement or gen.drift_placement()
    if placement == "only_signal" or evasion == "none":
        return "only_signal", "none"
    return placement, evasion


def _make(
    gen: IdGen,
    merchant: _Merchant,
    platform: str,
    label: str,
    evasion: str,
    drift: str | None,
    created_day: int,
    *,
    shop: tuple[str, str, str] | None = None,
    placement: str | None = None,
) -> CatalogListing:
    r = gen.rng
    if label == "illegal_import":
        if drift:
            placement, evasion = drift_plan(gen, evasion, placement)
        title, body, garment = gen.illegal_text(evasion, drift, placement or "title")
        condition = "USED" if r.random() < 0.85 else "NEW"
    else:
        title, body, garment, condition = gen.legit_text(label)
    title, body = gen.filler(title, body)
    shop = shop or gen.shop(merchant, platform)
    if merchant.handles and (label == "illegal_import" or r.random() < 0.5):
        body.append(gen.contact_line(merchant.handles))
    title = title[0].upper() + title[1:]
    spec = gen.replicas.get(platform)
    lid, extra = spec.new_ids(gen, shop, title)
    if drift:
        extra["drift_term"] = drift
        extra["drift_placement"] = placement or "title"
    if spec.late_ids is not None:
        extra.update(spec.late_ids(gen))
    sponsored = spec.sponsored_share > 0 and r.random() < spec.sponsored_share
    return CatalogListing(
        platform=platform,
        listing_id=lid,
        seller_id=shop[0],
        seller_name=shop[1],
        seller_city=merchant.city,
        shop_domain=shop[2],
        contact_handles=list(merchant.handles),
        title=title,
        description="\n".join(body),
        price=_price(gen, label, title),
        category=_category(garment),
        condition=condition,
        image_seed=_image_seed(gen),
        created_day=created_day,
        label=label,
        evasion=evasion,
        relist_of=None,
        sponsored=sponsored,
        extra=extra,
        active_from_day=min(created_day, 0),
        merchant=merchant.id,
    )


def parse_drift_terms(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Drift words from ``"a,b,c"`` (or a list): lower-cased, spaces collapsed, checked.

    Each is 2–40 letters (spaces, hyphens and apostrophes inside), at most :data:`MAX_DRIFT_TERMS`, no
    duplicates, and none may already be a lexicon term or variant (a drift word is new by definition).
    """
    from crawler.terms.lexicon import Lexicon
    from crawler.terms.normalise import normalise_phrase

    parts = raw.split(",") if isinstance(raw, str) else list(raw)
    terms = [" ".join(str(p).lower().split()) for p in parts]
    terms = [t for t in terms if t]
    if not terms:
        raise CatalogError("--drift-terms needs at least one word, e.g. --drift-terms 'a,b,c'")
    if len(terms) > MAX_DRIFT_TERMS:
        raise CatalogError(f"at most {MAX_DRIFT_TERMS} drift terms, got {len(terms)}")
    for term in terms:
        if not DRIFT_TERM_RE.fullmatch(term):
            raise CatalogError(
                f"drift term {term!r} must be 2-40 letters (spaces, hyphens or apostrophes inside)"
            )
    dupes = sorted({t for t in terms if terms.count(t) > 1})
    if dupes:
        raise CatalogError(f"drift term(s) given twice: {', '.join(dupes)}")
    known = {normalise_phrase(f) for t in Lexicon.packaged().active for f in t.forms()}
    taken = [t for t in terms if normalise_phrase(t) in known]
    if taken:
        raise CatalogError(f"already in the lexicon, so not a drift word: {', '.join(taken)}")
    return tuple(terms)


def generate(
    seed: int,
    size: int,
    replicas: Replicas | None = None,
    *,
    drift_terms: Iterable[str] | None = None,
    supply: bool = False,
) -> list[CatalogListing]:
    """A deterministic catalog of ``size`` listings (same seed, size, replicas and drift terms → identical
    listings).

    ``drift_terms`` replaces the built-in :data:`DRIFT_TERMS` (checked by :func:`parse_drift_terms`).
    ``supply``: resellers repost their wholesaler's photos (:func:`assign_roles`). Off by default: the very
    same photo on two unlinked shops is what the relisting audit reads as a relisting, and its measured
    figures are taken on catalogs without supply relations.
    """
    if size < 1:
        raise CatalogError("catalog size must be at least 1")
    vocabulary = DRIFT_TERMS if drift_terms is None else parse_drift_terms(drift_terms)
    gen = IdGen(seed, replicas, vocabulary)
    r = gen.rng
    labels = _apportion(LABEL_SHARES, size)
    r.shuffle(labels)
    n_illegal = labels.count("illegal_import")
    evasions = _apportion(EVASION_SHARES, n_illegal)
    r.shuffle(evasions)
    drift_flags = [i < round(n_illegal * DRIFT_SHARE) for i in range(n_illegal)]
    r.shuffle(drift_flags)
    platforms = list(gen.replicas.names)
    weights = [spec.share for spec in gen.replicas]

    illegal_pool = [gen.merchant(True) for _ in range(max(2, n_illegal // 6))]
    legit_pool = [gen.merchant(False) for _ in range(max(2, (size - n_illegal) // 3))]
    # Zipf-like: a few sellers own many listings
    illegal_w = [1.0 / (i + 1) ** 0.8 for i in range(len(illegal_pool))]
    legit_w = [1.0 / (i + 1) ** 0.5 for i in range(len(legit_pool))]

    # the last few illegal slots are historic relistings of a closed platform's listings (sellers who moved
    # on when it closed); the label mix stays exact
    relist_slots = max(0, round(n_illegal * 0.03))
    out: list[CatalogListing] = []
    ill_i = 0
    for label in labels:
        platform = r.choices(platforms, weights)[0]
        created = -r.randint(*gen.replicas.get(platform).created_days)
        if label == "illegal_import":
            evasion, drift_on = evasions[ill_i], drift_flags[ill_i]
            ill_i += 1
            if ill_i > n_illegal - relist_slots:
                parents = [
                    x
                    for x in out
                    if gen.replicas.get(x.platform).closed and x.label == label and x.contact_handles
                ]
                taken = {x.relist_of for x in out}
                parents = [x for x in parents if x.key not in taken]
                if parents:
                    parent = r.choice(parents)
                    out.append(
                        make_relisting(r, parent, day=-r.randint(0, 300), strategy="same_handle", gen=gen)
                    )
                    continue
            drift = r.choice(vocabulary) if drift_on else None
            placement = None
            if drift:
                placement, evasion = drift_plan(gen, evasion)
            if evasion == "none":
                # only sellers already known for the trade: the contact handle is the only link
                merchant = r.choice(illegal_pool[: max(1, len(illegal_pool) // 4)])
            else:
                merchant = r.choices(illegal_pool, illegal_w)[0]
            out.append(_make(gen, merchant, platform, label, evasion, drift, created, placement=placement))
        else:
            merchant = r.choices(legit_pool, legit_w)[0]
            out.append(_make(gen, merchant, platform, label, "plain", None, created))
    assign_roles(out, seed, supply=supply)
    return out


# -- the trade's structure: roles, supply, volume -----------------------------------------------------

WHOLESALE_SHARE = 0.3  # of the merchants selling illegal imports
SUPPLIED_SHARE = 0.6  # of the retail ones: repost a wholesaler's photos
RESTOCK_DAYS = 7  # a wholesaler's stock is refilled every week


def assign_roles(listings: list[CatalogListing], seed: int, *, supply: bool = True) -> None:
    """Give every merchant of the illegal trade a role and (``supply``) resellers a supplier whose photos
    they repost.

    Draws from its own random stream (``networks:{seed}``), so a catalog's listings, texts and ids are the
    same as without roles. Wholesalers are drawn among the merchants with the most listings first
    (big dealers run several shops); a supplied reseller's own (non-relisted) listings take, with even odds
    each, the exact image of one of its supplier's listings.
    """
    rng = random.Random(f"networks:{seed}")
    by_merchant: dict[str, list[CatalogListing]] = {}
    for listing in listings:
        if listing.merchant and listing.label == "illegal_import":
            by_merchant.setdefault(listing.merchant, []).append(listing)
    merchants = sorted(by_merchant, key=lambda m: (-len(by_merchant[m]), m))
    wholesale: list[str] = []
    for rank, merchant in enumerate(merchants):
        odds = WHOLESALE_SHARE * (1.8 if rank < len(merchants) // 3 else 0.6)
        role = "wholesale" if rng.random() < odds else "retail"
        if role == "wholesale":
            wholesale.append(merchant)
        for listing in by_merchant[merchant]:
            listing.role = role
    if not wholesale:
        return
    parents = {x.relist_of for x in listings if x.relist_of}
    for merchant in merchants:
        own = by_merchant[merchant]
        if own[0].role != "retail" or rng.random() >= SUPPLIED_SHARE:
            continue
        supplier = rng.choice(wholesale)
        photos = [x.image_seed.split("~", 1)[0] for x in by_merchant[supplier]]
        for listing in own:
            listing.supplier = supplier
            if supply and listing.relist_of is None and listing.key not in parents and rng.random() < 0.5:
                listing.image_seed = rng.choice(photos)


def _unit(key: str, salt: str) -> float:
    """A deterministic draw in [0, 1) from a listing key (stable across processes)."""
    import hashlib

    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def sold_on(listing: CatalogListing, day: int) -> int:
    """How many units the listing has sold by virtual ``day`` (what its platform's sold field counts).

    Wholesalers sell 1–8 bales a day, resellers 0.02–0.6 units, sellers outside the trade a slow trickle;
    every listing starts with some history. Counts only grow.
    """
    age = max(0, day - listing.created_day)
    if listing.role == "wholesale":
        base, rate = 20 + int(_unit(listing.key, "sold") * 200), 1 + 7 * _unit(listing.key, "rate")
    elif listing.role == "retail":
        base, rate = int(_unit(listing.key, "sold") * 40), 0.02 + 0.58 * _unit(listing.key, "rate")
    else:
        base, rate = int(_unit(listing.key, "sold") * 400), 0.1 * _unit(listing.key, "rate")
    return base + int(rate * age)


def stock_on(listing: CatalogListing, day: int) -> int:
    """Units in stock on ``day``: a wholesaler refills every :data:`RESTOCK_DAYS` days (a saw-tooth), others
    sell down what they have."""
    if listing.role == "wholesale":
        cap = 60 + int(_unit(listing.key, "cap") * 400)
        since = max(0, day - listing.created_day) % RESTOCK_DAYS
        return max(1, cap - (sold_on(listing, day) - sold_on(listing, day - since)))
    start = 5 + int(_unit(listing.key, "stock") * 200)
    return max(0, start - (sold_on(listing, day) - sold_on(listing, listing.created_day)))


def networks_truth(listings: Iterable[CatalogListing], day: int) -> list[dict[str, Any]]:
    """The merchants as ``/_sandbox/truth`` shows them: ``{"id", "role", "accounts": ["platform:seller_id"],
    "volume_units", "listings", "illegal", "supplier"}``, largest volume first.

    ``volume_units`` is what the merchant's listings visible by ``day`` have sold by then. A merchant of a
    catalog without merchant ids (an older JSONL) is each shop on its own.
    """
    merchants: dict[str, dict[str, Any]] = {}
    for listing in listings:
        if listing.active_from_day > day:
            continue
        account = f"{listing.platform}:{listing.seller_id}"
        mid = listing.merchant or account
        entry = merchants.setdefault(
            mid,
            {"id": mid, "role": listing.role or "retail", "accounts": set(), "volume_units": 0,
             "listings": 0, "illegal": False, "supplier": listing.supplier or None},
        )  # fmt: skip
        entry["accounts"].add(account)
        entry["volume_units"] += sold_on(listing, day)
        entry["listings"] += 1
        entry["illegal"] = entry["illegal"] or listing.label == "illegal_import"
    out = [{**m, "accounts": sorted(m["accounts"])} for m in merchants.values()]
    out.sort(key=lambda m: (-m["volume_units"], m["id"]))
    return out


def make_relisting(
    rng: random.Random,
    parent: CatalogListing,
    *,
    day: int,
    strategy: str,
    gen: IdGen | None = None,
    used_ids: Iterable[str] = (),
    platform: str | None = None,
    drift_terms: tuple[str, ...] | None = None,
    replicas: Replicas | None = None,
) -> CatalogListing:
    """A new listing by the same seller as ``parent``, visible from ``day``.

    ``strategy``: ``new_words`` (same shop, rewritten text with another evasion), ``new_shop`` (a new shop
    name and id, same handles), ``same_handle`` (new shop, new words, only the contact handle links it).
    The image is the parent's, lightly altered: ``image_seed = f"{parent_seed}~{variant}"``.
    """
    if gen is None:
        gen = IdGen(0, replicas, drift_terms or DRIFT_TERMS)
        gen.rng = rng
        gen.text_rng = random.Random(f"{rng.random()}:text")
        gen.used_ids.update(used_ids)
    vocabulary = drift_terms or gen.drift_terms
    r = gen.rng
    parent_spec = gen.replicas.get(parent.platform)
    target = platform or (parent.platform if not parent_spec.closed else r.choice(parent_spec.successors))
    merchant = _Merchant(
        name=parent.seller_name,
        city=parent.seller_city,
        handles=list(parent.contact_handles),
        illegal=True,
        id=parent.merchant,
    )
    same_shop = strategy == "new_words" and target == parent.platform
    if same_shop:
        shop = (parent.seller_id, parent.seller_name, parent.shop_domain)
    else:
        shop = gen.shop(merchant, target, fresh=True)
    label = parent.label
    if label == "illegal_import":
        evasion = (
            r.choice(("spelling", "euphemism", "euphemism", "none")) if strategy != "new_shop" else "plain"
        )
        drift = r.choice(vocabulary) if r.random() < 0.4 and evasion != "none" else None
    else:
        evasion, drift = parent.evasion, None
    child = _make(gen, merchant, target, label, evasion, drift, day, shop=shop)
    base_seed = parent.image_seed.split("~", 1)[0]
    child.image_seed = f"{base_seed}~{r.randint(1, 9)}"
    child.relist_of = parent.key
    child.active_from_day = day
    child.created_day = day
    child.extra["relist_strategy"] = strategy
    child.role, child.supplier = parent.role, parent.supplier
    return child


# -- JSONL ------------------------------------------------------------------------------------------------

_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "platform": (str,),
    "listing_id": (str,),
    "seller_id": (str,),
    "seller_name": (str,),
    "seller_city": (str,),
    "shop_domain": (str,),
    "contact_handles": (list,),
    "title": (str,),
    "description": (str,),
    "price": (int,),
    "category": (str,),
    "condition": (str,),
    "image_seed": (str,),
    "created_day": (int,),
    "label": (str,),
    "evasion": (str,),
    "relist_of": (str, type(None)),
    "sponsored": (bool,),
    "extra": (dict,),
    "active_from_day": (int,),
    "merchant": (str,),
    "role": (str,),
    "supplier": (str,),
}
_OPTIONAL: dict[str, Any] = {
    "extra": {},
    "active_from_day": None,
    "relist_of": None,
    "sponsored": False,
    "contact_handles": [],
    "merchant": "",
    "role": "",
    "supplier": "",
}
_SEED_RE = re.compile(r"^[0-9a-f]{1,64}(~[0-9a-z]{1,16})?$")


def write_catalog(listings: Iterable[CatalogListing], path: str | Path) -> None:
    """Write JSONL (UTF-8, one listing per line, fixed key order) atomically."""
    path = Path(path)
    if path.is_dir():
        raise CatalogError(f"{path} is a directory; give a file name for the catalog")
    if not path.parent.is_dir():
        raise CatalogError(f"cannot write {path}: the folder {path.parent} does not exist")
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as fh:
            for listing in listings:
                fh.write(listing.to_json() + "\n")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # nothing half-written is left behind
        raise


def listing_from_dict(data: Any, where: str = "", replicas: Replicas | None = None) -> CatalogListing:
    """Validate one decoded JSON object; raise CatalogError naming ``where`` and the bad field."""
    replicas = replicas or default_replicas()
    prefix = f"{where}: " if where else ""
    if not isinstance(data, dict):
        raise CatalogError(f"{prefix}expected a JSON object")
    unknown = set(data) - set(_FIELD_TYPES)
    if unknown:
        raise CatalogError(f"{prefix}unknown field(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, types in _FIELD_TYPES.items():
        if name not in data:
            if name in _OPTIONAL:
                default = _OPTIONAL[name]
                values[name] = type(default)() if isinstance(default, dict | list) else default
                continue
            raise CatalogError(f"{prefix}missing field {name!r}")
        value = data[name]
        if not isinstance(value, types) or (int in types and bool not in types and isinstance(value, bool)):
            raise CatalogError(f"{prefix}field {name!r} has the wrong type ({type(value).__name__})")
        values[name] = value
    if values["active_from_day"] is None:
        values["active_from_day"] = min(values["created_day"], 0)
    checks = (
        (values["platform"] in replicas.specs, "platform", replicas.names),
        (values["label"] in LABELS, "label", LABELS),
        (values["evasion"] in EVASIONS, "evasion", EVASIONS),
        (values["condition"] in CONDITIONS, "condition", CONDITIONS),
    )
    for ok, name, allowed in checks:
        if not ok:
            raise CatalogError(f"{prefix}field {name!r} is {values[name]!r}; allowed: {', '.join(allowed)}")
    if not values["listing_id"] or not re.fullmatch(r"[A-Za-z0-9._\-]+", values["listing_id"]):
        raise CatalogError(f"{prefix}field 'listing_id' must be non-empty and URL-safe")
    if not re.fullmatch(r"[a-z0-9][a-z0-9\-]*", values["shop_domain"]):
        raise CatalogError(f"{prefix}field 'shop_domain' must be a lowercase url-safe slug")
    if values["role"] not in ("", "wholesale", "retail"):
        raise CatalogError(f"{prefix}field 'role' is {values['role']!r}; allowed: wholesale, retail, empty")
    if values["price"] < 0:
        raise CatalogError(f"{prefix}field 'price' must be >= 0")
    if not _SEED_RE.match(values["image_seed"]):
        raise CatalogError(f"{prefix}field 'image_seed' must be hex, optionally '~variant'")
    if not all(isinstance(h, str) and ":" in h for h in values["contact_handles"]):
        raise CatalogError(f"{prefix}field 'contact_handles' must be strings like 'wa:62…' or 'ig:@name'")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in values["extra"].items()):
        raise CatalogError(f"{prefix}field 'extra' must map strings to strings")
    check_id = replicas.get(values["platform"]).check_id
    problem = check_id(values["listing_id"], values["extra"]) if check_id else None
    if problem:
        raise CatalogError(f"{prefix}{values['platform']} listing_id {problem}")
    return CatalogListing(**values)


def load_catalog(path: str | Path, replicas: Replicas | None = None) -> list[CatalogListing]:
    """Read and validate a JSONL catalog. Errors name the file and line number."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"catalog file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc}") from None
    out: list[CatalogListing] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{where}: not valid JSON ({exc.msg})") from None
        listing = listing_from_dict(data, where, replicas)
        if listing.key in seen:
            raise CatalogError(
                f"{where}: duplicate listing {listing.key} (first on line {seen[listing.key]})"
            )
        seen[listing.key] = number
        out.append(listing)
    if not out:
        raise CatalogError(f"catalog {path} has no listings")
    for listing in out:
        if listing.relist_of is not None and listing.relist_of not in seen:
            raise CatalogError(
                f"{path.name} line {seen[listing.key]}: relist_of {listing.relist_of!r} is not in the catalog"
            )
    return out


CATALOG_FIELDS = tuple(f.name for f in fields(CatalogListing))
