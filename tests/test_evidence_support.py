"""Shared builders for the evidence tests (fixed clock and ids, exchanges, real PNGs).

Also imported by the crash test's child process, so it must not depend on pytest fixtures.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from crawler.config import Settings, load_settings
from crawler.evidence.capture import EvidenceRecorder
from crawler.evidence.exchange import Exchange
from crawler.items import Listing
from storage.db import Database

pytestmark = pytest.mark.both_backends

T0 = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
SEARCH_URL = "https://gql.tokopedia.com/graphql/SearchProductV5Query?q=bal+korea"


def fixed_clock(start: datetime = T0) -> Callable[[], datetime]:
    counter = itertools.count()
    return lambda: start + timedelta(seconds=next(counter))


def fixed_ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(counter):012d}"


def run_cli(args: list[str]) -> int:
    """``tertib ARGS`` in this process; its exit code."""
    from crawler.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def make_settings(root: Path, **overrides: Any) -> Settings:
    # the test's database (PostgreSQL under [postgresql], conftest); nothing else from the environment
    env = {k: v for k, v in os.environ.items() if k == "TERTIB_DATABASE_URL"}
    return load_settings(env=env, data_dir=root / "data", **overrides)


def make_db(settings: Settings) -> Database:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    db.migrate()
    return db


def exchange(
    url: str,
    body: bytes,
    *,
    status: int = 200,
    content_type: str = "text/html; charset=utf-8",
    at: datetime = T0,
    headers: list[tuple[str, str]] | None = None,
    decoded: bool = False,
) -> Exchange:
    return Exchange(
        url=url,
        method="GET",
        request_headers=[("User-Agent", "tertib-test/1.0"), ("Accept", "*/*")],
        request_body=b"",
        status=status,
        reason="OK" if status == 200 else "Status",
        response_headers=headers or [("Content-Type", content_type), ("Server", "test")],
        body=body,
        fetched_at=at,
        decoded=decoded,
    )


def png(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    for x in range(0, size[0], 7):
        image.putpixel((x, (x * seed) % size[1]), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def listing(i: int) -> dict[str, Any]:
    return {
        "platform": "tokopedia",
        "listing_id": str(1000 + i),
        "listing_key": f"tokopedia:{1000 + i}",
        "url": f"https://www.tokopedia.com/bal-shop/bal-korea-{i}",
        "title": f"Bal Korea isi 300 no {i}",
        "price": 2_500_000 + i,
    }


SEARCH_BODY = b'{"data":{"searchProductV5":{"data":{"products":[{"id":1000},{"id":1001},{"id":1002}]}}}}'


def record_sample(recorder: EvidenceRecorder, i: int, *, shot: bytes | None = None, **kwargs: Any) -> int:
    item = listing(i)
    return recorder.record_capture(
        listing=Listing.from_dict(item),
        exchanges=[
            exchange(SEARCH_URL, SEARCH_BODY, content_type="application/json"),
            exchange(item["url"], f"<html><h1>{item['title']}</h1><p>Rp 2.500.000</p></html>".encode()),
        ],
        screenshot_png=png(i) if shot is None else shot,
        metadata={
            "query": "bal korea",
            "rank": i,
            "score": {"value": 0.91, "verdict": "strong", "explanation": ["bal (S)", "korea (M)"]},
        },
        **kwargs,
    )


def captured_store(root: Path, n: int = 3) -> tuple[Settings, Database, list[int]]:
    """A data dir under ``root`` with ``n`` listing rows, each with one real capture (and the signing key)."""
    from crawler.evidence import signing
    from storage.models import Listing as ListingRow

    settings = make_settings(root)
    db = make_db(settings)
    signing.ensure_keypair(settings.keys_dir)
    with db.session() as s:
        for i in range(n):
            item = listing(i)
            s.add(
                ListingRow(
                    listing_key=item["listing_key"],
                    platform="tokopedia",
                    platform_listing_id=item["listing_id"],
                    url=item["url"],
                    title=item["title"],
                )
            )
    with EvidenceRecorder(settings, db) as recorder:
        ids = [record_sample(recorder, i) for i in range(n)]
    return settings, db, ids


def test_png_builder_is_deterministic() -> None:
    assert png(3) == png(3)
    assert png(3) != png(4)
    assert png(3).startswith(b"\x89PNG\r\n\x1a\n")
