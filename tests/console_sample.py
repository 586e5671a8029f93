"""A small, realistic sample installation for the console's tests and README screenshots (test data: it
lives with the tests, so no platform name is written into the console package).

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
from crawler.extensions import health_checks, platform_stats
from storage import repositories as repo
from storage.blobs import BlobStore
from storage.db import Database
from storage.models import BatchSend, Capture, JobRun, Listing, Recheck, SweepRun

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


# the scorer's roles for the sample's terms (crawler.terms.scorer.role_of)
ROLES = {"bal": "bulk", "balpres": "bulk", "karungan": "bulk", "ex korea": "origin", "import": "origin",
         "preloved": "used", "koleksi pribadi": "negative", "branded": "other"}  # fmt: skip


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
                    "role": ROLES.get(t, "other"),
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
        # written as crawler.extensions.SweepHealth writes it: the crawl's counters per platform through
        # platform_stats, its messages through health_checks (so the dashboard reads the sweep's real shape)
        counters = {
            "tokopedia": {"requests": 12, "responses": 12, "listings": 3, "candidates": 3, "captures": 3},
            "shopee": {"requests": 8, "responses": 8, "listings": 2, "candidates": 2, "captures": 2},
            "lazada": {"requests": 6, "responses": 6, "listings": 1, "candidates": 1, "captures": 1},
            "blibli": {"requests": 6, "responses": 4, "listings": 1, "candidates": 1, "captures": 1,
                       "unobservable": 3, "blocked": 3},
        }  # fmt: skip
        crawl = {f"tertib/{p}/{name}": n for p, counts in counters.items() for name, n in counts.items()}
        per_platform = platform_stats(crawl, list(counters))
        for platform, seconds in zip(counters, (41.0, 63.5, 22.1, 30.2), strict=True):
            per_platform[platform]["duration_s"] = seconds
        run.stats = {
            "platforms": per_platform,
            "related_terms": {},
            "followups": {"proposed_terms": 0, "relisted": 0},
        }
        run.needs_attention = health_checks(per_platform, queries=4)
        assert run.needs_attention == ["blibli: 3 of 4 searches stayed blocked after retries"]
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


# -- hostile content (tests only) ----------------------------------------------------------------

MARK = "pwn"  # every payload carries it, so a test can find any of them that escaped as markup
HOSTILE: dict[str, str] = {
    "script": f"<script>alert('{MARK}-script')</script>",
    "event": f"<img src=x onerror=\"alert('{MARK}-img')\">",
    "htmx": (
        f'<b hx-post="/sweeps" hx-vals=\'{{"name":"{MARK}-hx","cron":"0 7 * * *"}}\' '
        f'hx-trigger="load" id="{MARK}-hx">bal korea</b>'
    ),
    "data_htmx": (
        f'<i data-hx-post="/sweeps" data-hx-trigger="load" '
        f'data-hx-vals=\'{{"name":"{MARK}-dhx","cron":"0 7 * * *"}}\' id="{MARK}-dhx">x</i>'
    ),
    "link": f'<a href="javascript:alert(\'{MARK}-a\')" id="{MARK}-a">klik</a>',
    "breakout": f"\"'><svg onload=alert('{MARK}-svg')>",
}
HOSTILE_TEXT = " ".join(HOSTILE.values())
HOSTILE_URL = f"javascript:alert('{MARK}-url')//https://x.example/"


def seed_hostile(db: Database, settings: Settings) -> dict[str, int]:
    """Listings, sellers, handles, terms, sweep health and a batch whose every seller-controlled string is
    a markup payload (:data:`HOSTILE`); returns listing key → id. For the escaping tests only."""
    from crawler import items, review
    from crawler.evidence.signing import ensure_keypair
    from crawler.exports import service
    from storage.models import Term

    blobs = BlobStore(settings.blob_dir)
    ids: dict[str, int] = {}
    with db.session() as s:
        run_id = repo.start_run(s, platforms=["tokopedia", "shopee"], trigger="schedule")
        # two listings get approved and exported; the third waits in the queue, relisting the first and
        # sharing its seller (so the card shows seller history and relisting)
        for n, platform in enumerate(("tokopedia", "shopee", "tokopedia")):
            # built as a spider builds it, so the same length limits apply (crawler/limits.py)
            data = items.Listing(
                platform=platform,
                listing_id=f"{HOSTILE['breakout']}{n}",
                url=HOSTILE_URL,
                title=f"Bal korea {HOSTILE_TEXT}",
                description=f"ex Korea {HOSTILE_TEXT}",
                price=1_000_000,
                seller_id=f"{HOSTILE['htmx']}{n % 2}",
                seller_name=HOSTILE_TEXT,
                seller_city=HOSTILE["event"],
                shop_url=HOSTILE_URL,
                contact_handles=[f"wa:{HOSTILE['script']}", f"ig:@{HOSTILE['data_htmx']}"],
            ).to_dict()
            key = data["listing_key"]
            lid, _ = repo.upsert_listing(s, data, seen_at=T0 + timedelta(hours=n))
            signals = [
                {"term": HOSTILE["htmx"], "span": [0, 3], "weight": 0.5, "matched": "Bal"},
                {"term": HOSTILE["event"], "span": [999, 1005], "weight": -0.2, "matched": HOSTILE["link"]},
            ]
            repo.add_score(
                s,
                listing_id=lid,
                value=0.97 + n / 100 if n == 2 else 0.97 - n / 100,
                verdict="strong",
                explanation={"signals": signals, "scorer_version": "hostile"},
                scorer_version="hostile",
            )
            shot, _ = blobs.put(screenshot_png("hostile", (200, 40, 40)))
            s.add(
                Capture(
                    listing_key=key,
                    sweep_run_id=run_id,
                    url=HOSTILE_URL,
                    screenshot_sha256=shot,
                    screenshot_bytes=len(blobs.get(shot)),
                    metadata_json={"title": HOSTILE_TEXT, HOSTILE["script"]: HOSTILE["event"]},
                    records=[{"type": HOSTILE["htmx"], "uri": HOSTILE_URL, "block_digest": HOSTILE["link"]}],
                    captured_at=T0 + timedelta(hours=n, minutes=5),
                )
            )
            ids[key] = lid
        first, second, third = (s.get(Listing, i) for i in ids.values())
        assert first is not None and second is not None and third is not None
        third.relist_of_id = first.id
        third.relist_evidence = {"why": HOSTILE_TEXT, "image_distance": 2}
        run = s.get(SweepRun, run_id)
        assert run is not None
        run.status = "partial"
        run.stats = {"platforms": {HOSTILE["script"]: {"listings": 1, "blocked": 1}}, "queries": HOSTILE_TEXT}
        run.needs_attention = [HOSTILE_TEXT, {"platform": HOSTILE["event"], "message": HOSTILE["htmx"]}]
        s.add(
            Term(
                text=f"bal {HOSTILE['htmx']}"[:200],
                status="proposed",
                provenance="discovered",
                category=HOSTILE["event"][:40],
                discovery={"count": HOSTILE["script"], "examples": list(ids)},
            )
        )
        s.add(Term(text=HOSTILE["link"], status="active", provenance="analyst", signal=HOSTILE["event"][:40]))
        s.add(JobRun(job_name="nightly", status="failed", stats_line=HOSTILE_TEXT, sweep_run_id=run_id))
        review.approve(s, [first.id, second.id], by=HOSTILE["event"][:100], note=HOSTILE_TEXT)
    ensure_keypair(settings.keys_dir)
    service.create_batch(db, settings, name=HOSTILE_TEXT[:200], actor="sample-staff", with_bundle=False)
    return ids
