"""Real Chromium: full-page screenshot + main document response, recorded and verified."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_evidence_support import make_db, make_settings

from crawler.evidence.capture import EvidenceRecorder
from crawler.evidence.screenshot import CaptureFailed, Screenshotter
from crawler.evidence.verify import verify
from crawler.items import Listing
from storage.models import Capture

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def sandbox_url():
    from sandbox.catalog import generate
    from sandbox.server import SandboxServer
    from sandbox.state import SandboxState

    listings = generate(3, 60)
    with SandboxServer(SandboxState(listings, seed=3)) as url:
        yield url, [item for item in listings if item.platform == "tokopedia"][:3]


def test_capture_records_a_verifiable_listing_page(tmp_path: Path, sandbox_url) -> None:
    from sandbox.catalog import listing_path

    settings = make_settings(tmp_path)
    if settings.chromium_path() is None:
        pytest.skip("no Chromium on this machine")
    base, items = sandbox_url
    db = make_db(settings)

    async def run() -> list[int]:
        ids = []
        async with Screenshotter(settings, pages=2) as shots:
            with EvidenceRecorder(settings, db) as recorder:
                for item in items:
                    key, path = listing_path(item)
                    url = f"{base}/{key}{path}"
                    png, exchange = await shots.capture(url)
                    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
                    assert exchange.status == 200 and exchange.decoded
                    assert item.title.encode() in exchange.body or item.title in exchange.body.decode()
                    assert any(k.lower() == "content-type" for k, _ in exchange.response_headers)
                    assert any(k.lower() == "user-agent" for k, _ in exchange.request_headers)
                    ids.append(
                        await recorder.arecord_capture(
                            listing=Listing(item.platform, item.listing_id, url=url, title=item.title),
                            exchanges=[exchange],
                            screenshot_png=png,
                            metadata={"query": "test"},
                        )
                    )
                with pytest.raises(CaptureFailed):
                    await shots.capture("http://127.0.0.1:9/unreachable")
        return ids

    ids = asyncio.run(run())
    with db.session() as s:
        assert all(s.get(Capture, i).observable for i in ids)
    report = verify(db, settings, all=True)
    assert report.ok and report.screenshots == 3
