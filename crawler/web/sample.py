"""A small, realistic sample installation for the console's tests and README screenshots.

:func:`seed_sample` inserts rows directly (through ``storage.repositories`` and the review service): sellers
linked by a WhatsApp handle across Tokopedia and Shopee, scored candidates with explanation spans, captures
with real PNG screenshots in the blob store, decisions, a finished sweep run with per-platform stats, and —
with ``with_batch`` — a takedown batch made by the real exporter, sent, and rechecked (REMOVED / LIVE /
HIDDEN / UNOBSERVABLE) so the audit page and the dashboard chart have data. Never used by real sweeps.

To add a sample case, append to :data:`SAMPLE` (title, platform:id, seller, price, score, signal spans).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image, ImageDraw

from crawler.config import Settings
from storage import repositories as repo
from storage.blobs import BlobStore
from storage.db import Database
from storage.models import BatchSend, Capture, Recheck, SweepRun

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 08:00 WIB

SELLERS: dict[str, tuple[str, str, str, str, list[str]]] = {
    "tok-7001": ("tokopedia", "7001", "Gudang Bal Import", "Bandung", ["wa:6281200000001"]),
    "sho-12345": ("shopee", "12345", "balpres_korea", "Jakarta Utara", ["wa:6281200000001", "ig:@balkorea"]),
    "laz-900": ("lazada", "900", "Toko Preloved", "Surabaya", []),
}

# key, title, description, seller, price, score, [(term, [start, end], weight)]
SAMPLE: list[tuple[str, str, str, str | None, int, float, list[tuple[str, list[int], float]]]] = [
    (
        "tokopedia:1001",
        "Bal Korea isi 300 pcs campur",
        "Karungan ex Korea, grade A, kirim dari gudang Bandung",
        "tok-7001",
        4_500_000,
        0.95,
        [("bal", [0, 3], 0.5), ("ex korea", [39, 47], 0.3)],
    ),
    (
        "tokopedia:1002",
        "Karungan baju bekas import Jepang 100 kg",
        "",
        "tok-7001",
        3_750_000,
        0.91,
        [("karungan", [0, 8], 0.5), ("import", [20, 26], 0.2)],
    ),
    (
        "shopee:12345.678",
        "Balpres celana jeans ex Korea grade A",
        "Hubungi WA 081200000001",
        "sho-12345",
        5_200_000,
        0.88,
        [("balpres", [0, 7], 0.6), ("ex korea", [21, 29], 0.3)],
    ),
    (
        "shopee:12345.679",
        "Bal kaos branded ex Japan",
        "",
        "sho-12345",
        2_900_000,
        0.72,
        [("bal", [0, 3], 0.5), ("branded", [9, 16], 0.05)],
    ),
    (
        "lazada:555",
        "Kemeja preloved koleksi pribadi",
        "Dipakai sendiri, bukan impor",
        "laz-900",
        85_000,
        0.65,
        [("preloved", [7, 15], 0.1), ("koleksi pribadi", [16, 31], -0.4)],
    ),
    (
        "tokopedia:1003",
        "Bal jaket import winter",
        "",
        "tok-7001",
        6_000_000,
        0.9,
        [("bal", [0, 3], 0.5), ("import", [10, 16], 0.2)],
    ),
    (
        "blibli:TOB-60001-00001",
        "Bal hoodie ex Korea isi 50",
        "",
        None,
        1_500_000,
        0.8,
        [("bal", [0, 3], 0.5), ("ex korea", [11, 19], 0.3)],
    ),
]


def screenshot_png(title: str, colour: tuple[int, int, int]) -> bytes:
    """A plain listing-page stand-in (title bar and a photo box) so screenshots show something real."""
    image = Image.new("RGB", (480, 360), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 480, 40), fill=(40, 40, 40))
    draw.text((10, 12), title[:60], fill=(255, 255, 255))
    draw.rectangle((20, 60, 260, 300), fill=colour)
    draw.text((280, 70), "Rp ...", fill=(200, 30, 30))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _span(flat: str, term: str, hint: list[int]) -> list[int]:
    at = flat.find(term)
    return [at, at + len(term)] if at >= 0 else hint


def seed_sample(db: Database, settings: Settings, *, decide: bool = True) -> dict[str, int]:
    """Insert the sample listings; returns listing key → listing id. With ``decide``, two are decided."""
    from crawler import review

    blobs = BlobStore(settings.blob_dir)
    ids: dict[str, int] = {}
    with db.session() as s:
        run_id = repo.start_run(s, platforms=["tokopedia", "shopee", "lazada", "blibli"], trigger="schedule")
        for n, (key, title, description, seller, price, score, spans) in enumerate(SAMPLE):
            platform, listing_id = key.split(":", 1)
            seen = T0 + timedelta(hours=n)
            data: dict[str, Any] = {
                "listing_key": key,
                "platform": platform,
                "listing_id": listing_id,
                "url": f"https://{platform}.example/p/{listing_id}",
                "title": title,
                "description": description,
                "price": price,
            }
            if seller:
                sp, sid, name, city, handles = SELLERS[seller]
                data.update(
                    seller_id=sid,
                    seller_name=name,
                    seller_city=city,
                    shop_url=f"https://{sp}.example/shop/{sid}",
                    contact_handles=handles,
                )
            lid, _ = repo.upsert_listing(s, data, seen_at=seen)
            # spans index the flattened "title description" text, as the scorer's explanation does
            flat = f"{title} {description}".lower() if description else title.lower()
            signals = [
                {
                    "term": t,
                    "span": _span(flat, t, span),
                    "weight": w,
                    "kind": "exact",
                    "role": "x",
                    "matched": t,
                }
                for t, span, w in spans
            ]
            repo.add_score(
                s,
                listing_id=lid,
                value=score,
                verdict="strong" if score >= 0.85 else "candidate",
                explanation={"signals": signals, "scorer_version": "sample"},
                scorer_version="sample",
            )
            shot, _ = blobs.put(screenshot_png(title, (60 + 25 * n, 90, 160 - 10 * n)))
            s.add(
                Capture(
                    listing_key=key,
                    sweep_run_id=run_id,
                    url=data["url"],
                    screenshot_sha256=shot,
                    screenshot_bytes=len(blobs.get(shot)),
                    metadata_json={"title": title, "status": 200},
                    captured_at=seen + timedelta(minutes=5),
                )
            )
            ids[key] = lid
        run = s.get(SweepRun, run_id)
        assert run is not None
        run.status = "partial"
        run.ended_at = T0 + timedelta(minutes=40)
        run.stats = {
            "tokopedia": {"listings": 3, "candidates": 3, "blocked": 0},
            "shopee": {"listings": 2, "candidates": 2, "blocked": 0},
            "lazada": {"listings": 1, "candidates": 1, "blocked": 0},
            "blibli": {"listings": 1, "candidates": 1, "blocked": 2},
        }
        run.needs_attention = ["blibli: 2 of 4 searches answered HTML where JSON was expected (blocked?)"]
        if decide:
            review.approve(
                s, ["tokopedia:1002", "shopee:12345.679"], by="sample-reviewer", at=T0 + timedelta(days=1)
            )
            review.reject(
                s, ["lazada:555"], by="sample-reviewer", reason="legit_preloved", at=T0 + timedelta(days=1)
            )
    return ids


def seed_batch(db: Database, settings: Settings, *, actor: str = "sample-staff") -> str:
    """Export the approved sample items as a batch, mark it sent, and record rechecks; returns its number."""
    from crawler.evidence.signing import ensure_keypair
    from crawler.exports import service

    ensure_keypair(settings.keys_dir)
    created = datetime.now(UTC) - timedelta(days=9)
    result = service.create_batch(
        db, settings, name="Patroli Maret (contoh)", actor=actor, with_bundle=False, now=created
    )
    sent = created + timedelta(hours=20)
    verdicts = ["REMOVED", "LIVE", "HIDDEN", "UNOBSERVABLE"]
    with db.session() as s:
        batch = service.get_batch(s, result.number)
        items = list(batch.items)
        for platform in sorted({i.platform for i in items}):
            s.add(
                BatchSend(
                    batch_id=batch.id, platform=platform, channel="portal", sent_at=sent, recorded_by=actor
                )
            )
        for n, item in enumerate(items):
            for rnd in (1, 3, 7):
                verdict = verdicts[n % len(verdicts)] if rnd > 1 else "LIVE"
                s.add(
                    Recheck(
                        takedown_item_id=item.id,
                        listing_id=item.listing_id,
                        round_days=rnd,
                        due_at=sent + timedelta(days=rnd),
                        checked_at=sent + timedelta(days=rnd, hours=n),
                        verdict=verdict,
                        rule=f"sample.{verdict.lower()}",
                    )
                )
    return result.number
