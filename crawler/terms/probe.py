"""Platform signals for new words: search each top proposal once and note whether the platform refuses it.

A platform that blocks a keyword (its search answer marks the keyword refused) has usually seen it used for
this trade. A sweep only learns that for words it already searches, so after discovery the best proposals
not yet probed are searched once (page 1) on ``discovery_probe_platforms`` (default: every registered
plain-HTTP platform whose profile says ``reports_refused_queries``).

Steps of :func:`run_probe` (numbered the same in the body):

1. Pick the top ``discovery_probe_top`` proposed terms not yet probed on those platforms.
2. Open a ``SweepRun`` of kind ``probe``.
3. Crawl: the sweep spider, one page per word and platform; :class:`ProbePipeline` counts the results and
   the refusals (``QueryFinding`` items); a refusal is stored as a ``query_blocked`` ``Finding`` of the run.
4. Apply (:func:`apply_probe`, when the crawl closes): each probed term's ``discovery["probe"]`` gets
   ``{platform: {blocked, results}}``; a refusal adds the ``platform:<name>`` source and ``BLOCKED_WEIGHT``.

The sweep's discovery follow-up runs it in a subprocess (``tertib terms probe``) when there are proposals.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Self

from crawler.config import Settings
from crawler.terms.background import csv_setting, plain_http_search, run_step

log = logging.getLogger(__name__)

KIND = "probe"


def probe_platforms(settings: Settings) -> list[str]:
    """``discovery_probe_platforms``, else every registered platform whose search says when it refuses a
    keyword (``SiteProfile.reports_refused_queries``); plain-HTTP searches only."""
    names = csv_setting(settings.discovery_probe_platforms) or [
        p.platform for p in settings.registry if p.reports_refused_queries
    ]
    return plain_http_search(settings, names) if names else []


def due_terms(session: Any, platforms: list[str], top: int) -> list[Any]:
    """The best proposed terms that have not been probed on every one of ``platforms``."""
    from crawler.terms.discovery import ranked_proposals

    out = []
    for row in ranked_proposals(session)[: max(0, top)]:
        probed = (row.discovery or {}).get("probe") or {}
        if any(p not in probed for p in platforms):
            out.append(row)
    return out


class ProbePipeline:
    """Counts each probed word's results and records the outcome per platform as a Finding of the run."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.settings: Settings = crawler.settings["TERTIB_SETTINGS"]
        self.run_id = int(crawler.settings["TERTIB_RUN_ID"])
        self.results: Counter[tuple[str, str]] = Counter()
        self.refused: dict[tuple[str, str], str] = {}
        self.answered: set[tuple[str, str]] = set()

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        from crawler.items import Listing, QueryFinding

        if isinstance(item, Listing) and item.query:
            self.results[(item.platform, item.query)] += 1
            self.answered.add((item.platform, item.query))
        elif isinstance(item, QueryFinding):
            self.refused[(item.platform, item.query)] = item.detail
            self.answered.add((item.platform, item.query))
        return item

    def close_spider(self, spider: Any = None) -> None:
        """Refusals become findings of the run; every outcome goes into the probed terms' evidence."""
        from storage import repositories as repo
        from storage.db import Database

        spider = spider or self.crawler.spider  # newer Scrapy calls close_spider() without the spider
        outcomes: dict[str, dict[str, dict[str, Any]]] = {}
        for platform in getattr(spider, "platforms", []):
            for query in getattr(spider, "queries", []):
                key = (platform, query)
                if key in self.answered:
                    outcomes.setdefault(query, {})[platform] = {
                        "blocked": key in self.refused,
                        "results": self.results[key],
                        "sweep_run_id": self.run_id,
                    }
        db = Database(self.settings.db_url)
        try:
            with db.session() as session:
                for (platform, query), detail in sorted(self.refused.items()):
                    repo.record_finding(session, platform=platform, kind="query_blocked", query=query,
                                        detail={"text": detail, "source": "probe"},
                                        sweep_run_id=self.run_id)  # fmt: skip
                apply_probe(session, outcomes)
        finally:
            db.dispose()


def run_probe(*, top: int | None = None, progress: bool = False, trigger: str = "manual") -> int | None:
    """Probe the due proposals in this process; returns the SweepRun id, or None when nothing was due."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings as ScrapySettings

    from crawler import cli_common as common
    from crawler import settings as crawl_settings
    from crawler.logs import quiet_libraries
    from crawler.work import SweepWork
    from spiders.sweep import SweepSpider
    from storage import repositories as repo

    settings = common.settings()
    db = common.database()
    platforms = probe_platforms(settings)
    if not platforms:
        return None
    # 1. Which words.
    with db.session() as session:
        rows = due_terms(session, platforms, settings.discovery_probe_top if top is None else top)
        words = [row.text for row in rows]
        if not words:
            return None
        # 2. The run record.
        run_id = repo.start_run(session, platforms=platforms, kind=KIND, trigger=trigger, queries=words)
    # 3. Crawl one page per word and platform.
    values = crawl_settings.build(settings, run_id=run_id, platforms=tuple(platforms), progress=progress)
    values["ITEM_PIPELINES"] = {"crawler.terms.probe.ProbePipeline": 300}
    process = CrawlerProcess(ScrapySettings(values))
    quiet_libraries()
    process.crawl(SweepSpider, work=SweepWork.of(platforms, words, last_page=1), run_id=run_id)
    process.start()
    # 4. The pipeline applied the outcomes when the crawl closed; make sure a crash still closes the run.
    with db.session() as session:
        repo.fail_if_running(session, run_id)
    return run_id


def apply_probe(session: Any, outcomes: dict[str, dict[str, dict[str, Any]]]) -> int:
    """Write probe outcomes (word → platform → {blocked, results, sweep_run_id}) into the probed terms'
    evidence; returns how many terms a platform newly refused."""
    from sqlalchemy import select

    from crawler.terms.discovery import BLOCKED_WEIGHT
    from storage.models import Term

    refused = 0
    if not outcomes:
        return 0
    for row in session.scalars(select(Term).where(Term.text.in_(list(outcomes)), Term.status == "proposed")):
        d = dict(row.discovery or {})
        probe = {**(d.get("probe") or {}), **outcomes[row.text]}
        d["probe"] = probe
        before = set(d.get("blocked_on") or [])
        new = sorted(p for p, o in probe.items() if o.get("blocked") and p not in before)
        if new:
            refused += 1
            d["blocked_on"] = sorted(before | set(new))
            d["score"] = round(float(d.get("score") or 0.0) + BLOCKED_WEIGHT * len(new), 3)
            sources = [f"platform:{p}" for p in new]
            d["sources"] = sorted({*d.get("sources", []), *sources})
            d["sources_seen"] = sorted({*d.get("sources_seen", []), *sources})
        row.discovery = d
    return refused


def ensure_probe(settings: Settings) -> str | None:
    """Probe due proposals in a subprocess; returns a problem line or None."""
    if not probe_platforms(settings) or settings.discovery_probe_top <= 0:
        return None
    return run_step(settings, ["terms", "probe"], "probe")
