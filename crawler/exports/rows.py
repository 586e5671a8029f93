"""What goes into a takedown list: which listings are eligible and the row each one becomes.

Eligible (:func:`select_rows`): the listing's *latest* review decision is ``approve`` (so an item rejected
after approval is out), and — unless specific ``listing_ids`` are re-requested — it is in no takedown batch
yet. Filters: platforms, and ``since`` (approved at or after that instant).

A row (:class:`ExportRow`) is the listing as captured: title, price, seller, the signals the latest score
relied on, the latest observable evidence capture (id, WARC SHA-256, screenshot SHA-256, capture time),
and who approved it when. When the platform itself says the item ships from abroad (a cross-border seller,
a "Luar Negeri" shop location), the basis column (``matched_signals``) ends with that fact in the platform's
own words — direct evidence of import origin beside the wording signals. The column list :data:`COLUMNS`
is the single definition every writer uses (CSV header, XLSX header and types, JSON keys). To add a column:
add a field to :class:`ExportRow`, fill it in :func:`select_rows`, add it to :data:`COLUMNS` and regenerate
the golden files in ``tests/fixtures/golden``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from storage.models import Capture, Listing, ReviewDecision, Score, Seller, TakedownItem

REQUESTED_ACTION = "takedown"  # per item; repeat offenders additionally get an account-level section


@dataclass(slots=True)
class ExportRow:
    no: int
    platform: str
    listing_url: str
    listing_id: str
    listing_key: str
    title: str
    price: int | None
    seller_name: str
    seller_id: str
    seller_city: str
    shop_url: str
    matched_signals: str
    score: float | None
    first_seen: datetime | None
    captured_at: datetime | None
    evidence_id: int | None
    evidence_sha256: str
    screenshot_sha256: str
    reviewer: str
    reviewed_at: datetime | None
    repeat_offender_count: int
    # "ok" (capture verified before signing) or "missing" (exported with --allow-missing-evidence)
    evidence_status: str = "ok"
    # internal (not exported as columns)
    db_listing_id: int = 0
    db_seller_id: int | None = None
    decision_id: int | None = None


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # CSV header and JSON key
    label: str  # XLSX header (Bahasa Indonesia / English)
    kind: str  # text | int | float | datetime | url
    width: int = 14


COLUMNS: tuple[Column, ...] = (
    Column("no", "No", "int", 6),
    Column("platform", "Platform", "text", 12),
    Column("listing_url", "URL listing", "url", 48),
    Column("listing_id", "ID listing", "text", 22),
    Column("title", "Judul (saat direkam)", "text", 48),
    Column("price", "Harga (Rp)", "int", 14),
    Column("seller_name", "Nama penjual", "text", 22),
    Column("seller_id", "ID penjual", "text", 16),
    Column("seller_city", "Kota penjual", "text", 16),
    Column("shop_url", "URL toko", "url", 36),
    Column("matched_signals", "Sinyal yang cocok", "text", 36),
    Column("score", "Skor", "float", 8),
    Column("first_seen", "Pertama terlihat (WIB)", "datetime", 20),
    Column("captured_at", "Waktu rekam bukti (WIB)", "datetime", 20),
    Column("evidence_id", "ID bukti", "int", 10),
    Column("evidence_sha256", "SHA-256 bukti (WARC)", "text", 66),
    Column("screenshot_sha256", "SHA-256 tangkapan layar", "text", 66),
    Column("reviewer", "Peninjau", "text", 18),
    Column("reviewed_at", "Waktu tinjau (WIB)", "datetime", 20),
    Column("repeat_offender_count", "Jumlah pelanggaran penjual", "int", 12),
    Column("evidence_status", "Status bukti", "text", 12),
)


def matched_signals(explanation: dict[str, Any] | None) -> str:
    """The positive signals the score relied on, as ``term "matched text"`` joined by ``; ``, then the
    learned model's strongest positive word features (``model "matched text"``, at most three)."""
    explanation = explanation or {}
    return _join(_signals_text(explanation.get("signals")), _model_text(explanation.get("features")))


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _model_text(features: Any) -> str:
    parts: list[str] = []
    for feature in features if isinstance(features, list) else ():
        if not isinstance(feature, dict) or float(feature.get("weight") or 0) <= 0:
            continue
        matched = str(feature.get("matched") or "").strip()
        if matched and f'model "{matched}"' not in parts:
            parts.append(f'model "{matched}"')
        if len(parts) == 3:
            break
    return "; ".join(parts)


ORIGIN_LABEL = "dikirim dari luar negeri"  # "ships from abroad", as the basis column says it


def origin_text(ships_from_abroad: bool | None, facts: Any) -> str:
    """``dikirim dari luar negeri (PLATFORM shop_location="Luar Negeri", PLATFORM cb_option=1)``, or ""."""
    if not ships_from_abroad:
        return ""
    quoted = [str(f) for f in facts if f] if isinstance(facts, list) else []
    return f"{ORIGIN_LABEL} ({', '.join(quoted)})" if quoted else ORIGIN_LABEL


def basis_text(explanation: dict[str, Any] | None, ships_from_abroad: bool | None, facts: Any) -> str:
    """The basis column: the score's positive signals, then the platform's ships-from-abroad fact."""
    return _join(matched_signals(explanation), origin_text(ships_from_abroad, facts))


def _signals_text(signals: Any) -> str:
    parts: list[str] = []
    for signal in signals if isinstance(signals, list) else ():
        if not isinstance(signal, dict) or float(signal.get("weight") or 0) <= 0:
            continue
        term = str(signal.get("term") or "").strip()
        matched = str(signal.get("matched") or "").strip()
        text = f'{term} "{matched}"' if matched and matched.lower() != term.lower() else term
        if text and text not in parts:
            parts.append(text)
    return "; ".join(parts)


def select_rows(
    session: Session,
    *,
    platforms: Sequence[str] = (),
    since: datetime | None = None,
    listing_ids: Sequence[int] | None = None,
) -> list[ExportRow]:
    """Approved items in export order (platform, then score high→low, then listing id), unnumbered."""
    # Driven from approve decisions that no later decision overrides (index seeks on review_decisions
    # (listing_id, decided_at, id)), with each listing's latest score and latest observable capture looked up
    # the same way: no window over whole tables, and portable SQL (no SQLite-only JSON functions).
    later = aliased(ReviewDecision)
    newer_capture = aliased(Capture)
    signals = (
        select(Score.explanation)
        .where(Score.listing_id == Listing.id)
        .order_by(Score.created_at.desc(), Score.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(
            Listing.id,
            Listing.listing_key,
            Listing.platform,
            Listing.platform_listing_id,
            Listing.url,
            Listing.title,
            Listing.price,
            Listing.first_seen,
            Listing.score_value,
            Seller.id,
            Seller.platform_seller_id,
            Seller.name,
            Seller.city,
            Seller.shop_url,
            ReviewDecision.id,
            ReviewDecision.reviewer,
            ReviewDecision.decided_at,
            signals,
            Capture.id,
            Capture.warc_sha256,
            Capture.screenshot_sha256,
            Capture.captured_at,
            Listing.ships_from_abroad,
            Listing.origin_facts,
        )
        .select_from(ReviewDecision)
        .join(Listing, Listing.id == ReviewDecision.listing_id)
        .outerjoin(Seller, Seller.id == Listing.seller_id)
        .outerjoin(
            Capture,
            and_(
                Capture.listing_key == Listing.listing_key,
                Capture.observable.is_(True),
                ~exists().where(
                    newer_capture.listing_key == Listing.listing_key,
                    newer_capture.observable.is_(True),
                    or_(
                        newer_capture.captured_at > Capture.captured_at,
                        and_(newer_capture.captured_at == Capture.captured_at, newer_capture.id > Capture.id),
                    ),
                ),
            ),
        )
        .where(
            ReviewDecision.decision == "approve",
            ~exists().where(
                later.listing_id == ReviewDecision.listing_id,
                or_(
                    later.decided_at > ReviewDecision.decided_at,
                    and_(later.decided_at == ReviewDecision.decided_at, later.id > ReviewDecision.id),
                ),
            ),
        )
        .order_by(Listing.platform, Listing.score_value.desc(), Listing.id)
    )
    if listing_ids is not None:
        query = query.where(Listing.id.in_(list(listing_ids)))
    else:
        query = query.where(~exists().where(TakedownItem.listing_id == Listing.id))
    if platforms:
        query = query.where(Listing.platform.in_(list(platforms)))
    if since is not None:
        query = query.where(ReviewDecision.decided_at >= since)
    rows: list[ExportRow] = []
    # stream in chunks: the driver's full result plus decoded explanations would otherwise sit in memory
    for r in session.execute(query.execution_options(yield_per=2000)):
        rows.append(
            ExportRow(
                no=0,
                platform=r[2],
                listing_url=r[4],
                listing_id=r[3],
                listing_key=r[1],
                title=r[5] or "",
                price=r[6],
                seller_name=r[11] or "",
                seller_id=r[10] or "",
                seller_city=r[12] or "",
                shop_url=r[13] or "",
                matched_signals=basis_text(r[17], r[22], r[23]),
                score=None if r[8] is None else round(float(r[8]), 4),
                first_seen=r[7],
                captured_at=r[21],
                evidence_id=r[18],
                evidence_sha256=r[19] or "",
                screenshot_sha256=r[20] or "",
                reviewer=r[15] or "",
                reviewed_at=r[16],
                repeat_offender_count=0,
                db_listing_id=r[0],
                db_seller_id=r[9],
                decision_id=r[14],
            )
        )
    return rows
