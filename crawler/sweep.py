"""``tertib sweep``: search the platforms for the active terms and store scored listings with evidence.

Steps (numbered the same in :func:`run_sweep`):

1. Resolve the queries: the active lexicon's search terms (or a file, one query per line) and the lexicon
   version they come from.
2. Open a SweepRun record (platforms, queries, lexicon version, scorer version).
3. Crawl: one Scrapy process, the sweep spider over every selected platform; the pipelines score,
   capture evidence and persist as items arrive; a Rich progress line per platform.
4. Close the run with per-platform counts and health checks (SweepHealth).
5. Follow-ups on the stored results: discovery mines the run for emerging terms (proposed, for an analyst
   to approve) and relisting detection compares new listings with items already requested or removed.

The crawl runs in this process (a Twisted reactor cannot restart, so callers that sweep repeatedly — the
scheduler, the demo, tests — run ``tertib sweep`` as a subprocess).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from crawler import cli_common as common
from crawler.config import PLATFORMS, SEARCH_PLATFORMS
from crawler.errors import TertibError, UsageError

# Lexicon strengths that become search queries; weak words (preloved, vintage …) alone would flood the
# queue with legitimate sellers, and negatives are look-alikes.
QUERY_STRENGTHS = ("S", "M")


class NeedsAttention(TertibError):
    """``--strict``: the run finished but its results cannot be trusted as complete (exit code 3)."""

    exit_code = 3


def queries_from_file(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read terms file {path}: {exc}") from None
    queries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not queries:
        raise UsageError(f"terms file {path} has no queries")
    return queries


def active_queries(session: Any) -> tuple[list[str], int | None]:
    """Search queries from the active lexicon, and the lexicon version id they come from."""
    from sqlalchemy import select

    from crawler.terms.store import current_version, ensure_seed
    from storage.models import Term

    ensure_seed(session, actor="tertib")
    terms = session.scalars(
        select(Term)
        .where(Term.status == "active", Term.strength.in_(QUERY_STRENGTHS), Term.category != "negative")
        .order_by(Term.strength, Term.id)
    ).all()
    return [t.text for t in terms], current_version(session).id


def run_sweep(
    *,
    platforms: list[str],
    max_pages: int,
    terms: str,
    progress: bool = True,
    trigger: str = "manual",
    screenshots: bool = True,
    max_queries: int | None = None,
    details: str = "weak",
) -> int:
    """Run one sweep in this process; returns the SweepRun id."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings as ScrapySettings

    from crawler import settings as crawl_settings
    from crawler.proxies import ProxyPool
    from crawler.terms.scorer import SCORER_VERSION
    from spiders.sweep import SweepSpider
    from storage import repositories as repo

    settings = common.settings()
    db = common.database()

    # 1. Resolve the queries and the lexicon version.
    with db.session() as session:
        if terms == "active":
            queries, lexicon_version_id = active_queries(session)
        else:
            queries, lexicon_version_id = queries_from_file(Path(terms)), None
            _active, lexicon_version_id = active_queries(session)  # the scorer still uses the lexicon
        if max_queries:
            queries = queries[:max_queries]
        if not queries:
            raise UsageError("no active search terms: add or approve terms first (tertib terms list)")
        # Egress: every configured proxy is reached once before the run exists (an unreachable one is
        # retired; a platform left without any is one error line, not a run full of errors).
        proxies = ProxyPool.for_run(settings, platforms)
        # 2. Open the run record.
        run_id = repo.start_run(
            session,
            platforms=platforms,
            trigger=trigger,
            lexicon_version_id=lexicon_version_id,
            scorer_version=SCORER_VERSION,
            queries=queries,
        )

    # 3. Crawl. From here on SIGTERM/SIGINT stop the sweep as "interrupted" (before the crawl runs: at once)
    stopper = StopOnSignal(db, run_id)
    try:
        with stopper:
            values = crawl_settings.build(
                settings,
                run_id=run_id,
                platforms=tuple(platforms),
                progress=progress,
                screenshots=screenshots,
                details=details,
                proxies=proxies,
            )
            process = CrawlerProcess(ScrapySettings(values))
            common.quiet_libraries()  # after Scrapy's own logging setup
            process.crawl(
                SweepSpider, platforms=platforms, queries=queries, max_pages=max_pages, run_id=run_id
            )
            stopper.process = process
            if stopper.signum is None:  # a signal during the set-up: the crawl never starts
                process.start(install_signal_handlers=False)
    finally:
        proxies.close()

    # 4. SweepHealth has closed the run record; make sure a crash still leaves it closed.
    with db.session() as session:
        from storage.models import SweepRun

        run = session.get(SweepRun, run_id)
        if run is not None and run.status == "running":
            if stopper.signum is not None:
                repo.finish_run(
                    session,
                    run_id,
                    status="interrupted",
                    stats={"reason": f"stopped by {stopper.name}"},
                    needs_attention=[f"interrupted by {stopper.name}"],
                )
            else:
                repo.finish_run(session, run_id, status="failed", stats={"reason": "crawl ended abnormally"})
        repo.link_run_captures(session, run_id)
    if stopper.signum is not None:
        raise Interrupted(f"sweep run #{run_id} interrupted by {stopper.name}", 128 + stopper.signum)

    # 5. Follow-ups.
    followups(run_id)
    return run_id


class Interrupted(TertibError):
    """The crawl was stopped by SIGTERM/SIGINT (exit 128 + the signal number, as shells report it)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


STOP_GRACE = 4.0  # seconds a signalled crawl may take to stop by itself before the process exits


class StopOnSignal:
    """SIGTERM/SIGINT stop the crawl within :data:`STOP_GRACE` seconds, recorded as ``interrupted``.

    The first signal asks Scrapy to stop (in-flight evidence batches commit; the run closes as
    ``interrupted``). If the crawl has not ended after the grace time — a request hanging, a browser
    page stuck — a watchdog thread marks the run ``interrupted`` and ends the process: evidence is safe
    to abandon at any moment (each WARC batch is committed with its rows or truncated at the next start).
    A second signal ends the process at once, the same way.
    """

    def __init__(self, db: Any, run_id: int) -> None:
        self.process: Any = None  # set once the crawl is about to run
        self.db = db
        self.run_id = run_id
        self.signum: int | None = None
        self._done = threading.Event()
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else "-"

    def __enter__(self) -> StopOnSignal:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.signum is not None:  # a second signal: stop now
            threading.Thread(target=self._abandon, args=(0.0,), daemon=True).start()
            return
        self.signum = signum
        threading.Thread(target=self._abandon, args=(STOP_GRACE,), daemon=True).start()
        if self.process is None:  # still setting up: run_sweep will not start the crawl
            return
        from twisted.internet import reactor

        reactor.callFromThread(self.process.stop)

    def _abandon(self, grace: float) -> None:
        if self._done.wait(grace):
            return
        from storage import repositories as repo
        from storage.db import Database
        from storage.models import SweepRun

        try:
            db = Database(self.db.url)
            with db.session() as session:
                run = session.get(SweepRun, self.run_id)
                if run is not None and run.status == "running":
                    repo.finish_run(
                        session,
                        self.run_id,
                        status="interrupted",
                        stats={**(run.stats or {}), "reason": f"stopped by {self.name}"},
                        needs_attention=[f"interrupted by {self.name}; the crawl did not stop in {grace:g}s"],
                    )
        finally:
            sys.stderr.write(f"error: sweep run #{self.run_id} interrupted by {self.name}\n")
            sys.stderr.flush()
            os._exit(128 + (self.signum or signal.SIGTERM))


def followups(run_id: int) -> dict[str, int]:
    """Discovery and relisting detection for one finished sweep run; returns counts for the summary."""
    from crawler.audit.relist import detect_relistings
    from crawler.terms.background import ensure_background
    from crawler.terms.discovery import run_discovery
    from crawler.terms.model import load_for_settings
    from crawler.terms.scorer import Thresholds
    from storage.models import SweepRun

    settings = common.settings()
    actor = settings.actor_name()
    counts = {"proposed_terms": 0, "relisted": 0}
    with common.database().session() as session:
        run = session.get(SweepRun, run_id)
        if run is None or run.status in ("failed", "interrupted"):
            return counts
        platforms = list(run.platforms or [])
    # discovery compares with ordinary listings: crawl them first when missing or stale (a subprocess,
    # before this process opens a transaction)
    if settings.discovery_crawls:
        ensure_background(settings, common.database(), platforms=platforms)
    with common.database().session() as session:
        run = session.get(SweepRun, run_id)
        assert run is not None
        thresholds = Thresholds.from_settings(settings)
        proposed = run_discovery(
            session,
            run_id,
            actor=actor,
            thresholds=thresholds,
            model=load_for_settings(settings),
            min_background=settings.discovery_background_min_docs,
        )
        counts["proposed_terms"] = len(proposed)
    if counts["proposed_terms"] and settings.discovery_crawls:
        # new words are searched once on the probe platforms: a refusal is a sign of the trade
        from crawler.terms.probe import ensure_probe

        ensure_probe(settings)
    with common.database().session() as session:
        run = session.get(SweepRun, run_id)
        assert run is not None
        counts["relisted"] = len(detect_relistings(session, sweep_run_id=run_id, actor=actor))
        run.stats = {**(run.stats or {}), "followups": counts}
    common.database().analyze()  # a sweep adds many rows: keep the planner's statistics current
    return counts


def print_summary(run_id: int) -> None:
    from storage.models import SweepRun

    with common.database().session() as session:
        run = session.get(SweepRun, run_id)
        if run is None:
            return
        table = Table(title=f"Sweep run #{run.id} — {run.status}", title_justify="left")
        columns = {
            "platform": "platform",
            "requests": "req",
            "listings": "listings",
            "candidates": "cand",
            "captures": "evidence",
            "blocked": "blocked",
            "unobservable": "unobs",
            "errors": "err",
            "duration_s": "s",
        }
        for key, header in columns.items():
            table.add_column(header, justify="left" if key == "platform" else "right", no_wrap=True)
        for platform, counts in (run.stats.get("platforms") or {}).items():
            table.add_row(platform, *(str(counts.get(key, 0)) for key in list(columns)[1:]))
        common.console.print(table)
        for message in run.needs_attention or []:
            common.console.print(f"[yellow]needs attention[/] {message}")
        followups = (run.stats or {}).get("followups") or {}
        if followups:
            common.console.print(
                f"{followups.get('proposed_terms', 0)} proposed terms (tertib terms suggest), "
                f"{followups.get('relisted', 0)} relistings flagged for review"
            )
        discovery = (run.stats or {}).get("discovery") or {}
        if discovery.get("status") == "skipped":
            common.console.print(f"[yellow]discovery[/] {escape(str(discovery.get('message', '')))}")
        common.console.print(
            f"sweep run #{run.id} ({len(run.queries)} queries, lexicon v{run.lexicon_version_id})"
        )


def sweep_command(
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "--platform", "-p", help=f"Platform to search (repeatable): {', '.join(SEARCH_PLATFORMS)}."
        ),
    ] = None,
    max_pages: Annotated[
        int, typer.Option("--max-pages", min=1, max=100, help="Result pages per query.")
    ] = 2,
    terms: Annotated[
        str, typer.Option("--terms", help="'active' (the lexicon) or a file, one query per line.")
    ] = "active",
    sandbox: Annotated[
        str | None, typer.Option("--sandbox", help="Reach every platform at this sandbox root instead.")
    ] = None,
    max_queries: Annotated[
        int | None, typer.Option("--max-queries", min=1, help="Use only the first N queries.")
    ] = None,
    no_screenshots: Annotated[
        bool, typer.Option("--no-screenshots", help="WARC evidence without screenshots.")
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress display.")] = False,
    details: Annotated[
        str,
        typer.Option(
            "--details",
            help="Open listing pages for listings scoring at least: weak (default: descriptions rescore and "
            "back the evidence), candidate, or none (evidence is the search response; fastest triage).",
        ),
    ] = "weak",
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Exit 3 when the run needs attention (a platform's answers changed shape, stayed blocked "
            "or gave nothing), not only when it failed.",
        ),
    ] = False,
) -> None:
    """Search the platforms for the active terms; score, capture evidence and store what is found.

    Example: tertib sweep --platform tokopedia --platform blibli --max-pages 3 --strict
    """
    chosen = [p.strip().lower() for p in platform or []] or list(SEARCH_PLATFORMS)
    for name in chosen:
        if name not in PLATFORMS:
            raise UsageError(f"unknown platform {name!r}; known: {', '.join(SEARCH_PLATFORMS)}")
        if name not in SEARCH_PLATFORMS:
            raise UsageError(
                f"{name} has no keyword search "
                "(TikTok Shop is found through Tokopedia; Bukalapak is recheck-only)"
            )
    if details not in ("weak", "candidate", "none"):
        raise UsageError(f"--details must be weak, candidate or none, not {details!r}")
    if sandbox:
        common.set_overrides(sandbox_url=sandbox)
    run_id = run_sweep(
        details=details,
        trigger="schedule" if os.environ.get("TERTIB_JOB_RUN_ID") else "manual",
        platforms=chosen,
        max_pages=max_pages,
        terms=terms,
        progress=not no_progress,
        screenshots=not no_screenshots,
        max_queries=max_queries,
    )
    print_summary(run_id)
    with common.database().session() as session:
        from storage.models import SweepRun

        run = session.get(SweepRun, run_id)
        if run is not None and run.status == "failed":
            raise TertibError(
                f"sweep run #{run_id} failed: " + "; ".join(run.needs_attention or ["see the log"])
            )
        gaps = int((run.stats or {}).get("evidence_gaps") or 0) if run is not None else 0
        if gaps:
            raise EvidenceGaps(
                f"sweep run #{run_id}: evidence could not be taken for {gaps} candidate(s); "
                "they are not reviewable as proven (see needs attention)"
            )
        if strict and run is not None and run.needs_attention:
            raise NeedsAttention(
                f"sweep run #{run_id} needs attention (--strict): " + "; ".join(run.needs_attention)
            )


class EvidenceGaps(TertibError):
    """The sweep ran, but some candidates have no observable evidence (exit 3: a partial result)."""

    exit_code = 3
