"""Distributed sweeps: one run cut into jobs on a durable queue, crawled by ``tertib worker`` on any machine.

The queue is Procrastinate on the installation's own PostgreSQL (jobs claimed with ``FOR UPDATE SKIP
LOCKED``, worker heartbeats; its schema is applied on first use). Steps of ``tertib sweep --distributed``
(numbered the same in :func:`run_distributed`):

1. Resolve the work (the caller: queries and lexicon version, as a single-process sweep).
2. Open the SweepRun and cut the work into shards (platform × query slice × page window,
   :meth:`crawler.work.SweepWork.shards`), one ``sweep_shards`` row each.
3. Defer one job per shard (queueing lock ``sweep-shard:<id>``: deferring twice queues it once).
4. Wait with a Rich progress display while workers take the jobs; retry the jobs of stalled workers.
5. Close the run from every shard's health (per-platform counts summed, checks recomputed), run the
   follow-ups (discovery, relisting) and print the same summary and ``sweep run #N`` as a single sweep.

A worker runs each job (:func:`run_shard_job`) as an ordinary Scrapy crawl in a subprocess (``tertib sweep
--shard ID --fence N``; a Twisted reactor runs once per process), which dies with its worker. Failure:

- A worker killed at any point stops sending heartbeats; after :data:`STALLED_AFTER` seconds any other worker
  (or the coordinator) puts its job back in the queue, and the next free worker runs it again.
- Each attempt takes the shard's next fencing token (``storage.fencing``) and every commit of its crawl checks
  it, so a cut-off attempt that is still alive cannot commit after the retry began.
- The crawl's writes are safe to repeat (``rerun_safe``): sightings and scores this run already stored are not
  stored again, listings already captured in this run are not captured again.
- Each platform's request rate holds across all workers together (``crawler.ratelimit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from crawler import cli_common as common
from crawler.config import Settings
from crawler.errors import TertibError, UsageError
from crawler.extensions import COUNTERS, health_checks
from crawler.work import SweepWork
from storage import custody, fencing
from storage import repositories as repo
from storage.db import Database
from storage.models import Sighting, SweepRun, SweepShard

logger = logging.getLogger(__name__)

QUEUE = "sweeps"
TASK = "tertib.sweep_shard"
HEARTBEAT = 5.0  # seconds between a worker's heartbeats
STALLED_AFTER = 30.0  # a worker silent this long is dead: its jobs go back in the queue (≤ ~40 s in all)
MAX_ATTEMPTS = 3  # attempts of a job whose crawl crashed (a killed worker's job is retried regardless)
SCHEMA_LOCK = 0x7465727469620001  # advisory lock: one process applies the queue's schema


class ShardCrashed(TertibError):
    """A job's crawl ended without a result (killed, crashed): the queue retries it."""


def conninfo(db_url: str) -> str:
    """The libpq connection string of the installation's PostgreSQL database (the queue lives there)."""
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        raise UsageError(
            "distributed sweeps need PostgreSQL (TERTIB_DATABASE_URL=postgresql+psycopg://…): the queue "
            "and every worker share its database; SQLite is for one machine (run tertib sweep without "
            "--distributed)"
        )
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))


def make_app(db_url: str) -> Any:
    """The Procrastinate app on the installation's database, with the shard task registered."""
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=conninfo(db_url), min_size=1, max_size=4, kwargs={"connect_timeout": 10}
        )
    )
    app.task(
        name=TASK,
        queue=QUEUE,
        pass_context=True,
        retry=procrastinate.RetryStrategy(max_attempts=MAX_ATTEMPTS - 1, wait=2),
    )(run_shard_job)
    return app


def ensure_schema(db_url: str) -> None:
    """Apply Procrastinate's schema once (processes starting together take turns on an advisory lock)."""
    import psycopg
    from procrastinate.schema import SchemaManager

    with psycopg.connect(conninfo(db_url), connect_timeout=10) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        found = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if found is None or found[0] is None:
            conn.execute(SchemaManager.get_schema())


async def retry_stalled(app: Any, *, stalled_after: float = STALLED_AFTER) -> list[int]:
    """Put the jobs of workers silent for ``stalled_after`` seconds back in the queue; their ids.

    Any worker and the coordinator call this every few seconds; two of them retrying the same job is
    harmless (the second finds it no longer running).
    """
    retried: list[int] = []
    jobs = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after)
    for job in jobs:
        try:
            await app.job_manager.retry_job(job)
        except Exception as exc:  # another process retried it first
            logger.debug("stalled job %s not retried here: %s", job.id, exc)
            continue
        logger.warning("job %s of a stalled worker put back in the queue", job.id)
        retried.append(int(job.id))
    return retried


# -- the worker side ---------------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The crawl subprocess gets SIGKILL when its worker dies (Linux ``PR_SET_PDEATHSIG``): a killed
    worker leaves no orphan crawling on (its fencing token would stop its commits anyway)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _finish(db: Database, shard_id: int, fence: int, returncode: int, stderr: str) -> str:
    """Record how the attempt ended, if it still holds the shard: done, failed, or crashed (retry)."""
    with db.session() as session:
        shard = session.get(SweepShard, shard_id, with_for_update=True)
        if shard is None or shard.fence != fence:
            return "superseded"  # a newer attempt owns the shard: nothing to record
        # the attempt's own custody chain is closed: its head goes into the global chain
        custody.anchor_chains(session, [fencing.chain_name(shard_id, fence)], actor=_worker_name())
        result = dict(shard.result or {})
        if result:
            shard.status = "failed" if result.get("status") == "failed" else "done"
        elif returncode == fencing.FENCED_OUT_EXIT:
            return "superseded"
        elif shard.attempts < MAX_ATTEMPTS:
            shard.status = "queued"  # crashed without a result: the queue tries again
            return "crashed"
        else:
            last = (stderr.strip().splitlines() or [f"exit {returncode}"])[-1][:300]
            shard.status = "failed"
            shard.result = {"status": "failed", "reason": f"crashed {shard.attempts} times: {last}"}
        shard.ended_at = repo.now()
        return str(shard.status)


async def run_shard_job(context: Any, shard_id: int) -> str:
    """One job: take the shard's next fencing token, crawl it in a subprocess, record the outcome."""
    settings = common.settings()
    db = common.database()
    job_id = int(context.job.id) if context.job.id is not None else None

    def claim() -> int | None:
        with db.session() as session:
            return fencing.claim(session, shard_id, worker=_worker_name(), job_id=job_id)

    fence = await asyncio.to_thread(claim)
    if fence is None:
        return "already finished"  # a job run again after its shard was done stores nothing
    args = [sys.executable, "-m", "crawler.cli", "--data-dir", str(settings.data_dir), "sweep"]
    args += ["--shard", str(shard_id), "--fence", str(fence), "--no-progress"]
    env = {**os.environ, "TERTIB_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["TERTIB_DATABASE_URL"] = settings.database_url
    logger.info("shard %s attempt %s: crawling", shard_id, fence)
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        preexec_fn=_die_with_parent,
    )
    try:
        _out, err = await proc.communicate()
    except asyncio.CancelledError:  # the worker is stopping: the crawl stops with it
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    stderr = err.decode("utf-8", "replace")
    outcome = await asyncio.to_thread(_finish, db, shard_id, fence, proc.returncode or 0, stderr)
    if outcome == "crashed":
        raise ShardCrashed(f"shard {shard_id}: the crawl ended without a result (exit {proc.returncode})")
    return outcome


async def _work(app: Any, queues: Sequence[str], concurrency: int, *, burst: bool) -> None:
    async def keep_retrying() -> None:
        while True:
            with contextlib.suppress(Exception):  # a database hiccup: try again next round
                await retry_stalled(app)
            await asyncio.sleep(HEARTBEAT)

    async with app.open_async():
        retrier = asyncio.create_task(keep_retrying())
        try:
            await app.run_worker_async(
                queues=list(queues),
                concurrency=concurrency,
                wait=not burst,
                name=_worker_name(),
                update_heartbeat_interval=HEARTBEAT,
                stalled_worker_timeout=STALLED_AFTER,
                install_signal_handlers=True,
                delete_jobs="never",
            )
        finally:
            retrier.cancel()


def worker_command(
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help=f"Queue to take jobs from (default: {QUEUE}).")
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, max=32, help="Jobs (crawl subprocesses) at once.")
    ] = 1,
    burst: Annotated[bool, typer.Option("--burst", help="Stop when the queue is empty.")] = False,
) -> None:
    """Take jobs of distributed sweeps from the queue and crawl them (run one per machine, or more).

    Needs PostgreSQL (TERTIB_DATABASE_URL) shared with every other machine. Stop with Ctrl-C or SIGTERM:
    running jobs finish first. A worker that dies has its jobs retried by another within ~30 s.

    Example: tertib worker --concurrency 2
    """
    settings = common.settings()
    conninfo(settings.db_url)  # SQLite: one clear line before anything else
    common.database()  # migrated, evidence store checked (one line and exit 1 when unusable)
    ensure_schema(settings.db_url)
    app = make_app(settings.db_url)
    common.err_console.print(
        f"worker {_worker_name()}: queues {', '.join(queue or [QUEUE])}, concurrency {concurrency}"
    )
    asyncio.run(_work(app, queue or [QUEUE], concurrency, burst=burst))


# -- the shard's crawl (the subprocess) --------------------------------------------------------------


def run_shard_crawl(shard_id: int, fence: int) -> int:
    """``tertib sweep --shard ID --fence N``: crawl one shard into its run; the exit code."""
    from crawler import sweep
    from crawler.proxies import ProxyPool

    db = common.database()
    with db.session() as session:
        shard = session.get(SweepShard, shard_id)
        if shard is None:
            raise UsageError(f"no shard {shard_id}")
        if shard.fence != fence:
            raise fencing.FencedOut(f"shard {shard_id}: attempt {fence} was superseded by {shard.fence}")
        work = SweepWork.from_dict(shard.work)
        options = dict(shard.work.get("options") or {})
        run_id = shard.sweep_run_id
    if options.get("sandbox_url"):
        common.set_overrides(sandbox_url=options["sandbox_url"])
    settings = common.settings()
    fencing.guard_commits(shard_id, fence)  # from here on every commit checks this attempt's token
    # evidence custody goes to this attempt's own chain: workers never wait for each other's appends
    custody.use_chain(fencing.chain_name(shard_id, fence))
    proxies = ProxyPool.for_run(settings, work.platforms)
    stopper = sweep.StopOnSignal(db, run_id, mark_run=False)
    sweep.crawl(
        settings,
        work,
        run_id,
        stopper,
        proxies,
        progress=False,
        screenshots=bool(options.get("screenshots", True)),
        details=str(options.get("details", "weak")),
        shard_id=shard_id,
        shard_fence=fence,
        shared_rate=rate_intervals(settings, work.platforms, options.get("rate")),
    )
    if stopper.signum is not None:
        return 128 + stopper.signum
    return 0


def rate_intervals(
    settings: Settings, platforms: Iterable[str], rate: float | None = None
) -> dict[str, float]:
    """Seconds between two requests to each platform, all workers together.

    ``rate`` (requests per second per platform, ``--rate``) when given; otherwise a real site's profile
    pace (its download delay over its concurrency: what one machine alone would send at most), and no
    shared limit against the sandbox (its own faults and limits are what the tests exercise).
    """
    out: dict[str, float] = {}
    for name in platforms:
        profile = settings.registry.find(name)
        if rate:
            out[name] = 1.0 / float(rate)
        elif profile is not None and not settings.sandbox_url and profile.download_delay > 0:
            out[name] = profile.download_delay / max(1, profile.concurrency)
    return out


# -- the coordinator -------------------------------------------------------------------------------


def run_distributed(
    settings: Settings,
    db: Database,
    work: SweepWork,
    *,
    lexicon_version_id: int | None,
    queries_per_shard: int = 5,
    pages_per_shard: int = 0,
    queue: str = QUEUE,
    details: str = "weak",
    screenshots: bool = True,
    rate: float | None = None,
    progress: bool = True,
    trigger: str = "manual",
) -> int:
    """Run ``work`` as jobs on the queue and wait for the workers; returns the SweepRun id."""
    from crawler.sweep import Interrupted, followups

    # 1. The work is resolved by the caller (resolve_queries).
    conninfo(settings.db_url)
    ensure_schema(settings.db_url)
    app = make_app(settings.db_url)
    # 2. Open the run and cut the work into shards.
    options = {"details": details, "screenshots": screenshots, "sandbox_url": settings.sandbox_url}
    if rate:
        options["rate"] = rate
    parts = list(
        work.shards(queries_per_shard=queries_per_shard, by_platform=True, pages_per_shard=pages_per_shard)
    )
    with db.session() as session:
        run_id = repo.start_run(
            session,
            platforms=work.platforms,
            trigger=trigger,
            lexicon_version_id=lexicon_version_id,
            scorer_version=_scorer_version(),
            queries=work.queries,
        )
        rows = [
            SweepShard(sweep_run_id=run_id, shard_no=n, work={**part.to_dict(), "options": options})
            for n, part in enumerate(parts)
        ]
        session.add_all(rows)
        session.flush()
        shard_ids = [row.id for row in rows]
    # 3-4. Defer the jobs, then wait for them.
    try:
        asyncio.run(_coordinate(app, db, run_id, shard_ids, queue, progress=progress))
    except KeyboardInterrupt:
        with db.session() as session:
            repo.finish_run(
                session,
                run_id,
                status="interrupted",
                stats={"reason": "coordinator stopped by SIGINT"},
                needs_attention=["interrupted: jobs not yet taken were cancelled"],
            )
        raise Interrupted(f"sweep run #{run_id} interrupted", 130) from None
    # 5. Close the run from its shards; follow-ups.
    close_run(db, run_id)
    followups(settings, db, run_id)
    return run_id


def _scorer_version() -> str:
    from crawler.terms.scorer import SCORER_VERSION

    return SCORER_VERSION


async def _coordinate(
    app: Any, db: Database, run_id: int, shard_ids: list[int], queue: str, *, progress: bool
) -> None:
    async with app.open_async():
        task = app.tasks[TASK]
        job_ids = []
        for shard_id in shard_ids:
            deferrer = task.configure(queue=queue, queueing_lock=f"sweep-shard:{shard_id}")
            job_ids.append(await deferrer.defer_async(shard_id=shard_id))
        try:
            await _wait(app, db, run_id, len(shard_ids), progress=progress)
        except (KeyboardInterrupt, asyncio.CancelledError):
            for job_id in job_ids:  # jobs not taken yet; running ones finish
                with contextlib.suppress(Exception):
                    await app.job_manager.cancel_job_by_id_async(job_id)
            raise KeyboardInterrupt from None


def _state(db: Database, run_id: int) -> tuple[Counter[str], int, int, int]:
    """Job statuses, jobs retried, sightings stored, and workers alive (a heartbeat in STALLED_AFTER)."""
    with db.session() as session:
        statuses = Counter(
            dict(
                session.execute(
                    select(SweepShard.status, func.count())
                    .where(SweepShard.sweep_run_id == run_id)
                    .group_by(SweepShard.status)
                ).all()
            )
        )
        retried = int(
            session.scalar(
                select(func.count()).where(SweepShard.sweep_run_id == run_id, SweepShard.attempts > 1)
            )
            or 0
        )
        sightings = int(
            session.scalar(select(func.count(Sighting.id)).where(Sighting.sweep_run_id == run_id)) or 0
        )
        workers = int(
            session.execute(
                text(
                    "SELECT count(*) FROM procrastinate_workers "
                    "WHERE last_heartbeat > now() - make_interval(secs => :s)"
                ),
                {"s": STALLED_AFTER},
            ).scalar()
            or 0
        )
    return statuses, retried, sightings, workers


async def _wait(app: Any, db: Database, run_id: int, total: int, *, progress: bool) -> None:
    display = Progress(
        TextColumn(f"sweep run #{run_id}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} jobs"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=common.err_console,
        disable=not progress,
        transient=False,
    )
    last_retry = 0.0
    with display:
        bar = display.add_task("jobs", total=total, detail="waiting for workers")
        while True:
            statuses, retried, sightings, workers = await asyncio.to_thread(_state, db, run_id)
            finished = statuses["done"] + statuses["failed"]
            detail = f"{workers} workers, {statuses['running']} running, {sightings} sightings"
            if not workers:
                detail += " — no worker alive: start `tertib worker` on a crawler machine"
            if retried:
                detail += f", {retried} retried"
            if statuses["failed"]:
                detail += f", {statuses['failed']} failed"
            display.update(bar, completed=finished, detail=detail)
            if finished >= total:
                return
            if time.monotonic() - last_retry > HEARTBEAT:
                last_retry = time.monotonic()
                with contextlib.suppress(Exception):
                    await retry_stalled(app)
            await asyncio.sleep(0.5)


def close_run(db: Database, run_id: int) -> None:
    """Close run ``run_id`` from its shards' health: counts summed per platform, the health checks
    recomputed over the whole run, failed jobs named."""
    with db.session() as session:
        run = session.get(SweepRun, run_id)
        if run is None:
            raise KeyError(run_id)
        shards = session.scalars(
            select(SweepShard).where(SweepShard.sweep_run_id == run_id).order_by(SweepShard.shard_no)
        ).all()
        per_platform: dict[str, dict[str, float]] = {
            p: {name: 0 for name in COUNTERS} | {"duration_s": 0.0} for p in run.platforms
        }
        shape_changes: dict[str, dict[str, int]] = {}
        related: dict[str, set[str]] = {}
        attention_extra: list[str] = []
        failed: list[str] = []
        for shard in shards:
            result = dict(shard.result or {})
            if shard.status != "done":
                failed.append(
                    f"job {shard.shard_no} ({', '.join(shard.work.get('platforms', []))}): "
                    f"{result.get('reason') or result.get('status') or shard.status}"
                )
            for platform, counts in (result.get("platforms") or {}).items():
                into = per_platform.setdefault(platform, {name: 0 for name in COUNTERS} | {"duration_s": 0.0})
                for name, value in counts.items():
                    if name == "duration_s":
                        into[name] = round(float(into.get(name, 0)) + float(value), 1)
                    else:
                        into[name] = into.get(name, 0) + int(value)
            for platform, paths in (result.get("shape_changes") or {}).items():
                merged = shape_changes.setdefault(platform, {})
                for path, count in paths.items():
                    merged[path] = merged.get(path, 0) + int(count)
            for platform, terms in (result.get("related_terms") or {}).items():
                related.setdefault(platform, set()).update(terms)
            attention_extra += [
                line
                for line in result.get("needs_attention") or []
                if "items failed" in line or "sandbox guard" in line
            ]
        # every attempt's custody chain anchored (those of workers that died and were never retried too)
        chains = [fencing.chain_name(s.id, f) for s in shards for f in range(1, s.fence + 1)]
        custody.anchor_chains(session, chains, actor="tertib sweep --distributed")
        attention = health_checks(per_platform, len(run.queries), shape_changes=shape_changes)
        attention += sorted(set(attention_extra))
        attention += [f"failed {line}" for line in failed]
        responses = sum(int(c["responses"]) for c in per_platform.values())
        status = "failed" if failed or not responses else "partial" if attention else "completed"
        retried = sum(1 for s in shards if s.attempts > 1)
        repo.finish_run(
            session,
            run_id,
            status=status,
            stats={
                "platforms": per_platform,
                "related_terms": {p: sorted(t) for p, t in related.items() if t},
                "shape_changes": shape_changes,
                "duration_s": round((repo.now() - run.started_at).total_seconds(), 1),
                "reason": "finished",
                "evidence_gaps": sum(int((s.result or {}).get("evidence_gaps") or 0) for s in shards),
                "distributed": {
                    "jobs": len(shards),
                    "attempts": sum(s.attempts for s in shards),
                    "retried": retried,
                    "workers": sorted({(s.worker or "").rsplit(":", 1)[0] for s in shards if s.worker}),
                },
            },
            needs_attention=attention,
        )


def print_jobs_line(db: Database, run_id: int) -> None:
    with db.session() as session:
        run = session.get(SweepRun, run_id)
        info = (run.stats or {}).get("distributed") if run is not None else None
    if info:
        common.console.print(
            f"{info['jobs']} jobs, {info['attempts']} attempts ({info['retried']} retried) on "
            f"{len(info['workers'])} machine(s)"
        )


__all__ = [
    "QUEUE",
    "close_run",
    "conninfo",
    "ensure_schema",
    "make_app",
    "rate_intervals",
    "retry_stalled",
    "run_distributed",
    "run_shard_crawl",
    "run_shard_job",
    "worker_command",
]
