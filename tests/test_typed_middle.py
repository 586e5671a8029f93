"""The sweep's typed middle: one Exchange type, a typed Score, the listing-page helper, settings wiring.

Everything here runs without a crawl; the crawls themselves are covered by ``test_sweep_integration.py``,
``test_sweep_shards.py`` and ``test_evidence_batch.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse, Request

from crawler import settings as crawl_settings
from crawler.config import CHROMIUM_ARGS, load_settings
from crawler.evidence.exchange import Exchange
from crawler.items import CheckResult, Listing, RecheckObservation, RecheckTarget, Score, Verdict
from crawler.registry import default_registry
from crawler.run_context import _recheck_listing
from crawler.terms.lexicon import Lexicon
from crawler.terms.model import load_packaged
from crawler.terms.scorer import Scorer, Thresholds
from spiders.pages import DETAIL_SLOT, listing_request

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = default_registry()


def test_score_round_trips_and_keeps_the_stored_shape() -> None:
    score = Score(
        value=0.91,
        verdict="strong",
        text="bal korea",
        signals=({"term": "bal", "span": [0, 3], "weight": 0.75, "kind": "lexicon", "role": "bulk"},),
        scorer_version="terms-1.0",
        lexicon_hash="abc",
    )
    stored = score.to_dict()
    # the rule-based form is the one stored before (Score.explanation rows, evidence metadata)
    assert list(stored) == ["text", "score", "verdict", "signals", "scorer_version", "lexicon_hash"]
    assert stored["score"] == 0.91 and stored["signals"][0]["term"] == "bal"
    assert Score.from_dict(stored) == score
    learned = Score(
        value=0.7,
        verdict="candidate",
        rule_score=0.4,
        probability=0.7,
        model_version="m-1",
        top_features=({"feature": "bal", "weight": 1.2},),
        product={"kind": "clothing"},
    )
    data = learned.to_dict()
    assert data["probability"] == 0.7 and data["model_version"] == "m-1" and data["rule_score"] == 0.4
    assert data["features"] == [{"feature": "bal", "weight": 1.2}] and data["product"] == {"kind": "clothing"}
    assert Score.from_dict(data) == learned


@pytest.mark.parametrize("title", ["BAL KOREA isi 100 pcs baju bekas", "kaos polos katun baru", "jaket"])
def test_score_carries_exactly_what_the_scorer_stores(title: str) -> None:
    """The typed score on a listing is the scorer's own stored form, rules and learned model alike."""
    for model in (None, load_packaged()):
        result = Scorer(Lexicon.packaged(), Thresholds(), model).score(title)
        assert result.to_score().to_dict() == result.to_dict()


def test_listing_from_dict_reads_its_plain_form_and_refuses_typos() -> None:
    listing = Listing("tokopedia", "1", "https://x/1", "Bal korea", price=5, score=Score(0.9, "strong"))
    again = Listing.from_dict(listing.to_dict())
    assert again == listing and isinstance(again.score, Score)
    with pytest.raises(ValueError, match="titel"):
        Listing.from_dict({"platform": "p", "listing_id": "1", "url": "u", "titel": "typo"})


def test_exchange_from_scrapy_keeps_both_sides_of_the_wire() -> None:
    request = Request("https://example.test/a?q=1", method="POST", body=b"x=1", headers={"X-A": "1"})
    response = HtmlResponse(
        "https://example.test/a?q=1",
        body=b"<html>ok</html>",
        status=200,
        headers={"Content-Type": "text/html", "Set-Cookie": ["a=1", "b=2"]},
        request=request,
    )
    exchange = Exchange.from_scrapy(response)
    assert exchange.method == "POST" and exchange.request_body == b"x=1"
    assert ("X-A", "1") in exchange.request_headers
    assert exchange.header("content-type") == "text/html"
    assert exchange.header_map()["Set-Cookie"] == "a=1,b=2"  # as the profiles' parsers read headers
    assert exchange.block_reason is None and not exchange.decoded


def test_listing_request_uses_the_profiles_method_on_the_detail_slot() -> None:
    settings = load_settings(env={}, sandbox_url="http://127.0.0.1:9")
    http = next(p for p in REGISTRY if not p.needs_browser)
    request = listing_request(http, settings, settings.base_url(http.main_host) + "/x", meta={"k": 1})
    spec = http.detail_request(settings, settings.base_url(http.main_host) + "/x")
    assert request.url == spec.url and request.method == spec.method
    assert request.meta["download_slot"] == http.platform + DETAIL_SLOT
    assert request.meta["dont_redirect"] and request.meta["handle_httpstatus_all"] and request.meta["k"] == 1
    assert "playwright" not in request.meta
    browser = next(p for p in REGISTRY if p.needs_browser)
    url = settings.base_url(browser.main_host) + "/item/1"
    page = listing_request(browser, settings, url)
    assert page.url == url and page.meta["playwright"] and page.meta["playwright_context"] == browser.platform
    assert "dont_redirect" not in page.meta  # the browser follows login-wall redirects


def test_recheck_listing_is_the_target_with_what_the_detail_says() -> None:
    target = RecheckTarget(7, "tokopedia:1", "tokopedia", "https://x/1")
    gone = RecheckObservation(target, CheckResult("tokopedia", "1", Verdict.REMOVED, "r"), exchange=None)
    assert _recheck_listing(gone) == Listing("tokopedia", "1", "https://x/1", "")
    detail = Listing("tokopedia", "1", "https://x/1", "Bal korea", seller_name="Toko", price=None)
    live = RecheckObservation(target, CheckResult("tokopedia", "1", Verdict.LIVE, "r", listing=detail), None)
    seen = _recheck_listing(live)
    assert seen.title == "Bal korea" and seen.seller_name == "Toko" and seen.listing_key == "tokopedia:1"


def test_crawl_settings_pick_the_crawls_pipelines_and_one_chromium_flag_set() -> None:
    settings = load_settings(env={}, sandbox_url="http://127.0.0.1:9")
    sweep = crawl_settings.build(settings)
    recheck = crawl_settings.build(settings, crawl="recheck")
    assert sweep["ITEM_PIPELINES"] == crawl_settings.ITEM_PIPELINES
    assert recheck["ITEM_PIPELINES"] == crawl_settings.RECHECK_ITEM_PIPELINES
    assert recheck["PLAYWRIGHT_LAUNCH_OPTIONS"]["args"] == list(CHROMIUM_ARGS)
    with pytest.raises(ValueError, match="unknown crawl"):
        crawl_settings.build(settings, crawl="nope")


def test_service_code_loads_no_cli_module() -> None:
    """Crawl wiring and service code never import a CLI module (they take settings and database)."""
    code = (
        "import sys\n"
        "import crawler.settings, crawler.recheck, crawler.run_context, crawler.pipelines, crawler.work\n"
        "import crawler.exports.service, crawler.audit.report, scheduler.jobs, scheduler.definitions\n"
        "cli = ('crawler.cli_common', 'crawler.browser', 'crawler.cli')\n"
        "bad = sorted(m for m in sys.modules if m in cli)\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
