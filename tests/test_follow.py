"""Seller following: the shop listing endpoints, who counts as confirmed, and recall against sandbox truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.config import load_settings
from crawler.follow import confirmed_sellers
from crawler.registry import default_registry
from crawler.review import approve, reject
from crawler.sweep import active_queries
from sandbox.catalog import generate
from sandbox.server import SandboxServer
from sandbox.state import SandboxState
from sandbox.words import pseudo_words
from spiders.tokopedia import parse_shop, shop_request
from storage.db import Database
from storage.models import Listing, Seller, Sighting, SweepRun

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.both_backends


def test_followable_platforms_and_requests() -> None:
    profiles = default_registry().profiles
    assert {p for p, prof in profiles.items() if prof.can_follow} == {"tokopedia", "lazada", "blibli"}
    settings = load_settings(env={}, sandbox_url="http://127.0.0.1:9")
    spec = shop_request(settings, "123", 2)
    assert spec.url == "http://127.0.0.1:9/tokopedia-gql/graphql/ShopProducts"
    body = json.loads(spec.body or "[]")[0]
    assert body["variables"]["sid"] == "123" and body["variables"]["page"] == 2
    lazada = profiles["lazada"].shop_request(settings, "99", 1)  # type: ignore[misc]
    assert "/lazada/shop/99/" in lazada.url and "ajax=true" in lazada.url
    blibli = profiles["blibli"].shop_request(settings, "ABC-60001", 1)  # type: ignore[misc]
    assert "merchantCode=ABC-60001" in blibli.url


def test_tokopedia_shop_parser_reads_pages_blocks_and_redesigns() -> None:
    body = [
        {
            "data": {
                "GetShopProduct": {
                    "status": "OK",
                    "links": {"prev": "", "next": "page=2"},
                    "data": [
                        {"product_id": "555", "name": "Kaos <b>", "product_url": "https://www.tokopedia.com/s/p?x=1",
                         "price": {"text_idr": "Rp50.000"}, "primary_image": {"original": "https://img/x.jpg"}},
                        {"product_id": "", "name": "no id", "product_url": "https://www.tokopedia.com/s/q"},
                    ],
                }
            }
        }
    ]  # fmt: skip
    page = parse_shop(json.dumps(body), url="u", query="seller:1", page=1)
    assert page.shape_ok and page.has_more and [x.listing_id for x in page.listings] == ["555"]
    assert page.listings[0].price == 50000 and page.listings[0].url == "https://www.tokopedia.com/s/p"
    assert parse_shop(b"<html>Access Denied</html>").block is not None
    assert parse_shop(b'{"data": {"other": 1}}').shape_ok is False
    assert parse_shop(b"[{").block is not None  # malformed: unobservable, never "no listings"


def test_confirmed_sellers_approved_repeat_and_shared_handles(db: Database) -> None:
    with db.session() as s:
        shops = {
            name: Seller(platform=platform, platform_seller_id=sid, name=name, contact_handles=handles)
            for name, platform, sid, handles in (
                ("A", "tokopedia", "1", ["wa:6281111"]),
                ("B", "lazada", "2", []),
                ("C", "blibli", "C-3", ["wa:6281111"]),  # shares A's WhatsApp number
                ("D", "shopee", "4", []),  # approved, but Shopee has no shop endpoint here
                ("E", "tokopedia", "5", []),  # rejected only
            )
        }
        s.add_all(shops.values())
        s.flush()
        ids = {}
        for i, (name, n) in enumerate((("A", 2), ("B", 1), ("D", 1), ("E", 1))):
            for j in range(n):
                shop = shops[name]
                row = Listing(listing_key=f"x:{i}{j}", platform=shop.platform, platform_listing_id=f"{i}{j}",
                              url="u", title="bal", seller_id=shop.id)  # fmt: skip
                s.add(row)
                s.flush()
                ids[f"{name}{j}"] = row.id
        approve(s, [ids["A0"], ids["A1"], ids["B0"], ids["D0"], ids["E0"]], by="ana")
        reject(s, [ids["E0"]], by="ana", reason="legit_preloved")
    with db.session() as s:
        targets, skipped = confirmed_sellers(s)
        by = {t.name: t for t in targets}
        assert set(by) == {"A", "B", "C"} and skipped == 1
        assert by["A"].reason.startswith("repeat offender") and "wa:6281111" in by["C"].reason
        only = confirmed_sellers(s, ["lazada"])[0]
        assert [t.name for t in only] == ["B"]


def tertib(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "crawler.cli", "--data-dir", str(data), *args]
    return subprocess.run(cmd, env=env, text=True, capture_output=True, timeout=900, check=False)


def test_one_follow_round_finds_what_no_lexicon_query_returns(tmp_path: Path) -> None:
    """Sweep, approve, takedowns, time passes (relistings), then one follow round: recall ≥ 0.9 of the
    confirmed shops' live listings that no lexicon query returns."""
    seed = 61
    state = SandboxState(generate(seed, 2500, drift_terms=pseudo_words(seed)), seed=seed)
    data = tmp_path / "data"
    platforms = ("tokopedia", "lazada", "blibli")
    with SandboxServer(state) as url:
        where = [a for p in platforms for a in ("-p", p)]
        swept = tertib(data, "sweep", "--sandbox", url, *where, "--max-pages", "2", "--details", "none",
                       "--no-screenshots", "--no-progress")  # fmt: skip
        assert swept.returncode == 0, swept.stderr
        # the CLI's database: conftest points TERTIB_DATABASE_URL at PostgreSQL on that backend
        db = Database(
            os.environ.get("TERTIB_DATABASE_URL") or f"sqlite:///{(data / 'tertib.sqlite3').resolve()}"
        )
        with db.session() as s:
            strong = s.execute(select(Listing.id, Listing.url).where(Listing.verdict == "strong")).all()
            approve(s, [i for i, _ in strong], by="simulated reviewer", simulated=True)
        state.takedown([u for _, u in strong])
        state.clock.advance(10)
        with db.session() as s:
            targets, _ = confirmed_sellers(s)
            queries, _ = active_queries(s)
        sizes = {"tokopedia": 60, "lazada": 40, "blibli": 40}
        searchable = {
            x.key
            for p in platforms
            for q in queries
            if not state.blocked_query(p, q)
            for page in range(2)
            for x in state.search(p, q, page * sizes[p], sizes[p])[0]
        }
        truth = {
            x.key
            for t in targets
            for x in state.shop(t.platform, t.seller_id, 0, 10**6)[0]
            if x.key not in searchable
        }
        followed = tertib(
            data, "follow", "--sandbox", url, "--details", "none", "--no-screenshots", "--no-progress"
        )
        assert followed.returncode == 0, followed.stderr
        assert "followed" in followed.stdout and "new candidates" in followed.stdout
        with db.session() as s:
            run = s.scalar(select(SweepRun).where(SweepRun.kind == "follow"))
            assert run is not None and run.status in ("completed", "partial")
            found = set(
                s.scalars(
                    select(Listing.listing_key)
                    .join(Sighting, Sighting.listing_id == Listing.id)
                    .where(Sighting.sweep_run_id == run.id)
                )
            )
            queries_seen = set(s.scalars(select(Sighting.query).where(Sighting.sweep_run_id == run.id)))
        db.dispose()
    assert len(truth) >= 3, "the scenario should leave listings only shop pages show"
    recall = len(truth & found) / len(truth)
    assert recall >= 0.9, (recall, sorted(truth - found)[:5])
    assert all(q.startswith("seller:") for q in queries_seen)
