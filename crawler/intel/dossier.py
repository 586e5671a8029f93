"""The referral dossier: one network for the police (Bareskrim) or customs (Bea Cukai), in Bahasa Indonesia.

Distinct from the platform takedown letter (``crawler.exports.letters``): it asks nobody to remove links; it
sets out who is behind the accounts, why they are one network, how much they sell and on what legal basis
the import is an offence. Steps, numbered the same in :func:`write_dossier`:

1. **Facts**: the network (:mod:`crawler.intel.networks`), each listing's URL, latest evidence capture
   (id, SHA-256 of the WARC record range, screenshot SHA-256) and sold history; a timeline.
2. **Files** in a temporary directory beside ``out``: ``dossier.pdf`` (fpdf2, DejaVu fonts as the letters
   use: summary, legal basis, accounts, the link graph drawn and every link with why it exists, volume with
   its basis, wholesale signals, timeline, evidence list), ``dossier.xlsx`` (the same tables, one sheet
   each), ``network.json`` (``tertib intel networks --json`` for this network) and the public key.
3. **Manifest**: every file's SHA-256 and the custody head (``custody_anchor``), signed with the
   installation's Ed25519 key (``manifest.sig``) — the batch manifest format
   (``crawler.exports.manifest``), so ``tertib export verify DIR`` checks a dossier too.
4. **Custody**: an ``intel_dossier`` entry (action ``dossier``) whose digest is the manifest's SHA-256 and
   whose details name the directory; ``tertib evidence verify --all`` re-checks every dossier it lists.
   The directory gets its final name only when the entry is committed.

Seller text (names, titles, handles, URLs) is hostile: the PDF prints it as text (links only for web URLs,
``crawler.hostile.safe_url``), the XLSX writes it as text with formula starts neutralised
(``crawler.hostile.spreadsheet_text``).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.config import Settings
from crawler.errors import TertibError
from crawler.evidence.signing import PUBLIC_NAME, public_key_pem, sign
from crawler.exports.common import human_local, sha256_file, zone
from crawler.exports.letters import DEFAULT_UNIT, LEGAL_BASIS, pdf_fonts
from crawler.exports.manifest import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    SIGNATURE_NAME,
    file_entries,
    manifest_bytes,
)
from crawler.hostile import safe_url, spreadsheet_text
from crawler.intel.networks import Network
from storage import custody
from storage.db import Database
from storage.models import Capture, Listing, Sighting, TakedownBatch, TakedownItem
from storage.repositories import now as repo_now

DEFAULT_RECIPIENT = (
    "Badan Reserse Kriminal Kepolisian Negara Republik Indonesia (Bareskrim Polri) dan "
    "Direktorat Jenderal Bea dan Cukai, Kementerian Keuangan"
)
# the import offence only: the takedown letter's platform duties (PP 80/2019, Permenkominfo 5/2020) do not
# apply to a referral about the people behind the accounts
DOSSIER_LEGAL_BASIS = LEGAL_BASIS[:2]
LINK_LABELS = {
    "handle": "kontak yang sama",
    "relist": "listing yang diunggah ulang",
    "name": "nama toko nyaris identik",
    "image": "foto produk yang sama",
    "city": "kota pengiriman yang sama (pendukung)",
    "supply": "memasok (foto dipakai ulang oleh akun lain)",
}
SIGNAL_LABELS = {
    "bulk_units": "dijual per bal/karung/kilo",
    "piece_count": "jumlah potong per satuan",
    "wording": "kata grosir (partai besar, reseller, paket usaha)",
    "restocks": "stok diisi ulang antar-pengamatan",
    "supplies": "memasok akun lain",
}
VOLUME_BASIS_ID = (
    "jumlah angka terjual yang kini ditampilkan tiap listing: angka tepat apa adanya, angka yang dibulatkan "
    "(mis. '1,2 rb') di tengah rentangnya, angka berbentuk '100+' pada batas bawahnya; "
    "nilai rupiah dengan harga terakhir tiap listing"
)
PRECISION_LABELS = {"exact": "tepat", "rounded": "dibulatkan", "at_least": "batas bawah", None: "-"}


class DossierError(TertibError):
    """The dossier cannot be written (target exists, not writable …)."""


@dataclass(frozen=True)
class DossierResult:
    number: str
    out_dir: Path
    files: list[str]
    manifest_sha256: str


def _evidence(session: Session, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The latest observable capture per listing key: id, WARC range SHA-256, screenshot SHA-256, time."""
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for cap in session.execute(
            select(
                Capture.id,
                Capture.listing_key,
                Capture.warc_sha256,
                Capture.screenshot_sha256,
                Capture.captured_at,
            )
            .where(Capture.listing_key.in_(chunk), Capture.observable.is_(True))
            .order_by(Capture.captured_at, Capture.id)
        ):
            out[str(cap.listing_key)] = {
                "capture_id": cap.id,
                "warc_sha256": cap.warc_sha256 or "",
                "screenshot_sha256": cap.screenshot_sha256 or "",
                "captured_at": cap.captured_at,
            }
    return out


def _listings(session: Session, net: Network) -> list[dict[str, Any]]:
    ids = [x.id for x in net.listings]
    rows: dict[int, Any] = {}
    for start in range(0, len(ids), 500):
        for row in session.execute(
            select(
                Listing.id,
                Listing.listing_key,
                Listing.url,
                Listing.title,
                Listing.verdict,
                Listing.last_status,
                Listing.first_seen,
                Listing.last_seen,
            ).where(Listing.id.in_(ids[start : start + 500]))
        ):
            rows[row.id] = row
    evidence = _evidence(session, [r.listing_key for r in rows.values()])
    out = []
    for item in net.listings:
        found = rows.get(item.id)
        if found is None:
            continue
        row = found
        out.append(
            {
                "key": item.key,
                "url": row.url,
                "title": row.title,
                "verdict": row.verdict,
                "status": row.last_status,
                "first_seen": row.first_seen,
                "last_seen": row.last_seen,
                "sold_low": item.low,
                "sold_high": item.upper,
                "precision": item.precision,
                "estimate": item.estimate,
                "price": item.price,
                "stock": item.stock,
                "restocks": item.restocks,
                "unit": item.unit_kind,
                "pieces": item.unit_pieces,
                "kg": item.unit_kg,
                "sightings": item.sightings,
                "evidence": evidence.get(item.key),
            }
        )
    out.sort(key=lambda r: (-r["estimate"], r["key"]))
    return out


def _timeline(session: Session, net: Network, listings: list[dict[str, Any]]) -> list[tuple[datetime, str]]:
    events: list[tuple[datetime, str]] = []
    for acc in net.accounts:
        events.append((acc.first_seen, f"akun {acc.key} ({acc.name}) pertama terlihat"))
    for row in listings:
        events.append((row["first_seen"], f"listing {row['key']} pertama terlihat"))
    ids = [x.id for x in net.listings]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for key, seen, low, high in session.execute(
            select(Listing.listing_key, Sighting.seen_at, Sighting.sold_low, Sighting.sold_high)
            .join(Listing, Listing.id == Sighting.listing_id)
            .where(Sighting.listing_id.in_(chunk), Sighting.sold_low.is_not(None))
            .order_by(Sighting.seen_at)
        ):
            shown = f"{low:,}" if high == low else (f"≥ {low:,}" if high is None else f"{low:,}–{high:,}")
            events.append((seen, f"{key}: terjual {shown}"))
        for key, number, created in session.execute(
            select(Listing.listing_key, TakedownBatch.number, TakedownBatch.created_at)
            .join(TakedownItem, TakedownItem.listing_id == Listing.id)
            .join(TakedownBatch, TakedownBatch.id == TakedownItem.batch_id)
            .where(Listing.id.in_(chunk))
        ):
            events.append((created, f"{key} dimohonkan penurunan (batch {number})"))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


# -- PDF ------------------------------------------------------------------------------------------


def _graph(pdf: Any, net: Network, family: str, clean: Any, top: float) -> float:
    """The link graph: accounts on a circle, one line per link kind between two accounts."""
    accounts = [a.key for a in net.accounts][:24]
    n = len(accounts)
    r = 14.0 if n == 2 else min(38.0, 12.0 + 3.0 * n)
    if top + 2 * r + 30 > pdf.h - pdf.b_margin:  # the drawing never straddles a page
        pdf.add_page()
        top = pdf.get_y()
    pdf.set_auto_page_break(False)
    cx, cy = pdf.w / 2, top + r + 6
    pos = {}
    for i, key in enumerate(accounts):
        angle = 2 * math.pi * i / n + (math.pi if n == 2 else -math.pi / 2)
        pos[key] = (cx + r * math.cos(angle), cy + r * math.sin(angle))
    colours = {
        "handle": (200, 30, 30),
        "relist": (150, 60, 160),
        "name": (30, 90, 200),
        "image": (20, 140, 70),
        "city": (150, 150, 150),
    }
    for link in net.links:
        if link.a in pos and link.b in pos:
            pdf.set_draw_color(*colours.get(link.kind, (0, 0, 0)))
            pdf.set_line_width(0.6 if link.kind != "city" else 0.2)
            (x1, y1), (x2, y2) = pos[link.a], pos[link.b]
            pdf.line(x1, y1, x2, y2)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_font(family, "", 6.5)
    for key, (x, y) in pos.items():
        pdf.set_fill_color(255, 255, 255)
        pdf.circle(x=x, y=y, radius=1.8, style="DF")
        label = clean(key if len(key) <= 34 else key[:33] + "…")
        pdf.set_xy(x - 25, y + 2)
        pdf.cell(50, 3, label, align="C")
    bottom = cy + r + 8
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_xy(pdf.l_margin, bottom)
    pdf.set_font(family, "", 7.5)
    legend = "  ".join(f"{kind}: {LINK_LABELS[kind]}" for kind in colours)
    pdf.multi_cell(0, 3.5, clean("Garis — " + legend), new_x="LMARGIN", new_y="NEXT")
    if len(net.accounts) > len(accounts):
        pdf.cell(
            0,
            4,
            clean(f"(gambar memuat {len(accounts)} dari {len(net.accounts)} akun)"),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    return float(pdf.get_y())


def _write_pdf(path: Path, ctx: dict[str, Any], net: Network, created_at: datetime) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creation_date(created_at)
    pdf.set_title(f"Dossier rujukan jaringan {net.id}")
    pdf.set_author(ctx["unit"])
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, margin=16)
    family, clean = pdf_fonts(pdf)
    pdf.add_page()

    def one_line(text: str) -> str:
        text = re.sub(r"[\x00-\x1f\x7f]+", " ", str(text))
        width = pdf.w - pdf.l_margin - pdf.r_margin - 1
        if pdf.get_string_width(clean(text)) <= width:
            return clean(text)
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if pdf.get_string_width(clean(text[:mid] + "...")) <= width:
                lo = mid
            else:
                hi = mid - 1
        return clean(text[:lo] + "...")

    def para(text: str, size: float = 9.5, style: str = "", gap: float = 1.5) -> None:
        pdf.set_font(family, style, size)
        for line in clean(re.sub(r"[\x00-\x09\x0b-\x1f\x7f]", " ", text)).split("\n"):
            pdf.multi_cell(0, size * 0.48, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    def heading(text: str) -> None:
        pdf.ln(1.5)
        para(text, 11, "B", 1)

    def line(text: str, size: float = 8, link: str | None = None) -> None:
        pdf.set_font(family, "", size)
        pdf.cell(0, size * 0.5, one_line(text), link=safe_url(link) or "", new_x="LMARGIN", new_y="NEXT")

    para(ctx["unit"], 11, "B", 2)
    para("DOSSIER RUJUKAN — JARINGAN PENJUAL PAKAIAN BEKAS IMPOR", 13, "B", 1)
    for label, value in (
        ("Nomor", ctx["number"]),
        ("Tanggal", ctx["date"]),
        ("Kepada", ctx["recipient"]),
        ("Jaringan", f"{net.id} (peringkat {net.rank})"),
        ("Sifat", "Rahasia — untuk penyelidikan"),
    ):
        para(f"{label:<9}: {value}", 9.5, "", 0.3)
    heading("Ringkasan")
    for text in ctx["summary"]:
        para(text)
    heading("Dasar hukum")
    for i, item in enumerate(DOSSIER_LEGAL_BASIS, start=1):
        para(f"{i}. {item}", 9)
    para(
        "Dossier ini berbeda dari surat permintaan penurunan konten kepada platform: isinya bukan permintaan "
        "penghapusan tautan, melainkan keterangan tentang pihak di balik akun-akun tersebut sebagai bahan "
        "penyelidikan impor pakaian bekas (HS 6309.00.00).",
        8.5,
    )
    heading(f"Akun ({len(net.accounts)})")
    for acc in net.accounts:
        line(
            f"{acc.key} — {acc.name or '(tanpa nama)'} — {acc.city or 'kota tidak diketahui'}",
            8.5,
            acc.shop_url,
        )
        handles = ", ".join(sorted(acc.handles)) or "tidak ada kontak tercantum"
        line(
            f"     kontak: {handles}; listing: {len(acc.listings)}; "
            f"pelanggaran terkonfirmasi: {acc.confirmed}; "
            f"terlihat {human_local(acc.first_seen, ctx['tz'])} s.d. {human_local(acc.last_seen, ctx['tz'])}",
            7.5,
        )
    heading("Grafik keterkaitan")
    if len(net.accounts) > 1:
        y = _graph(pdf, net, family, clean, pdf.get_y())
        pdf.set_y(y + 2)
    else:
        para("Jaringan satu akun: tidak ada keterkaitan dengan akun lain yang ditemukan.", 9)
    heading(f"Mengapa akun-akun ini satu jaringan ({len(net.links)} keterkaitan)")
    if not net.links:
        para("Tidak ada — jaringan ini terdiri dari satu akun.", 9)
    for link in net.links[:200]:
        line(
            f"{link.a} ↔ {link.b}: {LINK_LABELS.get(link.kind, link.kind)} — {_evidence_text(link.evidence)}",
            7.5,
        )
    if len(net.links) > 200:
        line(f"(+{len(net.links) - 200} keterkaitan lain di dossier.xlsx, lembar Keterkaitan)", 7.5)
    if net.supplies or net.supplied_by:
        heading("Hubungan pasokan (foto yang sama pada akun di luar jaringan)")
        for link in (net.supplies + net.supplied_by)[:60]:
            line(f"{link.a} → {link.b}: {_evidence_text(link.evidence)}", 7.5)
    heading("Volume penjualan (perkiraan)")
    for text in ctx["volume"]:
        para(text, 9)
    heading("Sinyal grosir")
    for s in net.wholesale["signals"]:
        para(
            f"• {SIGNAL_LABELS.get(s['kind'], s['kind'])}: {s['value']:.2f} "
            f"(bobot {s['weight']:.2f}) — {signal_text(s)}",
            8.5,
            "",
            0.5,
        )
    para(
        f"Skor grosir {net.wholesale['score']:.2f}; "
        f"peran: {'grosir/distributor' if net.role == 'wholesale' else 'eceran'}. "
        f"Peringkat {net.rank}: {explanation_text(net)}",
        8.5,
    )
    heading("Linimasa")
    for when, text in ctx["timeline"][:120]:
        line(f"{human_local(when, ctx['tz'])}  {text}", 7.5)
    if len(ctx["timeline"]) > 120:
        line(f"(+{len(ctx['timeline']) - 120} peristiwa lain di dossier.xlsx, lembar Linimasa)", 7.5)
    heading(f"Listing dan bukti ({len(ctx['listings'])})")
    para(
        "Bukti: nomor capture tertib dan SHA-256 rekaman WARC serta tangkapan layar; "
        "dapat diverifikasi dengan "
        "`tertib evidence verify --capture ID`.",
        8,
    )
    for row in ctx["listings"][:150]:
        line(f"{row['key']} — {row['title']}", 8, row["url"])
        ev = row["evidence"]
        ev_text = f"capture {ev['capture_id']}" if ev else "belum ada capture"
        line(f"     terjual {_sold_text(row)}; harga {_rupiah(row['price'])}; {ev_text}", 7)
        if ev:
            line(f"     WARC sha256 {ev['warc_sha256']}", 6.5)
            if ev["screenshot_sha256"]:
                line(f"     tangkapan layar sha256 {ev['screenshot_sha256']}", 6.5)
    if len(ctx["listings"]) > 150:
        line(f"(+{len(ctx['listings']) - 150} listing lain di dossier.xlsx, lembar Listing)", 7.5)
    pdf.ln(3)
    para(
        "Integritas: setiap berkas dossier tercantum dengan SHA-256 dalam manifest.json yang ditandatangani "
        "(Ed25519, manifest.sig); kunci publik: tertib-signing.pub. Pembuatan dossier dicatat dalam log "
        "lacak-balak (chain of custody) tertib.",
        7.5,
    )
    pdf.output(str(path))


def signal_text(signal: dict[str, Any]) -> str:
    """A wholesale signal's evidence in Bahasa Indonesia (``networks`` keeps the numbers)."""
    kind, count = signal["kind"], signal.get("count", 0)
    if kind == "bulk_units":
        return f"{count} dari {signal.get('of', 0)} listing dijual per bal, karung atau kilo"
    if kind == "piece_count":
        pieces = signal.get("pieces") or 0
        return f"satuan terbesar berisi {pieces} potong" if pieces else "jumlah potong tidak tertera"
    if kind == "wording":
        example = signal.get("example")
        return f"{count} listing memakai kata grosir" + (f" (mis. «{example}»)" if example else "")
    if kind == "restocks":
        return f"stok diisi ulang {signal.get('restocks', 0)} kali pada {count} listing"
    if kind == "supplies":
        return f"fotonya dipakai ulang kemudian oleh {count} akun lain"
    return str(signal.get("evidence", ""))


def explanation_text(net: Network) -> str:
    """Why the network ranks where it does, in Bahasa Indonesia."""
    v, score = net.volume, net.wholesale["score"]
    upper = "tidak diketahui" if v["units_high"] is None else f"{v['units_high']:,}"
    return (
        f"perkiraan {v['units']:,.0f} unit terjual (batas bawah {v['units_low']:,}, batas atas {upper}) pada "
        f"{v['listings_with_sold']} listing yang menampilkan angka terjual; skor grosir {score:.2f}; "
        f"skor peringkat = unit × (0,25 + 0,75 × {score:.2f}) = {net.rank_score:,.0f}"
    )


def _evidence_text(evidence: dict[str, Any]) -> str:
    parts = []
    for key, value in evidence.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


def _sold_text(row: dict[str, Any]) -> str:
    low, high = row["sold_low"], row["sold_high"]
    if low is None:
        return "tidak ditampilkan platform"
    if high is None:
        return f"≥ {low:,} ({PRECISION_LABELS.get(row['precision'], '-')})"
    if high == low:
        return f"{low:,}"
    return f"{low:,}–{high:,} ({PRECISION_LABELS.get(row['precision'], '-')})"


def _rupiah(value: float | int | None) -> str:
    if value is None:
        return "-"
    return "Rp" + f"{round(value):,}".replace(",", ".")


# -- XLSX -----------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        return spreadsheet_text(re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", value))[:32_767]
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return value


def _write_xlsx(path: Path, ctx: dict[str, Any], net: Network) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()

    def sheet(title: str, header: list[str], rows: list[list[Any]], first: bool = False) -> None:
        ws = wb.active if first else wb.create_sheet(title)
        assert ws is not None
        ws.title = title
        ws.append(header)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append([_cell(v) for v in row])
        ws.freeze_panes = "A2"
        for i, _h in enumerate(header):
            ws.column_dimensions[chr(ord("A") + i)].width = 22 if i else 28

    v = net.volume
    sheet(
        "Ringkasan",
        ["butir", "nilai"],
        [
            ["nomor", ctx["number"]],
            ["jaringan", net.id],
            ["peringkat", net.rank],
            ["peran", net.role],
            ["akun", len(net.accounts)],
            ["platform", ", ".join(net.summary()["platforms"])],
            ["kota", ", ".join(net.summary()["cities"])],
            ["listing", len(ctx["listings"])],
            ["pelanggaran terkonfirmasi", net.summary()["confirmed_violations"]],
            ["unit terjual (perkiraan)", v["units"]],
            ["unit terjual (batas bawah)", v["units_low"]],
            [
                "unit terjual (batas atas)",
                v["units_high"] if v["units_high"] is not None else "tidak terbatas (ada angka '+')",
            ],
            ["nilai penjualan Rp (perkiraan)", v["rupiah"]],
            ["listing tanpa angka terjual", v["listings_without_sold"]],
            ["dasar perkiraan", VOLUME_BASIS_ID],
            ["skor grosir", net.wholesale["score"]],
            ["penjelasan peringkat", explanation_text(net)],
            *[["dasar hukum", item] for item in DOSSIER_LEGAL_BASIS],
        ],
        first=True,
    )
    sheet(
        "Akun",
        [
            "akun",
            "nama",
            "kota",
            "kontak",
            "listing",
            "terkonfirmasi",
            "pertama terlihat",
            "terakhir terlihat",
            "url toko",
        ],
        [
            [
                a.key,
                a.name,
                a.city,
                ", ".join(sorted(a.handles)),
                len(a.listings),
                a.confirmed,
                a.first_seen,
                a.last_seen,
                a.shop_url,
            ]
            for a in net.accounts
        ],
    )
    sheet(
        "Keterkaitan",
        ["akun A", "akun B", "jenis", "keterangan", "bukti"],
        [
            [
                lk.a,
                lk.b,
                lk.kind,
                LINK_LABELS.get(lk.kind, lk.kind),
                json.dumps(lk.evidence, ensure_ascii=False),
            ]
            for lk in [*net.links, *net.supplies, *net.supplied_by]
        ],
    )
    sheet(
        "Listing",
        [
            "listing",
            "judul",
            "url",
            "terjual min",
            "terjual maks",
            "presisi",
            "perkiraan",
            "harga",
            "stok",
            "isi ulang stok",
            "satuan",
            "potong/satuan",
            "kg/satuan",
            "pengamatan",
            "verdict",
            "status",
            "capture",
            "WARC sha256",
            "screenshot sha256",
        ],
        [
            [
                r["key"],
                r["title"],
                r["url"],
                r["sold_low"],
                r["sold_high"],
                r["precision"],
                r["estimate"],
                r["price"],
                r["stock"],
                r["restocks"],
                r["unit"],
                r["pieces"],
                r["kg"],
                r["sightings"],
                r["verdict"],
                r["status"],
                (r["evidence"] or {}).get("capture_id"),
                (r["evidence"] or {}).get("warc_sha256"),
                (r["evidence"] or {}).get("screenshot_sha256"),
            ]
            for r in ctx["listings"]
        ],
    )
    sheet(
        "Sinyal",
        ["sinyal", "nilai", "bobot", "bukti"],
        [
            [SIGNAL_LABELS.get(s["kind"], s["kind"]), s["value"], s["weight"], signal_text(s)]
            for s in net.wholesale["signals"]
        ],
    )
    sheet("Linimasa", ["waktu (UTC)", "peristiwa"], [[when, text] for when, text in ctx["timeline"]])
    wb.save(path)


# -- the whole dossier ----------------------------------------------------------------------------


def _context(
    session: Session,
    settings: Settings,
    net: Network,
    created_at: datetime,
    unit: str | None,
    recipient: str | None,
) -> dict[str, Any]:
    tz = zone(settings.timezone)
    s = net.summary()
    v = net.volume
    listings = _listings(session, net)
    number = f"DOS-{created_at:%Y%m%d-%H%M%S}-{net.id.removeprefix('NET-')}"
    role = "grosir/distributor" if net.role == "wholesale" else "pengecer"
    first = human_local(datetime.fromisoformat(s["first_seen"]), tz) if s["first_seen"] else "-"
    last = human_local(datetime.fromisoformat(s["last_seen"]), tz) if s["last_seen"] else "-"
    upper = (
        "tidak diketahui (sebagian angka berbentuk '100+')"
        if v["units_high"] is None
        else f"{v['units_high']:,}"
    )
    summary = [
        f"Jaringan {net.id} terdiri dari {s['size']} akun di {len(s['platforms'])} platform "
        f"({', '.join(s['platforms'])}), kota: {', '.join(s['cities']) or 'tidak diketahui'}; "
        f"terlihat sejak {first} sampai {last}.",
        f"{s['listings']} listing terkait, {s['confirmed_violations']} pelanggaran terkonfirmasi "
        "(disetujui peninjau dan telah dimohonkan penurunan). "
        f"Perkiraan peran: {role} (skor grosir {net.wholesale['score']:.2f}).",
        f"Perkiraan penjualan: {v['units']:,.0f} unit (batas bawah {v['units_low']:,}; batas atas {upper}), "
        f"senilai sekitar {_rupiah(v['rupiah'])}.",
    ]
    window = (
        " s.d. ".join(human_local(datetime.fromisoformat(t), tz) for t in v["window"]) if v["window"] else "-"
    )
    volume = [
        f"Dasar: {VOLUME_BASIS_ID}.",
        f"Listing dengan angka terjual: {v['listings_with_sold']}; "
        "tanpa angka terjual (platform tidak menampilkannya, "
        f"mis. Facebook/Instagram): {v['listings_without_sold']}. Presisi: "
        + ", ".join(f"{PRECISION_LABELS.get(k, k)} {n}" for k, n in sorted(v["precision"].items()))
        + ".",
        f"Terjual selama masa pengamatan ({window}): sekitar "
        f"{v['window_units']:,.0f} unit. Perkiraan jumlah potong: {v['pieces']:,.0f} "
        "(satuan × isi per satuan bila "
        "tertera).",
    ]
    return {
        "number": number,
        "date": human_local(created_at, tz),
        "tz": tz,
        "unit": unit or DEFAULT_UNIT,
        "recipient": recipient or DEFAULT_RECIPIENT,
        "summary": summary,
        "volume": volume,
        "listings": listings,
        "timeline": _timeline(session, net, listings),
    }


def write_dossier(
    db: Database,
    settings: Settings,
    net: Network,
    *,
    out: Path,
    actor: str | None = None,
    unit: str | None = None,
    recipient: str | None = None,
    now: datetime | None = None,
) -> DossierResult:
    """Steps 1–4: ``out/<number>/`` with the PDF, XLSX, JSON, public key, signed manifest; custody-logged."""
    created_at = now or repo_now()
    actor = actor or settings.actor_name()
    sign(settings.keys_dir, b"")  # fail early (one line) when the signing key is missing
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DossierError(f"cannot create {out}: {exc.strerror}") from None
    with db.session() as session:
        # 1. facts
        ctx = _context(session, settings, net, created_at, unit, recipient)
        final_dir = out / ctx["number"]
        if final_dir.exists():
            raise DossierError(f"{final_dir} already exists")
        tmp = out / f".{ctx['number']}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            # 2. files
            _write_pdf(tmp / "dossier.pdf", ctx, net, created_at)
            _write_xlsx(tmp / "dossier.xlsx", ctx, net)
            data = {**net.to_dict(), "dossier": ctx["number"]}
            (tmp / "network.json").write_text(
                json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
            (tmp / PUBLIC_NAME).write_text(public_key_pem(settings.keys_dir), encoding="ascii")
            files = sorted(p for p in tmp.iterdir() if p.is_file())
            # 3. manifest and signature
            seq, head = custody.head(session)
            manifest = {
                "manifest_version": MANIFEST_VERSION,
                "kind": "intel_dossier",
                "dossier": ctx["number"],
                "network": net.id,
                "accounts": [a.key for a in net.accounts],
                "created_at_utc": created_at.isoformat(),
                "created_by": actor,
                "files": file_entries(tmp, files),
                "custody_anchor": {"seq": seq, "entry_hash": head},
            }
            payload = manifest_bytes(manifest)
            (tmp / MANIFEST_NAME).write_bytes(payload)
            (tmp / SIGNATURE_NAME).write_text(sign(settings.keys_dir, payload) + "\n", encoding="ascii")
            digest = sha256_file(tmp / MANIFEST_NAME)
            # 4. custody, then the final name (committed with the entry; removed if the commit fails)
            custody.append(
                session,
                actor=actor,
                action="dossier",
                object_type="intel_dossier",
                object_id=ctx["number"],
                object_digest=digest,
                at=created_at,
                details={
                    "network": net.id,
                    "accounts": [a.key for a in net.accounts],
                    "out_dir": str(final_dir.resolve()),
                    "custody_anchor": seq,
                },
            )
            session.flush()
            os.replace(tmp, final_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    names = sorted(p.name for p in final_dir.iterdir())
    return DossierResult(ctx["number"], final_dir, names, digest)


__all__ = ["DossierError", "DossierResult", "write_dossier"]
