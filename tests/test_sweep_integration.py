"""The sweep end to end: real spiders in a ``tertib sweep`` subprocess against the sandbox on loopback.

What is checked against the sandbox's own truth (the replica serves the catalog, the test computes the
expected results with the same search the replica runs):

- every stored listing exists in the catalog for that platform, with the same title;
- every listing the sandbox's search returns for the queries and pages run was found, at the page and
  rank the platform showed it (sightings carry query, page, rank);
- TikTok Shop product ids surface through Tokopedia results (``extra_ids``);
- candidates have evidence (an observable Capture with a WARC record; a PNG where screenshots are on);
- the SweepRun's status, per-platform stats and needs-attention list;
- the spiders never touched the sandbox control plane (``/_sandbox/*``) — and the guard refuses it.

Each crawl runs in its own subprocess (a Twisted reactor cannot restart); the sandbox runs in-process
(``SandboxServer``), so the test can read and steer its state directly. The helpers here are shared with
``tests/test_sweep_faults.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from sandbox.catalog import CatalogListing, generate
from sandbox.platforms import ships_from_abroad
from sandbox.server import SandboxServer
from sandbox.state import SandboxState
from storage.blobs import BlobStore
from storage.db import Database
from storage.models import Capture, Finding, Listing, Score, Sighting, SweepRun

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SEED = 11
SIZE = 2000
UA_PREFIX = "tertib/"
CANDIDATE_VERDICTS = ("candidate", "strong")

# Search pages per platform in the replicas (sandbox/platforms/*.py); the spiders' pages are 1-based.
PAGE_SIZES = {"tokopedia": 60, "shopee": 60, "lazada": 40, "blibli": 40, "facebook": 24, "instagram": 12}
# Platforms that answer a blocked keyword with an empty page (Tokopedia's is a finding, isQuerySafe=false).
BLOCKLIST_PLATFORMS = ("tokopedia", "shopee", "lazada", "blibli")


# --------------------------------------------------------------------------------------------------
# Helpers (also used by test_sweep_faults.py)
# --------------------------------------------------------------------------------------------------
def child_env() -> dict[str, str]:
    """The test's environment for a crawl subprocess, with the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERTIB_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_sweep(
    data_dir: Path,
    url: str,
    platforms: list[str],
    queries: list[str],
    *,
    max_pages: int = 1,
    screenshots: bool = False,
    timeout: float = 150,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``tertib sweep`` in a subprocess over ``queries`` (a terms file); fails the test on a crash."""
    terms = data_dir.parent / f"{data_dir.name}-terms.txt"
    terms.write_text("\n".join(queries) + "\n", encoding="utf-8")
    args = [sys.executable, "-m", "crawler.cli", "--data-dir", str(data_dir), "sweep", "--sandbox", url]
    for platform in platforms:
        args += ["-p", platform]
    args += ["--terms", str(terms), "--max-pages", str(max_pages), "--no-progress"]
    if not screenshots:
        args.append("--no-screenshots")
    proc = subprocess.run(
        args, cwd=ROOT, env=env or child_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"sweep exited {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    return proc


def database(data_dir: Path) -> Database:
    return Database(f"sqlite:///{data_dir / 'tertib.sqlite3'}")


def expected_pages(
    state: SandboxState, platform: str, query: str, max_pages: int
) -> dict[int, list[CatalogListing]]:
    """What the replica shows for ``query``: page number → listings in rank order (the sandbox's search)."""
    if platform in BLOCKLIST_PLATFORMS and state.blocked_query(platform, query):
        return {}
    size = PAGE_SIZES[platform]
    if platform == "instagram":
        from sandbox.platforms.instagram import InstagramReplica
        from spiders.instagram import hashtag

        ranked = InstagramReplica(state).tag_matches(hashtag(query))
    else:
        ranked, _total = state.search(platform, query, 0, size * max_pages)
    pages: dict[int, list[CatalogListing]] = {}
    for number in range(1, max_pages + 1):
        chunk = ranked[(number - 1) * size : number * size]
        if not chunk:
            break
        pages[number] = chunk
    return pages


@dataclass
class Stored:
    """What one sweep left in the database, as plain data."""

    run: dict[str, Any]
    listings: dict[str, dict[str, Any]]  # listing_key → fields
    sightings: list[dict[str, Any]]
    captures: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    scores: list[dict[str, Any]]


def stored(data_dir: Path) -> Stored:
    db = database(data_dir)
    try:
        with db.session() as session:
            runs = session.scalars(select(SweepRun).where(SweepRun.kind == "sweep")).all()
            assert len(runs) == 1, f"expected one sweep run, found {len(runs)}"
            run = runs[0]
            rows = session.scalars(select(Listing)).all()
            by_id = {row.id: row.listing_key for row in rows}
            keys = set(by_id.values())
            listings = {
                row.listing_key: {
                    "id": row.id,
                    "platform": row.platform,
                    "listing_id": row.platform_listing_id,
                    "title": row.title,
                    "url": row.url,
                    "extra_ids": dict(row.extra_ids or {}),
                    "ships_from_abroad": row.ships_from_abroad,
                    "origin_facts": list(row.origin_facts or []),
                    "verdict": row.verdict,
                }
                for row in rows
            }
            sightings = [
                {
                    "key": by_id[s.listing_id],
                    "run": s.sweep_run_id,
                    "query": s.query,
                    "page": s.page,
                    "rank": s.rank,
                    "source_url": s.source_url,
                    "id": s.id,
                }
                for s in session.scalars(select(Sighting)).all()
            ]
            captures = [
                {
                    "key": c.listing_key if c.listing_key in keys else None,
                    "run": c.sweep_run_id,
                    "observable": c.observable,
                    "reason": c.unobservable_reason,
                    "url": c.url,
                    "warc_file": c.warc_file,
                    "warc_sha256": c.warc_sha256,
                    "records": list(c.records or []),
                    "screenshot_sha256": c.screenshot_sha256,
                    "screenshot_bytes": c.screenshot_bytes,
                }
                for c in session.scalars(select(Capture)).all()
            ]
            findings = [
                {"platform": f.platform, "kind": f.kind, "query": f.query, "run": f.sweep_run_id}
                for f in session.scalars(select(Finding)).all()
            ]
            scores = [
                {"key": by_id[s.listing_id], "verdict": s.verdict, "sighting_id": s.sighting_id}
                for s in session.scalars(select(Score)).all()
            ]
            run_data = {
                "id": run.id,
                "status": run.status,
                "stats": dict(run.stats or {}),
                "needs_attention": list(run.needs_attention or []),
                "queries": list(run.queries or []),
                "platforms": list(run.platforms or []),
                "ended_at": run.ended_at,
            }
    finally:
        db.dispose()
    return Stored(run_data, listings, sightings, captures, findings, scores)


def catalog_index(state: SandboxState) -> dict[str, CatalogListing]:
    return {listing.key: listing for listing in state.catalog}


def assert_nothing_fabricated(state: SandboxState, result: Stored) -> None:
    """Every stored listing is a catalog listing of that platform, stored with the catalog's title."""
    catalog = catalog_index(state)
    for key, row in result.listings.items():
        assert key in catalog, f"{key} is not in the sandbox catalog (fabricated)"
        assert row["platform"] == catalog[key].platform
        assert row["title"] == catalog[key].title, f"{key}: stored title differs from the catalog"


def assert_matches_truth(
    state: SandboxState, result: Stored, platforms: list[str], queries: list[str], max_pages: int
) -> None:
    """Stored listings and sightings equal what the sandbox search shows for these queries and pages."""
    assert_nothing_fabricated(state, result)
    seen: dict[tuple[str, str, int], list[tuple[int, str]]] = defaultdict(list)
    for s in result.sightings:
        platform = result.listings[s["key"]]["platform"]
        assert s["run"] == result.run["id"]
        assert s["query"] in queries and s["page"] is not None and s["rank"] is not None, s
        seen[(platform, s["query"], s["page"])].append((s["rank"], s["key"]))
    for platform in platforms:
        expected_keys: set[str] = set()
        for query in queries:
            for number, chunk in expected_pages(state, platform, query, max_pages).items():
                expected_keys.update(x.key for x in chunk)
                got = sorted(seen.pop((platform, query, number), []))
                if platform in ("tokopedia", "shopee", "lazada", "blibli"):
                    # page-numbered platforms: exactly the page the platform showed, rank by rank
                    assert [key for _rank, key in got] == [x.key for x in chunk], (platform, query, number)
                    assert [rank for rank, _key in got] == list(range(1, len(chunk) + 1))
                else:
                    # scroll platforms: the batch the page received, ranks unique within it
                    assert {key for _rank, key in got} == {x.key for x in chunk}, (platform, query, number)
                    assert len({rank for rank, _key in got}) == len(got)
        stored_keys = {k for k, row in result.listings.items() if row["platform"] == platform}
        assert stored_keys == expected_keys, (
            f"{platform}: missing {sorted(expected_keys - stored_keys)[:5]}, "
            f"extra {sorted(stored_keys - expected_keys)[:5]}"
        )
        counts = result.run["stats"]["platforms"][platform]
        expected_sightings = sum(
            len(chunk)
            for query in queries
            for chunk in expected_pages(state, platform, query, max_pages).values()
        )
        assert counts["listings"] == expected_sightings, (platform, counts)
    assert not seen, f"sightings on pages the sandbox did not show: {sorted(seen)[:5]}"


def assert_origin_matches_truth(state: SandboxState, result: Stored, platform: str) -> None:
    """A listing the replica shows as shipped from abroad is stored so, with the platform's words."""
    catalog = catalog_index(state)
    rows = {k: row for k, row in result.listings.items() if row["platform"] == platform}
    abroad = {k for k in rows if ships_from_abroad(catalog[k])}
    assert abroad, f"{platform}: no listing from abroad in this sweep (widen the queries)"
    assert {k for k, row in rows.items() if row["ships_from_abroad"]} == abroad
    facts = {"shopee": 'shopee shop_location="Luar Negeri"', "lazada": 'lazada location="Overseas"'}
    expected = facts[platform]
    assert all(expected in rows[k]["origin_facts"] for k in abroad)


def assert_candidates_captured(result: Stored, *, screenshots: bool = False) -> int:
    """Every listing scored candidate/strong has an observable capture with WARC records; returns count."""
    captured = {c["key"]: c for c in result.captures if c["observable"] and c["key"]}
    candidates = {s["key"] for s in result.scores if s["verdict"] in CANDIDATE_VERDICTS}
    for key in candidates:
        assert key in captured, f"candidate {key} has no capture"
        capture = captured[key]
        assert capture["warc_file"] and capture["warc_sha256"], capture
        assert any(r.get("type") in ("response", "revisit") for r in capture["records"]), capture["records"]
        if screenshots:
            assert capture["screenshot_sha256"] and capture["screenshot_bytes"], capture
    total = sum(int(c.get("captures", 0)) for c in result.run["stats"]["platforms"].values())
    assert total == len(captured), (total, len(captured))
    return len(candidates)


def requests_report(url: str) -> dict[str, Any]:
    report: dict[str, Any] = httpx.get(url + "/_sandbox/requests", timeout=10).json()
    return report


def assert_no_spider_on_control_plane(url: str) -> None:
    rows = requests_report(url)["by_prefix_and_user_agent"]
    spider_rows = [r for r in rows if r["user_agent"].startswith(UA_PREFIX)]
    assert spider_rows, "the spider's User-Agent never reached the sandbox"
    bad = [r for r in spider_rows if r["prefix"] == "/_sandbox"]
    assert not bad, f"spider requests on the control plane: {bad}"


# --------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalog() -> list[CatalogListing]:
    return generate(SEED, SIZE)


@pytest.fixture()
def sandbox(catalog: list[CatalogListing]) -> Iterator[tuple[str, SandboxState]]:
    state = SandboxState(list(catalog), seed=SEED)
    with SandboxServer(state) as url:
        yield url, state


# --------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------
HTTP_QUERIES = ["jaket", "thrift", "balpres", "sepatu"]


def test_http_platforms_match_sandbox_truth(sandbox: tuple[str, SandboxState], tmp_path: Path) -> None:
    """Tokopedia, Lazada, Blibli over 2 pages: stored = the sandbox's search, TikTok ids, findings, stats."""
    url, state = sandbox
    platforms = ["tokopedia", "lazada", "blibli"]
    data = tmp_path / "data"
    run_sweep(data, url, platforms, HTTP_QUERIES, max_pages=2)
    result = stored(data)

    # the sandbox says jaket has a second page on Tokopedia and Lazada: the spiders must page through it
    assert expected_pages(state, "tokopedia", "jaket", 2).keys() == {1, 2}
    assert expected_pages(state, "lazada", "jaket", 2).keys() == {1, 2}
    assert_matches_truth(state, result, platforms, HTTP_QUERIES, 2)
    assert_origin_matches_truth(state, result, "lazada")

    # TikTok Shop products surface through Tokopedia: the ttsProductID of the catalog listing is kept
    catalog = catalog_index(state)
    tts = {
        key: catalog[key].extra["tts_product_id"]
        for key, row in result.listings.items()
        if row["platform"] == "tokopedia" and catalog[key].extra.get("tts_product_id")
    }
    assert tts, "no Tokopedia result carried a TikTok Shop product id"
    for key, product_id in tts.items():
        assert result.listings[key]["extra_ids"].get("tiktokshop_product_id") == product_id

    # the keyword Tokopedia refuses is a finding, not "0 results"; Lazada's empty answer is not
    assert {(f["platform"], f["query"], f["kind"]) for f in result.findings} >= {
        ("tokopedia", "balpres", "query_blocked")
    }
    assert all(f["run"] == result.run["id"] for f in result.findings)

    # the run record
    run = result.run
    assert run["status"] == "completed", run
    assert run["ended_at"] is not None
    assert run["queries"] == HTTP_QUERIES
    assert run["needs_attention"] == []
    per = run["stats"]["platforms"]
    assert set(per) == set(platforms)
    assert per["tokopedia"]["query_blocked"] == 1
    for platform in platforms:
        assert per[platform]["blocked"] == 0 and per[platform]["errors"] == 0, per[platform]
        assert per[platform]["responses"] >= len(HTTP_QUERIES)
    assert assert_candidates_captured(result) > 0
    assert_no_spider_on_control_plane(url)


def test_screenshots_on_one_http_platform(sandbox: tuple[str, SandboxState], tmp_path: Path) -> None:
    """With screenshots on, a candidate's evidence has a PNG next to the WARC records."""
    url, state = sandbox
    data = tmp_path / "data"
    queries = ["karungan"]
    run_sweep(data, url, ["blibli"], queries, max_pages=1, screenshots=True)
    result = stored(data)
    assert_matches_truth(state, result, ["blibli"], queries, 1)
    assert assert_candidates_captured(result, screenshots=True) > 0
    store = BlobStore(data / "blobs")
    shots = [c["screenshot_sha256"] for c in result.captures if c["screenshot_sha256"]]
    assert shots
    for key in shots:
        png = store.path(key).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n"), key
        assert hashlib.sha256(png).hexdigest() == key


@pytest.mark.browser
def test_browser_platforms_match_sandbox_truth(sandbox: tuple[str, SandboxState], tmp_path: Path) -> None:
    """Shopee (signed API), Facebook and Instagram (login wall, infinite scroll) through real Chromium."""
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium not installed")
    url, state = sandbox
    platforms = ["shopee", "facebook", "instagram"]
    queries = ["thrift"]
    data = tmp_path / "data"
    run_sweep(data, url, platforms, queries, max_pages=2, timeout=240)
    result = stored(data)
    assert_matches_truth(state, result, platforms, queries, 2)
    assert_origin_matches_truth(state, result, "shopee")
    run = result.run
    assert run["status"] == "completed", run
    for platform in platforms:
        counts = run["stats"]["platforms"][platform]
        assert counts["blocked"] == 0 and counts["errors"] == 0, (platform, counts)
    assert_candidates_captured(result)
    assert_no_spider_on_control_plane(url)


def test_sandbox_guard_refuses_control_plane_in_a_crawl(
    sandbox: tuple[str, SandboxState], tmp_path: Path
) -> None:
    """A spider told to fetch ``/_sandbox/truth`` never reaches it: refused and counted."""
    url, _state = sandbox
    data = tmp_path / "data"
    script = textwrap.dedent(
        """
        import json, sys
        import scrapy
        from scrapy.crawler import CrawlerProcess
        from scrapy.settings import Settings as ScrapySettings
        from crawler import settings as crawl_settings
        from crawler.config import load_settings

        url, data = sys.argv[1], sys.argv[2]
        SEARCH = "/blibli/backend/search/products?searchTerm=jaket&page=1"
        values = crawl_settings.build(load_settings(sandbox_url=url, data_dir=data), platforms=("blibli",))
        values["ITEM_PIPELINES"] = {}
        values["EXTENSIONS"] = {}
        seen = []

        class Probe(scrapy.Spider):
            name = "probe"
            async def start(self):
                for path in ("/_sandbox/truth", "/_sandbox/clock", SEARCH):
                    yield scrapy.Request(url + path, callback=self.parse, dont_filter=True)
            def parse(self, response):
                seen.append(response.url)

        process = CrawlerProcess(ScrapySettings(values))
        crawler = process.create_crawler(Probe)
        process.crawl(crawler)
        process.start()
        print(json.dumps({"seen": seen, "refused": crawler.stats.get_value("tertib/sandbox_guard/refused")}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, url, str(data)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["refused"] == 2, out
    assert out["seen"] == [url + "/blibli/backend/search/products?searchTerm=jaket&page=1"]
    assert_no_spider_on_control_plane(url)
    assert requests_report(url)["by_prefix"].get("/_sandbox", 0) >= 1  # our own calls are counted


# --------------------------------------------------------------------------------------------------
# Recheck flow (crawler.recheck.run_recheck; the audit CLI builds on it)
# --------------------------------------------------------------------------------------------------
RECHECK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from sqlalchemy import select
    from crawler import cli_common
    from crawler.recheck import RecheckTarget, run_recheck
    from storage.models import Listing

    url, data, keys = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    cli_common.set_overrides(data_dir=data, sandbox_url=url)
    with cli_common.database().session() as session:
        rows = session.scalars(select(Listing).where(Listing.listing_key.in_(keys))).all()
        targets = [RecheckTarget(r.id, r.listing_key, r.platform, r.url) for r in rows]
    run_id = run_recheck(
        cli_common.settings(), cli_common.database(), targets, screenshots=False, progress=False
    )
    print(json.dumps({"run_id": run_id, "targets": len(targets)}))
    """
)


def test_recheck_verdicts_equal_sandbox_truth(sandbox: tuple[str, SandboxState], tmp_path: Path) -> None:
    """Sweep, request takedowns, advance the clock, recheck: each verdict is the sandbox's outcome."""
    from storage.models import Recheck

    url, _state = sandbox
    data = tmp_path / "data"
    platforms = ["tokopedia", "lazada", "blibli"]
    run_sweep(data, url, platforms, ["bal korea"], max_pages=1)
    result = stored(data)
    keys: list[str] = []
    for platform in platforms:
        keys += sorted(k for k, row in result.listings.items() if row["platform"] == platform)[:5]
    assert len(keys) >= 12
    reported, untouched = keys[:-3], keys[-3:]
    answer = httpx.post(
        url + "/_sandbox/takedowns", json={"urls": [result.listings[k]["url"] for k in reported]}, timeout=10
    ).json()
    assert all(r["accepted"] for r in answer["results"]), answer
    httpx.post(url + "/_sandbox/clock", json={"advance_days": 10}, timeout=10).raise_for_status()
    truth = httpx.get(url + "/_sandbox/truth?listings=0", timeout=30).json()
    outcome = {t["key"]: t["outcome"] for t in truth["takedowns"]}
    expected = {k: {"IGNORED": "LIVE"}.get(outcome[k], outcome[k]) for k in reported}
    expected.update({k: "LIVE" for k in untouched})
    assert {"REMOVED", "LIVE"} <= set(expected.values()), expected  # the mix is worth testing

    proc = subprocess.run(
        [sys.executable, "-c", RECHECK_SCRIPT, url, str(data), json.dumps(keys)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["targets"] == len(keys)

    db = database(data)
    try:
        with db.session() as session:
            rows = session.scalars(select(Recheck)).all()
            by_listing = {r.listing_id: r for r in rows}
            id_to_key = {row["id"]: key for key, row in result.listings.items()}
            got = {id_to_key[lid]: r.verdict for lid, r in by_listing.items()}
            rules = {id_to_key[lid]: r.rule for lid, r in by_listing.items()}
            captures = {r.capture_id for r in rows}
            run = session.get(SweepRun, out["run_id"])
            assert run is not None and run.kind == "recheck" and run.status == "completed", run
            current = {row.listing_key: row.last_status for row in session.scalars(select(Listing)).all()}
    finally:
        db.dispose()
    assert len(rows) == len(keys)
    assert got == expected, {k: (got.get(k), v, rules.get(k)) for k, v in expected.items() if got.get(k) != v}
    assert None not in captures  # every observation has fresh evidence
    assert all(current[k] == v for k, v in expected.items())
    assert_no_spider_on_control_plane(url)
