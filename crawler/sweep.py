"""``tertib sweep``: search the platforms for the active terms and store scored listings with evidence.

Steps (numbered the same in :func:`run_sweep`):

1. Resolve the work (:class:`crawler.work.SweepWork`: platforms × queries × a page window): the active
   lexicon's search terms (or a file, one query per line) and the lexicon version they come from
   (:func:`resolve_queries`) — or a work description a job queue cut out of a larger sweep (``--work``).
2. Open a SweepRun record (platforms, queries, lexicon version, scorer version).
3. Crawl: one Scrapy process, the sweep spider over every selected platform; the pipelines score,
   capture evidence and persist as items arrive; a Rich progress line per platform.
4. Close the run with per-platform counts and health checks (SweepHealth).
5. Follow-ups on the stored results: discovery mines the run for emerging terms (proposed, for an analyst
   to approve) and relisting detection compares new listings with items already requested or removed.

:func:`run_sweep` takes the settings and the database it works with (service code never reaches for the CLI's
cached ones). The crawl runs in this process (a Twisted reactor cannot restart, so callers that sweep
repeatedly — the scheduler, the demo, tests, a job queue running shards — run ``tertib sweep`` as a
subprocess).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings as ScrapySettings
from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler import cli_common as common
from crawler import settings as crawl_settings
from crawler.audit.relist import detect_relistings
from crawler.config import Settings
from crawler.errors import TertibError, UsageError
from crawler.logs import quiet_libraries
from crawler.proxies import ProxyPool
from crawler.terms.discovery import run_discovery
from crawler.terms.scorer import SCORER_VERSION
from crawler.terms.store import current_version, ensure_seed
from crawler.work import SweepWork
from spiders.sweep import SweepSpider
from storage import repositories as repo
from storage.db import Database
from storage.models import SweepRun, Term

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


def active_queries(session: Session) -> tuple[list[str], int | None]:
    """Search queries from the active lexicon, and the lexicon version id they come from."""
    ensure_seed(session, actor="tertib")
    terms = session.scalars(
        select(Term)
        .where(Term.status == "active", Term.strength.in_(QUERY_STRENGTHS), Term.category != "negative")
        .order_by(Term.strength, Term.id)
    ).all()
    return [t.text for t in terms], current_version(session).id


def resolve_queries(
    db: Database, terms: str, *, max_queries: int | None = None
) -> tuple[list[str], int | None]:
    """The queries to search (``terms``: ``active`` — the lexicon — or a file, one query per line) and the
    lexicon version the run's scorer uses (the active one either way)."""
    with db.session() as session:
        active, lexicon_version_id = active_queries(session)
    queries = active if terms == "active" else queries_from_file(Path(terms))
    if max_queries:
        queries = queries[:max_queries]
    if not queries:
        raise UsageError("no active search terms: add or approve terms first (tertib terms list)")
    return queries, lexicon_version_id


def run_sweep(
    settings: Settings,
    db: Database,
    work: SweepWork,
    *,
    lexicon_version_id: int | None = None,
    progress: bool = True,
    trigger: str = "manual",
    screenshots: bool = True,
    details: str = "weak",
) -> int:
    """Run one sweep crawl over ``work`` in this process; returns the SweepRun id."""
    # 1. The work is resolved by the caller (resolve_queries, or a shard of a larger sweep).
    if not work.queries:
        raise UsageError("no search terms to sweep")
    # Egress: every configured proxy is reached once before the run exists (an unreachable one is
    # retired; a platform left without any is one error line, not a run full of errors).
    proxies = ProxyPool.for_run(settings, work.platforms)
    # 2. Open the run record.
    with db.session() as session:
        run_id = repo.start_run(
            session,
            platforms=work.platforms,
            trigger=trigger,
            lexicon_version_id=lexicon_version_id,
            scorer_version=SCORER_VERSION,
            queries=work.queries,
        )

    # 3. Crawl. From here on SIGTERM/SIGINT stop the sweep as "interrupted" (before the crawl runs: at once)
    stopper = StopOnSignal(db, run_id)
    crawl(
        settings, work, run_id, stopper, proxies, progress=progress, screenshots=screenshots, details=details
    )

    # 4. SweepHealth has closed the run record; make sure a crash still leaves it closed.
    with db.session() as session:
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
    if stopper.signum is not None:
        raise Interrupted(f"sweep run #{run_id} interrupted by {stopper.name}", 128 + stopper.signum)

    # 5. Follow-ups.
    followups(settings, db, run_id)
    return run_id


def crawl(
    settings: Settings,
    work: SweepWork,
    run_id: int,
    stopper: StopOnSignal,
    proxies: ProxyPool,
    *,
    progress: bool,
    screenshots: bool,
    details: str,
    **extra: Any,
) -> None:
    """One Scrapy crawl of ``work`` into run ``run_id`` in this process (``extra``: more
    :func:`crawler.settings.build` arguments, e.g. a distributed sweep's shard); closes ``proxies``."""
    try:
        with stopper:
            values = crawl_settings.build(
                settings,
                run_id=run_id,
                platforms=work.platforms,
                progress=progress,
                screenshots=screenshots,
                details=details,
                proxies=proxies,
                **extra,
            )
            process = CrawlerProcess(ScrapySettings(values))
            quiet_libraries()  # after Scrapy's own logging setup
            process.crawl(SweepSpider, work=work, run_id=run_id)
            stopper.process = process
            if stopper.signum is None:  # a signal during the set-up: the crawl never starts
                process.start(install_signal_handlers=False)
    finally:
        proxies.close()


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

    def __init__(self, db: Database, run_id: int, *, mark_run: bool = True) -> None:
        self.process: Any = None  # set once the crawl is about to run
        self.db = db
        self.run_id = run_id
        self.mark_run = mark_run  # False for a distributed sweep's job: the run belongs to its coordinator
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
        from twisted.internet import reactor  # not at the top: importing it installs a reactor

        reactor.callFromThread(self.process.stop)

    def _abandon(self, grace: float) -> None:
        if self._done.wait(grace):
            return
        if not self.mark_run:
            sys.stderr.write(f"error: a job of sweep run #{self.run_id} was stopped by {self.name}\n")
            sys.stderr.flush()
            os._exit(128 + (self.signum or signal.SIGTERM))
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


def followups(settings: Settings, db: Database, run_id: int) -> dict[str, int]:
    """Discovery and relisting detection for one finished sweep run; returns counts for the summary."""
    from crawler.terms.background import ensure_background
    from crawler.terms.model import load_for_settings
    from crawler.terms.probe import ensure_probe
    from crawler.terms.scorer import Thresholds

    actor = settings.actor_name()
    counts = {"proposed_terms": 0, "relisted": 0}
    with db.session() as session:
        run = session.get(SweepRun, run_id)
        if run is None or run.status in ("failed", "interrupted"):
            return counts
        platforms = list(run.platforms or [])
    # discovery compares with ordinary listings: crawl them first when missing or stale (a subprocess,
    # before this process opens a transaction)
    if settings.discovery_crawls:
        ensure_background(settings, db, platforms=platforms)
    with db.session() as session:
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
        ensure_probe(settings)
    with db.session() as session:
        run = session.get(SweepRun, run_id)
        assert run is not None
        counts["relisted"] = len(detect_relistings(session, sweep_run_id=run_id, actor=actor))
        run.stats = {**(run.stats or {}), "followups": counts}
    db.analyze()  # a sweep adds many rows: keep the planner's statistics current
    return counts


def print_summary(db: Database, run_id: int) -> None:
    with db.session() as session:
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
            "--platform", "-p", help="Platform to search (repeatable; default: every platform with a search)."
        ),
    ] = None,
    max_pages: Annotated[
        int, typer.Option("--max-pages", min=1, max=100, help="Result pages per query (the last page).")
    ] = 2,
    first_page: Annotated[
        int,
        typer.Option("--first-page", min=1, max=100, help="Start at this result page (a shard's window)."),
    ] = 1,
    terms: Annotated[
        str, typer.Option("--terms", help="'active' (the lexicon) or a file, one query per line.")
    ] = "active",
    work: Annotated[
        Path | None,
        typer.Option(
            "--work",
            help="A work description (JSON: platforms, queries, first_page, last_page) instead of "
            "--platform/--terms/--first-page/--max-pages: one shard of a larger sweep.",
        ),
    ] = None,
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
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Cut the sweep into jobs (platform × queries × pages) for `tertib worker` processes on any "
            "machine, wait for them, and close the run (PostgreSQL).",
        ),
    ] = False,
    queries_per_job: Annotated[
        int, typer.Option("--queries-per-job", min=1, max=1000, help="--distributed: queries in one job.")
    ] = 5,
    pages_per_job: Annotated[
        int,
        typer.Option(
            "--pages-per-job", min=0, max=100, help="--distributed: result pages in one job (0: all)."
        ),
    ] = 0,
    queue: Annotated[
        str, typer.Option("--queue", help="--distributed: the queue the jobs go to (workers' --queue).")
    ] = "sweeps",
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            min=0.01,
            help="--distributed: requests per second to each platform, all workers together "
            "(default: each platform's own pace; none against the sandbox).",
        ),
    ] = None,
    shard: Annotated[int | None, typer.Option("--shard", hidden=True)] = None,
    fence: Annotated[int | None, typer.Option("--fence", hidden=True)] = None,
) -> None:
    """Search the platforms for the active terms; score, capture evidence and store what is found.

    Example: tertib sweep --platform PLATFORM --platform OTHER --max-pages 3 --strict
    """
    if shard is not None:  # one job of a distributed sweep, started by `tertib worker`
        from crawler.distributed import run_shard_crawl

        if fence is None:
            raise UsageError("--shard needs --fence (started by tertib worker)")
        code = run_shard_crawl(shard, fence)
        if code:
            raise typer.Exit(code)
        return
    registry = common.settings().registry
    planned = SweepWork.from_dict(_read_work(work)) if work is not None else None
    requested = planned.platforms if planned is not None else platform or []
    chosen = [registry.searchable(p).platform for p in requested] or list(registry.search_names)
    if details not in ("weak", "candidate", "none"):
        raise UsageError(f"--details must be weak, candidate or none, not {details!r}")
    if planned is None and first_page > max_pages:
        raise UsageError(f"--first-page {first_page} is after --max-pages {max_pages}")
    if sandbox:
        common.set_overrides(sandbox_url=sandbox)
    settings, db = common.settings(), common.database()
    if planned is not None:  # a shard: its own queries; the scorer still uses the active lexicon
        with db.session() as session:
            _active, lexicon_version_id = active_queries(session)
        sweep_work = SweepWork.of(
            chosen, planned.queries, first_page=planned.first_page, last_page=planned.last_page
        )
    else:
        queries, lexicon_version_id = resolve_queries(db, terms, max_queries=max_queries)
        sweep_work = SweepWork.of(chosen, queries, first_page=first_page, last_page=max_pages)
    trigger = "schedule" if os.environ.get("TERTIB_JOB_RUN_ID") else "manual"
    if distributed:
        from crawler.distributed import print_jobs_line, run_distributed

        run_id = run_distributed(
            settings,
            db,
            sweep_work,
            lexicon_version_id=lexicon_version_id,
            queries_per_shard=queries_per_job,
            pages_per_shard=pages_per_job,
            queue=queue,
            details=details,
            screenshots=not no_screenshots,
            rate=rate,
            progress=not no_progress,
            trigger=trigger,
        )
        print_jobs_line(db, run_id)
    else:
        run_id = run_sweep(
            settings,
            db,
            sweep_work,
            lexicon_version_id=lexicon_version_id,
            details=details,
            trigger=trigger,
            progress=not no_progress,
            screenshots=not no_screenshots,
        )
    print_summary(db, run_id)
    with db.session() as session:
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


def _read_work(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read work description {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"work description {path} is not a JSON object")
    return data


class EvidenceGaps(TertibError):
    """The sweep ran, but some candidates have no observable evidence (exit 3: a partial result)."""

    exit_code = 3
