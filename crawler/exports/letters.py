"""Cover letters (Bahasa Indonesia) per platform: HTML from a Jinja2 template and a PDF from the same text.

:func:`letter_context` builds every sentence once (legal basis, item count, requested action, the
1×24-hour deadline, repeat-offender section, contact line); ``crawler/templates/letter_takedown.html.j2``
lays it out as HTML and :func:`write_pdf` lays out the same context with fpdf2, so the two never disagree.

The legal basis follows ``legal-and-practice.md``: UU 7/2014 Pasal 47(1) and 111; Permendag 18/2021 jo.
40/2022 Lampiran II HS 6309.00.00; PP 80/2019 Pasal 9(2), 22, 35 jo. 80; Permenkominfo 5/2020 Pasal 14.
Requests argue *import origin* (the reason the listing is illegal), not merely "used".

Fonts: the PDF embeds DejaVu Sans from :data:`DEJAVU_DIR` (Debian ``fonts-dejavu-core``) so every
character prints; without it, fpdf2's core Helvetica is used and text is transliterated to Latin-1.
Settings: the contact line comes from the ``contact`` argument (``tertib export --contact``), else the
``export_contact`` setting when present, else ``TERTIB_EXPORT_CONTACT``; the requesting unit likewise from
``unit`` / ``export_unit`` / ``TERTIB_EXPORT_UNIT``. To add a letter type, add a template
``letter_<kind>.html.j2`` and a context function.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from crawler.exports.common import human_local
from crawler.exports.offenders import OffenderGroup
from crawler.exports.rows import ExportRow
from crawler.registry import Registry

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
LETTER_MAX_ITEMS = 50  # links printed in the letter itself; the full list is in CSV/XLSX/JSON
LETTER_MAX_OFFENDERS = 50  # groups printed in the letter; all are in the XLSX sheet and the JSON files
DEADLINE_HOURS = 24

DEFAULT_UNIT = "Direktorat Jenderal Perlindungan Konsumen dan Tertib Niaga, Kementerian Perdagangan"
DEFAULT_CONTACT = (
    "Koreksi, keberatan atau konfirmasi penurunan dapat disampaikan kepada unit pengirim dengan menyebut "
    "nomor surat ini."
)

LEGAL_BASIS: tuple[str, ...] = (
    "Undang-Undang Nomor 7 Tahun 2014 tentang Perdagangan, Pasal 47 ayat (1): setiap importir wajib "
    "mengimpor barang dalam keadaan baru; Pasal 111: importir yang mengimpor barang dalam keadaan tidak baru "
    "dipidana penjara paling lama 5 (lima) tahun dan/atau pidana denda paling banyak Rp5.000.000.000,00.",
    "Peraturan Menteri Perdagangan Nomor 18 Tahun 2021 tentang Barang Dilarang Ekspor dan Barang Dilarang "
    "Impor sebagaimana telah diubah dengan Peraturan Menteri Perdagangan Nomor 40 Tahun 2022, Lampiran II: "
    'pos tarif HS 6309.00.00 "Pakaian bekas dan barang bekas lainnya" merupakan barang dilarang impor.',
    "Peraturan Pemerintah Nomor 80 Tahun 2019 tentang Perdagangan Melalui Sistem Elektronik, "
    "Pasal 9 ayat (2) (PMSE lintas negara wajib memenuhi ketentuan impor), Pasal 22 (penyelenggara wajib "
    "segera menghapus konten ilegal setelah mengetahuinya), Pasal 35 jo. Pasal 80 (iklan elektronik wajib "
    "sesuai ketentuan peraturan perundang-undangan).",
    "Peraturan Menteri Komunikasi dan Informatika Nomor 5 Tahun 2020 tentang Penyelenggara Sistem "
    "Elektronik Lingkup Privat, Pasal 14: pemutusan akses atas informasi elektronik yang dilarang paling "
    "lambat 1×24 (satu kali dua puluh empat) jam sejak permintaan diterima.",
)


@dataclass(slots=True)
class Letter:
    number: str
    batch: str
    batch_name: str
    platform: str
    date: str
    unit: str
    recipient: str
    subject: str
    attachments: str
    count: int
    opening: list[str]
    legal_basis: list[str]
    actions: list[str]
    deadline: str
    list_note: str
    items: list[dict[str, Any]]
    offenders: list[dict[str, Any]]
    offender_note: str
    contact: str
    closing: list[str] = field(default_factory=list)


def _count_words(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def letter_context(
    *,
    batch_number: str,
    batch_name: str,
    platform: str,
    registry: Registry,
    rows: list[ExportRow],
    offenders: list[OffenderGroup],
    created_at: datetime,
    tz: ZoneInfo,
    unit: str,
    contact: str,
    bundle_name: str | None,
    rerequest: bool = False,
) -> Letter:
    profile = registry.get(platform)  # an unregistered platform has no addressee: refuse, never guess
    name = profile.display_name
    n = len(rows)
    deadline_at = created_at + timedelta(hours=DEADLINE_HOURS)
    attachments = f"daftar tautan ({batch_number}-{platform}.csv, .xlsx, .json)"
    attachments += f", paket bukti elektronik ({bundle_name})" if bundle_name else ""
    again = (
        " Tautan-tautan ini telah dimintakan penurunan sebelumnya namun pada pemeriksaan ulang masih aktif."
        if rerequest
        else ""
    )
    opening = [
        f"Dalam rangka pengawasan perdagangan melalui sistem elektronik, kami menemukan {_count_words(n)} "
        f"({'satu' if n == 1 else 'sejumlah'}) tautan penjualan di {name} yang menawarkan pakaian bekas "
        "asal impor (pos tarif HS 6309.00.00), antara lain dalam bentuk bal/karungan, dengan keterangan asal "
        f"luar negeri.{again}",
        "Setiap tautan telah direkam sebagai bukti elektronik (arsip WARC dan tangkapan layar dengan nilai "
        "SHA-256) dan diperiksa serta disetujui oleh petugas peninjau yang namanya tercantum pada lampiran.",
    ]
    actions = [
        f"Menurunkan (takedown) {_count_words(n)} tautan dalam lampiran dari {name}.",
        "Menyimpan (preservasi) data penjual dan transaksi terkait untuk keperluan penegakan hukum.",
        "Menyampaikan konfirmasi penurunan per tautan kepada unit pengirim.",
    ]
    if offenders:
        actions.append(
            "Mengambil tindakan tingkat akun (peringatan akhir, pembatasan atau penutupan akun) terhadap "
            "penjual berulang pada bagian rekomendasi di bawah."
        )
    items = [
        {
            "no": row.no,
            "url": row.listing_url,
            "seller": f"{row.seller_name} ({row.seller_id})" if row.seller_id else row.seller_name,
            "signals": row.matched_signals,
            "captured": human_local(row.captured_at, tz),
        }
        for row in rows[:LETTER_MAX_ITEMS]
    ]
    list_note = (
        f"Daftar lengkap {_count_words(n)} tautan terdapat pada lampiran CSV/XLSX/JSON."
        if n > LETTER_MAX_ITEMS
        else "Daftar yang sama terdapat pada lampiran CSV/XLSX/JSON beserta nilai SHA-256 buktinya."
    )
    offender_rows = [
        {
            "accounts": [
                f"{registry.display_name(a.platform)}: {a.name or '-'} ({a.seller_id}), {a.confirmed} tautan"
                for a in group.accounts
            ],
            "total": group.total,
            "shared": ", ".join(group.shared_handles) or "-",
        }
        for group in offenders[:LETTER_MAX_OFFENDERS]
    ]
    return Letter(
        number=f"{batch_number}/{platform.upper()}",
        batch=batch_number,
        batch_name=batch_name,
        platform=platform,
        date=human_local(created_at, tz),
        unit=unit,
        recipient=profile.operator,
        subject="Permintaan penurunan (takedown) tautan penjualan pakaian bekas impor (HS 6309.00.00)",
        attachments=attachments,
        count=n,
        opening=opening,
        legal_basis=list(LEGAL_BASIS),
        actions=actions,
        deadline=(
            "paling lambat 1×24 jam sejak surat ini diterima (apabila diterima pada tanggal surat: "
            f"{human_local(deadline_at, tz)})."
        ),
        list_note=list_note,
        items=items,
        offenders=offender_rows,
        offender_note=(
            "Penjual berikut memiliki 3 (tiga) atau lebih tautan terkonfirmasi pada batch ini dan batch "
            "sebelumnya. Akun yang terhubung melalui kontak yang sama di platform lain ditampilkan bersama."
            + (
                f" Ditampilkan {LETTER_MAX_OFFENDERS} dari {len(offenders)} grup; daftar lengkap pada "
                "lampiran XLSX/JSON."
                if len(offenders) > LETTER_MAX_OFFENDERS
                else ""
            )
        ),
        contact=contact,
        closing=[
            "Atas perhatian dan kerja samanya kami ucapkan terima kasih.",
        ],
    )


def render_html(letter: Letter) -> str:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("letter_takedown.html.j2").render(letter=letter)


def write_html(path: Path, letter: Letter) -> Path:
    path.write_text(render_html(letter), encoding="utf-8")
    return path


def _latin1(text: str) -> str:
    text = text.replace("×", "x").replace("«", '"').replace("»", '"').replace("…", "...")
    text = text.replace("–", "-").replace("—", "-")
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("latin-1", "ignore").decode("latin-1")


def pdf_font_mode() -> str:
    """``dejavu`` when the DejaVu fonts are installed, else ``core`` (Helvetica, transliterated)."""
    return "dejavu" if (DEJAVU_DIR / "DejaVuSans.ttf").is_file() else "core"


def write_pdf(path: Path, letter: Letter, created_at: datetime) -> Path:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creation_date(created_at)
    pdf.set_title(f"{letter.subject} - {letter.number}")
    pdf.set_author(letter.unit)
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=18)
    if pdf_font_mode() == "dejavu":
        pdf.add_font("DejaVu", "", str(DEJAVU_DIR / "DejaVuSans.ttf"))
        pdf.add_font("DejaVu", "B", str(DEJAVU_DIR / "DejaVuSans-Bold.ttf"))
        family, clean = "DejaVu", (lambda s: s)
    else:
        log.warning("DejaVu fonts not found in %s; PDF uses Helvetica with transliteration", DEJAVU_DIR)
        family, clean = "Helvetica", _latin1
    pdf.add_page()

    def para(text: str, size: float = 10, style: str = "", gap: float = 2) -> None:
        # fpdf2's line breaker measures the growing line once per character (quadratic in the line
        # length, about 40 ms a paragraph); a line that fits is printed as one cell — the same place and
        # left alignment multi_cell gives a last line — and only longer lines are broken (justified).
        pdf.set_font(family, style, size)
        width = pdf.w - pdf.l_margin - pdf.r_margin - 2 * pdf.c_margin
        for line in clean(text).split("\n"):
            if pdf.get_string_width(line) <= width:
                pdf.cell(0, size * 0.5, line, new_x="LMARGIN", new_y="NEXT")
            else:
                pdf.multi_cell(0, size * 0.5, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    def fit(text: str) -> str:
        """``text`` on one line (captured titles and signals may hold line breaks), cut with an ellipsis to
        the line width at the current font."""
        text = re.sub(r"[ \t]*[\r\n]+[ \t]*", " ", text)
        width = pdf.w - pdf.l_margin - pdf.r_margin - 1
        if pdf.get_string_width(text) <= width:
            return text
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if pdf.get_string_width(text[:mid] + "...") <= width:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo] + "..."

    def heading(text: str) -> None:
        pdf.ln(1)
        para(text, 11, "B", 1)

    para(letter.unit, 11, "B", 3)
    for label, value in (
        ("Nomor", letter.number),
        ("Tanggal", letter.date),
        ("Sifat", "Segera"),
        ("Lampiran", letter.attachments),
        ("Perihal", letter.subject),
    ):
        para(f"{label:<9}: {value}", 10, "", 0.5)
    pdf.ln(3)
    para(f"Kepada Yth.\n{letter.recipient}\ndi tempat")
    for paragraph in letter.opening:
        para(paragraph)
    heading("Dasar hukum")
    for index, item in enumerate(letter.legal_basis, start=1):
        para(f"{index}. {item}", 9.5, "", 1)
    heading("Tindakan yang diminta")
    for index, item in enumerate(letter.actions, start=1):
        para(f"{index}. {item}", 10, "", 1)
    para(f"Batas waktu: {letter.deadline}", 10, "B")
    heading(f"Daftar tautan ({letter.count} tautan)")
    para(letter.list_note, 9)
    # One clipped line per link (clickable) and one for its facts: multi_cell would break long URLs
    # character by character, which costs seconds per letter.
    for link in letter.items:
        pdf.set_font(family, "", 8.5)
        pdf.cell(
            0,
            4.5,
            fit(clean(f"{link['no']}. {link['url']}")),
            link=link["url"],
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.set_font(family, "", 7.5)
        facts = f"     {link['seller']} | {link['signals']} | {link['captured']}"
        pdf.cell(0, 4, fit(clean(facts)), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(0.8)
    if letter.offenders:
        heading("Rekomendasi tindakan tingkat akun (pelanggar berulang)")
        para(letter.offender_note, 9.5)
        for index, offender in enumerate(letter.offenders, start=1):
            accounts = "\n    ".join(offender["accounts"])
            para(
                f"Grup {index} ({offender['total']} tautan terkonfirmasi; "
                f"kontak bersama: {offender['shared']})"
                f"\n    {accounts}",
                9,
                "",
                1,
            )
    heading("Koreksi dan keberatan")
    para(letter.contact)
    for paragraph in letter.closing:
        para(paragraph)
    para(f"Hormat kami,\n{letter.unit}", 10, "", 4)
    para(
        "Integritas lampiran: setiap berkas tercantum dengan SHA-256 dalam manifest.json yang ditandatangani "
        f"(Ed25519, manifest.sig); kunci publik: tertib-signing.pub. Batch {letter.batch} "
        f"«{letter.batch_name}».",
        8,
    )
    pdf.output(str(path))
    return path
