# ruff: noqa: E501  (template tables read better on one line each)
"""Assemble the labelled detection corpus ``crawler/data/corpus.tsv`` from its sources (deterministic).

Sources, each row keeping where it came from (the ``source`` column):

- ``corpus/written/<family>.txt`` — titles written for the project, one per line (``title ||| description``
  where a description helps); the family is the file name, ``pos_*`` files are illegal imports and ``neg_*``
  files legitimate. ``source = written``.
- ``corpus/real/news-titles.tsv`` — titles, shop names and seller shouts quoted by news reports (copied from
  ``shared/reference/real-titles.tsv``); rows labelled ``unclear`` are left out. ``source = news:<url>``.
- ``corpus/real/kaos-search-titles.tsv`` — real Shopee and Blibli search results for "kaos" (ordinary
  legitimate listings). ``source = real-capture:<platform>-search-kaos``.
- Templates below — ``source = generated``; they only ever go to the **training** split.

The held-out split: every written and real row whose *split key* (the title lower-cased, digits removed,
whitespace collapsed) hashes (SHA-256) into the lowest quarter is ``heldout``; everything else is ``train``.
Rows that share a split key share a split, so near-copies never straddle it. The split was fixed before
any model was trained and is never used to choose features or parameters (cross-validation on ``train`` is).

Run: ``.venv/bin/python scripts/build_corpus.py`` (rewrites ``crawler/data/corpus.tsv``).
"""

from __future__ import annotations

import csv
import hashlib
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRITTEN = ROOT / "corpus" / "written"
REAL = ROOT / "corpus" / "real"
OUT = ROOT / "crawler" / "data" / "corpus.tsv"
SEED = 20261115
HELDOUT_SHARE = 0.25

# -- template vocabulary (independent of the sandbox catalog's; drift terms of the sandbox left out) --------
GARMENTS = (
    "kaos", "kemeja", "jaket", "hoodie", "sweater", "celana jeans", "celana chino", "blazer", "dress", "rok",
    "cardigan", "coat", "jaket kulit", "kemeja flanel", "jaket parka", "kaos polo", "sweatshirt", "rompi",
    "celana cargo", "blouse", "gamis", "mantel", "jas", "celana pendek", "piyama", "jaket denim", "tunik",
    "outer", "kulot", "legging", "baju anak", "jersey", "celana training", "kebaya", "daster",
)  # fmt: skip
FOOTWEAR_BAGS = (
    "sepatu",
    "sneakers",
    "sepatu boots",
    "sandal",
    "tas",
    "tas ransel",
    "tas selempang",
    "dompet",
)
ORIGINS = (
    "korea", "jepang", "japan", "usa", "eropa", "taiwan", "hongkong", "china", "singapura", "malaysia",
    "thailand", "amerika", "australia", "inggris", "uk",
)  # fmt: skip
BRANDS = (
    "Uniqlo", "Nike", "Adidas", "Zara", "H&M", "Levis", "North Face", "Champion", "Carhartt", "GAP", "Puma",
    "Columbia", "Tommy", "Muji", "Mango", "Converse", "Vans", "Dickies", "Lacoste", "Guess",
)  # fmt: skip
LOCAL_BRANDS = ("Erigo", "Eiger", "Roughneck", "Cottonink", "Brodo", "3Second", "Greenlight", "Executive")
COLOURS = ("hitam", "putih", "navy", "abu", "maroon", "coklat", "hijau army", "biru", "krem", "pink")
SIZES = ("S", "M", "L", "XL", "XXL", "all size", "size 40", "size 42")
GRADES = ("A", "B", "S", "A+", "super", "premium")
SELLER_BITS = ("murah", "ready", "termurah", "promo", "cod", "free ongkir", "ori", "bisa nego", "", "", "")
NEW_WORDS = (
    "baru",
    "new",
    "brand new",
    "new arrival",
    "ready stok",
    "segel plastik",
    "BNWT",
    "baru dari pabrik",
)
USED_WORDS = ("bekas", "second", "seken", "2nd", "thrift", "preloved", "bkas", "scnd")
ORIGIN_USED = ("ex", "eks", "bekas", "second", "thrift", "seken")
BULK_USED = (
    "bal", "balpres", "ballpress", "karungan", "per karung", "1 karung", "bal segel", "bal campur", "per kilo",
    "kiloan", "per bal", "borongan karung",
)  # fmt: skip
QTY_USED = ("isi {n} pcs", "isi {n} potong", "{k} kg", "{k}kg", "isi {n}", "1 bal {k} kg", "{n} helai")
NEW_BULK_UNITS = (
    "per lusin", "1 lusin", "per kodi", "1 kodi", "per karton", "1 karton isi {m}", "per bal isi {m}",
    "1 bal isi {m} pcs", "per karung isi {m}", "per kg", "grosir isi {m}", "per seri", "partai {n} pcs",
)  # fmt: skip
NEW_BULK_GOODS = (
    "kaos polos", "kaos polos anak", "hijab voal", "jilbab instan", "kaos kaki", "celana dalam", "singlet",
    "kaos dalam", "daster", "mukena", "handuk", "sarung", "legging", "kerudung", "boxer", "kaos sablon",
    "piyama anak", "seragam sekolah", "kaos oblong", "manset", "ciput", "kaos promosi", "baju bayi",
)  # fmt: skip
NEW_BULK_CONTEXT = (
    "konveksi", "produksi sendiri", "dari pabrik", "grosir", "reseller", "harga pabrik", "langsung produsen",
    "bahan cotton combed 30s", "tanah abang", "bandung", "baru", "new", "sablon custom",
)  # fmt: skip
NON_CLOTHING_USED = (
    "mesin jahit", "hp", "laptop", "kamera", "lensa", "sepeda", "motor", "kulkas", "rice cooker", "velg",
    "ban", "buku", "komik", "majalah", "kardus", "koran", "besi tua", "mainan", "gitar", "jam tangan",
    "mesin obras", "kursi", "meja", "lemari", "koper", "panci", "spare part", "piringan hitam", "mesin cuci",
)  # fmt: skip
NON_CLOTHING_BULK = (
    "beras", "gula", "tisu", "pupuk", "semen", "kopi", "bawang", "jagung", "pakan ayam", "arang", "pasir",
    "plastik kresek", "tali rafia", "karung plastik", "kardus", "botol plastik", "kertas", "gabah",
)  # fmt: skip
BALLS = (
    "volley ball", "volleyball", "basket ball", "basketball", "foot ball", "golf ball", "tennis ball",
    "bola voli", "bola basket", "bola futsal", "bola sepak", "ballpoint", "ball bearing", "ball joint",
    "bola golf", "ball valve", "meatball", "cotton ball", "bola kasti",
)  # fmt: skip
BALL_BRANDS = ("Mikasa", "Molten", "Spalding", "Nike", "Adidas", "Specs", "Mitre", "SKF", "Pilot", "Standard")
STYLE = (
    "korean style", "model korea", "ala korea", "style korea", "japanese style", "gaya jepang", "thrift style",
    "vintage style", "retro look", "look thrift", "ala thrift", "y2k style", "harajuku style", "bangkok style",
)  # fmt: skip
PERSONAL = (
    "koleksi pribadi", "pemakaian pribadi", "jarang dipakai", "dipakai 2x", "baru dipakai sekali",
    "no minus", "kondisi 95%", "jual cepat", "butuh uang", "sudah tidak muat", "pindahan rumah",
)  # fmt: skip
ABROAD_PERSONAL = (
    "beli di {o}",
    "oleh-oleh dari {o}",
    "bekas liburan ke {o}",
    "dibawa dari {o}",
    "beli waktu kuliah di {o}",
)
PARAPHRASE = (
    "dipakai orang {o}", "bekas pakai orang {o}", "dikirim dari {o}", "turun kontainer", "dari kontainer {o}",
    "stok gudang batam", "dari pelabuhan tanjung balai", "luar negri", "eks LN", "ex LN", "tangan kedua dari {o}",
    "lungsuran luar negeri", "asal {o} bekas pakai", "kiriman dari {o} bekas", "seken luar negeri",
)  # fmt: skip
REGIONAL = (
    "monza", "cakar", "awul-awul", "rombengan", "baju bj", "lelong", "cimol", "cakaran", "ngawul", "monja",
    "burukan jambi", "ukay-ukay",
)  # fmt: skip
LIVE = (
    "live bongkar bal", "live buka bal", "unboxing bal", "spill isi bal", "pecah bal", "open bal", "bedah bal",
    "live buka karung", "bongkar karung live", "pecah kawat", "live unboxing karungan", "live sortir bal",
)  # fmt: skip
EXPORT = ("sisa ekspor", "reject ekspor", "sisa export", "overproduksi", "cacat produksi", "factory outlet")
# Household textiles and worn accessories (HS 6309 covers worn articles; new ones are ordinary goods)
TEXTILES = (
    "selimut", "bedcover", "sprei", "gorden", "handuk", "karpet", "topi", "syal", "sarung tangan", "beanie",
    "bucket hat", "ikat pinggang", "kaos kaki", "selimut tebal", "topi baseball", "scarf", "blanket",
)  # fmt: skip
# Lots smaller than a bale, and retail sizes
LOTS = (
    "paket reseller {n} pcs", "paket usaha {n} pcs", "take all {n} pcs", "borongan {n} pcs", "per kodi",
    "1 kodi", "2 kodi", "per kg", "kiloan", "{k} kg", "lot {n} pcs", "ambil semua {n} pcs", "paket {n} pcs",
    "per lusin", "bundle {n} pcs", "setengah bal",
)  # fmt: skip
RETAIL = (
    "size {s} ld {ld}", "ld {ld} pj {pj}", "kondisi {c}/10", "size {s} no minus", "ada minus kecil", "satuan",
    "ecer", "{p}rb", "kondisi {c}0%", "original", "ori", "pilihan",
)  # fmt: skip
PARAPHRASE_MORE = (
    "sisa pakai orang {o}", "bekas orang {o}", "kiriman kapal dari {o}", "turun peti kemas", "dari gudang {port}",
    "luar negri second", "bukan baru, dari {o}", "hasil pakai orang {o}", "dikapalkan dari {o}",
    "bekas negara empat musim", "stok kapal dari {o}", "barang luar bekas pakai", "pernah dipakai di {o}",
    "eks pakai {o}", "bongkaran kontainer {o}", "kiriman {o} second", "bekas orang luar", "dari karung {o}",
)  # fmt: skip
PORTS = ("batam", "tanjung balai", "dumai", "tawau", "entikong", "nunukan", "karimun", "pontianak", "belawan")
HOMONYMS = (
    "kaos bali", "daster bali", "sepatu ballerina", "flatshoes ballerina", "balaclava rajut", "baju balita",
    "celana balita", "tas goni", "totebag goni", "legging second skin", "manset second skin", "jersey basketball",
    "topi baseball", "ball gown", "jaket balap", "kaos bali united", "kaos 3second",
)  # fmt: skip
# Ordinary description sentences, appended to a third of the generated rows of *both* labels so that the
# model learns they say nothing (real descriptions are full of them).
FILLER = (
    "Ready stok, langsung order saja.", "Bisa COD area Jakarta.", "Tanya stok dulu sebelum checkout.",
    "Pengiriman setiap hari kecuali Minggu.", "Harga bisa nego untuk pembelian banyak.", "Kualitas bagus, harga murah.",
    "Order via WA 0812-1111-2222.", "Follow IG kami untuk update stok.", "Foto asli produk, bukan hasil edit.",
    "Ukuran lengkap, silakan tanya di chat.", "Barang dicek dulu sebelum dikirim.", "Melayani grosir dan ecer.",
    "Packing aman pakai bubble wrap.", "Warna bisa sedikit berbeda karena cahaya.", "Chat admin untuk info lebih lanjut.",
    "Terima kasih sudah berkunjung ke toko kami.", "Pesanan sebelum jam 3 sore dikirim hari ini.", "Ambil banyak lebih murah.",
    "Kirim ke seluruh Indonesia.", "Garansi uang kembali kalau barang tidak sesuai.", "Stok terbatas, siapa cepat dia dapat.",
    "Lokasi toko di Jakarta Timur, bisa ambil langsung.", "Wajib video unboxing untuk komplain.", "Harga sudah termasuk plastik.",
)  # fmt: skip
MASKS = {
    "bal": ("b*l", "b@l", "b4l", "b.a.l", "ba|", "b a l", "baal", "B-A-L"),
    "balpres": ("b4lpres", "b.a.l.p.r.e.s", "balpr3s", "ball pr*ss", "b@lpres"),
    "bekas": ("b3kas", "bek@s", "b*kas", "bks", "b.e.k.a.s"),
    "thrift": ("thr1ft", "thr!ft", "thrifft", "t.h.r.i.f.t", "thr*ft"),
    "karungan": ("k@rungan", "k4rungan", "kar*ngan", "k.a.r.u.n.g.a.n"),
    "impor": ("imp0r", "1mpor", "imp*r", "!mport"),
}


def _tidy(text: str) -> str:
    return " ".join(text.split())


def generate(seed: int = SEED) -> list[tuple[str, str, str, str]]:
    """(family, label, title, description) rows from templates; deterministic for a seed."""
    r = random.Random(seed)
    c = r.choice
    rows: list[tuple[str, str, str, str]] = []

    def qty() -> str:
        return c(QTY_USED).format(n=c((150, 200, 250, 300, 350, 400, 450, 500)), k=c((25, 45, 50, 100)))

    def add(family: str, label: str, title: str, n_words: int = 0) -> None:
        words = _tidy(title).split()
        if n_words and r.random() < 0.5:
            words.append(c(SELLER_BITS))
        title = _tidy(" ".join(words))
        if r.random() < 0.25:
            title = title.upper()
        elif r.random() < 0.5:
            title = title.title()
        description = " ".join(r.sample(FILLER, r.randint(2, 5))) if r.random() < 0.35 else ""
        rows.append((family, label, title, description))

    for _ in range(150):
        g, o = c(GARMENTS), c(ORIGINS)
        add("pos_bulk", "illegal", c((
            f"{c(BULK_USED)} {g} {o} {qty()}", f"{g} {o} {c(BULK_USED)} grade {c(GRADES)}",
            f"{c(BULK_USED)} {o} {g} campur {qty()}", f"{g} {c(USED_WORDS)} {c(BULK_USED)} {qty()}",
        )), 1)  # fmt: skip
    for _ in range(110):
        g, o = c(GARMENTS), c(ORIGINS)
        add("pos_origin_used", "illegal", c((
            f"{g} {c(ORIGIN_USED)} {o}", f"{c(USED_WORDS)} {o} {g} {c(SIZES)}", f"{g} {c(USED_WORDS)} import {o}",
            f"{g} {c(BRANDS)} {c(ORIGIN_USED)} {o}", f"{c(('thrift', 'thrifting'))} {o} {g} {c(COLOURS)}",
        )), 1)  # fmt: skip
    for _ in range(100):
        g, o = c(GARMENTS + FOOTWEAR_BAGS), c(ORIGINS)
        add(
            "pos_paraphrase",
            "illegal",
            f"{g} {c(PARAPHRASE).format(o=o)} {c(('', 'pilihan', 'murah', 'ecer'))}",
            1,
        )
    for _ in range(80):
        g, o = c(GARMENTS), c(ORIGINS)
        word = c(tuple(MASKS))
        masked = c(MASKS[word])
        add("pos_masked", "illegal", c((
            f"{masked} {g} {o} {qty()}", f"{g} {masked} {o}", f"{masked} {o} {c(BULK_USED)}",
        )))  # fmt: skip
    for _ in range(60):
        g, o = c(GARMENTS), c(ORIGINS)
        add(
            "pos_regional",
            "illegal",
            c((f"{c(REGIONAL)} {g} {o}", f"{g} {c(REGIONAL)} pilihan", f"baju {c(REGIONAL)} {qty()}")),
            1,
        )
    for _ in range(50):
        g, o = c(GARMENTS), c(ORIGINS)
        add(
            "pos_live",
            "illegal",
            f"{c(LIVE)} {g} {o} {c(('malam ini', 'jam 8', 'sekarang', 'hari ini', ''))}",
        )
    for _ in range(40):
        g, o = c(FOOTWEAR_BAGS), c(ORIGINS)
        add(
            "pos_footwear_bags",
            "illegal",
            c((f"{c(BULK_USED)} {g} {o} {qty()}", f"{g} {c(USED_WORDS)} import {c(BULK_USED)}")),
        )

    for _ in range(170):
        goods = c(NEW_BULK_GOODS)
        unit = c(NEW_BULK_UNITS).format(m=c((12, 20, 24, 50, 100, 200, 240, 500)), n=c((100, 200, 300, 500)))
        add("neg_new_bulk", "legit", c((
            f"{goods} {unit} {c(NEW_BULK_CONTEXT)}", f"{goods} {c(NEW_WORDS)} {unit}",
            f"{c(NEW_BULK_CONTEXT)} {goods} {unit}", f"{goods} import {c(('china', 'korea', 'thailand'))} {c(NEW_WORDS)} {unit}",
        )), 1)  # fmt: skip
    for _ in range(120):
        thing = c(NON_CLOTHING_USED)
        add("neg_nonclothing", "legit", c((
            f"{thing} {c(USED_WORDS)} {c(('ex', 'eks'))} {c(ORIGINS)}", f"{thing} {c(USED_WORDS)} mulus",
            f"{c(NON_CLOTHING_BULK)} {c(('per karung', '1 bal', 'per bal', 'per kg', '1 karung', 'per sak'))} {c(('25 kg', '50 kg', 'isi 40', ''))}",
            f"{thing} import {c(ORIGINS)} {c(USED_WORDS)}",
        )), 1)  # fmt: skip
    for _ in range(60):
        add(
            "neg_sports_ball",
            "legit",
            f"{c(BALLS)} {c(BALL_BRANDS)} {c(('original', 'size 5', 'bekas', 'baru', 'grosir per lusin', 'second'))}",
            1,
        )
    for _ in range(70):
        g = c(GARMENTS + FOOTWEAR_BAGS)
        add(
            "neg_personal_abroad",
            "legit",
            f"{g} {c(BRANDS)} {c(ABROAD_PERSONAL).format(o=c(ORIGINS))} {c(PERSONAL)}",
            1,
        )
    for _ in range(80):
        g = c(GARMENTS)
        add(
            "neg_style",
            "legit",
            c(
                (
                    f"{g} {c(STYLE)} {c(NEW_WORDS)}",
                    f"{g} {c(COLOURS)} {c(STYLE)}",
                    f"{c(STYLE)} {g} {c(SIZES)}",
                )
            ),
            1,
        )
    for _ in range(80):
        g = c(GARMENTS + FOOTWEAR_BAGS)
        add("neg_preloved_local", "legit", c((
            f"{c(('preloved', 'second', 'bekas'))} {g} {c(BRANDS + LOCAL_BRANDS)} {c(PERSONAL)}",
            f"{g} {c(('bekas', 'second', 'preloved'))} {c(SIZES)} {c(PERSONAL)}",
            f"{g} {c(LOCAL_BRANDS)} {c(('second', 'preloved'))} original",
        )), 1)  # fmt: skip
    for _ in range(50):
        g = c(GARMENTS)
        add(
            "neg_export_reject",
            "legit",
            f"{g} {c(EXPORT)} {c(('label lengkap', 'baru', 'grosir per kodi', 'original', ''))}",
            1,
        )
    for _ in range(60):
        g = c(GARMENTS + FOOTWEAR_BAGS)
        add("neg_new_import", "legit", f"{g} import {c(ORIGINS)} {c(NEW_WORDS)}", 1)
    for _ in range(70):
        g = c(GARMENTS + FOOTWEAR_BAGS)
        add("neg_ordinary", "legit", f"{g} {c(BRANDS + LOCAL_BRANDS)} {c(COLOURS)} {c(SIZES)}", 1)

    # (issue #15, second round) textiles and accessories, lots smaller than a bale, retail thrift, more
    # paraphrases, and their look-alikes; appended so the rows above keep their random draws
    def lot() -> str:
        return c(LOTS).format(n=c((5, 10, 15, 20, 30, 40, 50)), k=c((3, 5, 10, 20)))

    def retail() -> str:
        return c(RETAIL).format(
            s=c(("S", "M", "L", "XL")), ld=r.randint(46, 64), pj=r.randint(60, 78), c=r.randint(7, 9),
            p=c((15, 25, 35, 50, 75)),
        )  # fmt: skip

    for _ in range(90):
        t, o = c(TEXTILES), c(ORIGINS)
        add("pos_textile_accessory", "illegal", c((
            f"{t} {c(USED_WORDS)} {c(('import', 'impor', 'ex', 'eks'))} {o}", f"{c(BULK_USED)} {t} {o} {qty()}",
            f"{t} {c(PARAPHRASE + PARAPHRASE_MORE).format(o=o, port=c(PORTS))}", f"{t} thrift import {retail()}",
            f"{t} {c(USED_WORDS)} import {lot()}",
        )), 1)  # fmt: skip
    for _ in range(90):
        g, o = c(GARMENTS + FOOTWEAR_BAGS), c(ORIGINS)
        add("pos_kiloan_lots", "illegal", c((
            f"{lot()} {g} {c(USED_WORDS)} {o}", f"{g} {c(('thrift', 'second', 'bekas'))} import {lot()}",
            f"{lot()} {g} {c(('ex', 'eks'))} {o}", f"{g} {o} {c(('second', 'thrift', 'bekas'))} {lot()}",
        )), 1)  # fmt: skip
    for _ in range(90):
        g, o = c(GARMENTS + FOOTWEAR_BAGS), c(ORIGINS)
        add("pos_retail_thrift", "illegal", c((
            f"{g} {c(BRANDS)} thrift import {retail()}", f"{g} {c(BRANDS)} second import {retail()}",
            f"{g} bekas import {o} {retail()}", f"thrift {o} {g} {c(BRANDS)} {retail()}",
            f"{g} {c(('ex', 'eks'))} {o} {retail()}",
        )), 1)  # fmt: skip
    for _ in range(90):
        g, o = c(GARMENTS + FOOTWEAR_BAGS + TEXTILES), c(ORIGINS)
        add(
            "pos_paraphrase",
            "illegal",
            f"{g} {c(PARAPHRASE_MORE).format(o=o, port=c(PORTS))} {c(('', retail()))}",
            1,
        )
    for _ in range(60):
        t, o = c(TEXTILES), c(ORIGINS)
        add("neg_new_bulk", "legit", c((
            f"{t} baru grosir {c(NEW_BULK_UNITS).format(m=c((12, 20, 50, 100)), n=c((100, 200)))}",
            f"{t} import {o} {c(NEW_WORDS)}", f"{t} {c(NEW_WORDS)} {lot()}", f"{t} {c(NEW_BULK_CONTEXT)} {lot()}",
        )), 1)  # fmt: skip
    for _ in range(60):
        add(
            "neg_homonym",
            "legit",
            f"{c(HOMONYMS)} {c(('baru', 'murah', 'grosir', 'original', 'ready', ''))} {c(SIZES)}",
            1,
        )
    for _ in range(40):
        g, o = c(GARMENTS + FOOTWEAR_BAGS + TEXTILES), c(ORIGINS)
        add(
            "neg_personal_abroad",
            "legit",
            f"{g} {c(ABROAD_PERSONAL).format(o=o)} {c(PERSONAL)} {retail()}",
            1,
        )
    return rows


def split_key(title: str) -> str:
    return " ".join(re.sub(r"\d+", " ", title.lower()).split())


def is_heldout(title: str) -> bool:
    digest = hashlib.sha256(split_key(title).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < HELDOUT_SHARE


def written_rows() -> list[dict[str, str]]:
    rows = []
    for path in sorted(WRITTEN.glob("*.txt")):
        family = path.stem
        label = "illegal" if family.startswith("pos_") else "legit"
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            title, _, description = line.partition("|||")
            rows.append(
                {
                    "label": label,
                    "family": family,
                    "source": "written",
                    "title": _tidy(title),
                    "description": _tidy(description),
                }
            )
    return rows


def real_rows() -> list[dict[str, str]]:
    rows = []
    with (REAL / "news-titles.tsv").open(encoding="utf-8") as f:
        for rec in csv.DictReader(f, delimiter="\t"):
            label = {"illegal-import-candidate": "illegal", "legitimate": "legit"}.get(rec["label"])
            if label is None:  # "unclear": the source does not say
                continue
            rows.append(
                {
                    "label": label,
                    "family": "news",
                    "source": f"news:{rec['source_url']}",
                    "title": _tidy(rec["title"]),
                    "description": "",
                }
            )
    with (REAL / "kaos-search-titles.tsv").open(encoding="utf-8") as f:
        for rec in csv.DictReader(f, delimiter="\t"):
            rows.append(
                {
                    "label": "legit",
                    "family": "neg_real_listing",
                    "source": f"real-capture:{rec['platform']}-search-kaos",
                    "title": _tidy(rec["title"]),
                    "description": "",
                }
            )
    return rows


def build() -> list[dict[str, str]]:
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    for row in written_rows() + real_rows():
        key = (row["title"] + "\n" + row["description"]).lower()
        if key in seen:
            continue
        seen.add(key)
        row["split"] = "heldout" if is_heldout(row["title"]) else "train"
        out.append(row)
    for family, label, title, description in generate():
        key = title.lower() + "\n"
        if key in seen:
            continue
        seen.add(key)
        # generated rows go to training only: one whose split key falls in the held-out share is dropped,
        # so no generated near-copy of a held-out row is ever trained on
        if is_heldout(title):
            continue
        out.append(
            {
                "label": label,
                "family": family,
                "source": "generated",
                "title": title,
                "description": description,
                "split": "train",
            }
        )
    return out


def main() -> int:
    rows = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    cols = ("split", "label", "family", "source", "title", "description")
    with OUT.open("w", encoding="utf-8", newline="") as f:
        f.write("\t".join(cols) + "\n")
        for row in rows:
            f.write("\t".join(row[c].replace("\t", " ") for c in cols) + "\n")
    by: dict[tuple[str, str], int] = {}
    for row in rows:
        k = (row["split"], row["source"].split(":")[0])
        by[k] = by.get(k, 0) + 1
    print(
        f"wrote {len(rows)} rows to {OUT.relative_to(ROOT)}: "
        + ", ".join(f"{s}/{src} {n}" for (s, src), n in sorted(by.items()))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
