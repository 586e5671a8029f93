"""Running one scheduled job: a tertib command in a subprocess, under a lease, recorded as a ``JobRun``.

Steps of :meth:`JobRunner.run` (the same numbers appear as comments in the body):

1. Load the definition (a ``Sweep`` row, see ``scheduler.definitions``) and build its command line.
2. Take the job's database lease (``job:<name>``); if another process holds it, the run overlaps a
   running one: record ``status="skipped"`` and stop.
3. Record a ``JobRun`` in status ``running``.
4. Start ``python -m crawler.cli …`` in a new session with the same data dir, database and sandbox as
   this process (a Twisted reactor cannot restart, so every job gets a fresh interpreter). Output goes
   to ``<data dir>/logs/scheduler/<job run id>-<name>.log``.
5. Wait for it, renewing the lease; kill it at the job timeout (``status="timeout"``) or when the
   service asks (shutdown past its stop timeout).
6. Record the outcome: exit status, end time, a short stats line (the output's last meaningful line) and
   the sweep run it produced (``sweep run #N`` in the output, else the sweep run started during the job).
7. Release the lease and log what ran, how long, and the outcome.
8. After a successful sweep, run the ``discovery`` follow-up on the sweep run it produced (unless paused).

Settings: ``TERTIB_SCHEDULER_JOB_TIMEOUT``, ``TERTIB_SCHEDULER_LEASE_SECONDS``,
``TERTIB_SCHEDULER_PYTHON`` (see ``scheduler.config``). :func:`plan_run` holds the misfire/coalesce
decision as a pure function of the trigger, the due times and an injected "now".

To run a new kind of job, teach ``scheduler.definitions.command_for`` its command line; the runner does
not care what the command is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from crawler.config import Settings, load_settings
from crawler.errors import TertibError
from scheduler import definitions as defs
from scheduler.config import SchedulerSettings, scheduler_settings
from scheduler.lease import Clock, Leases, job_lease, new_holder
from storage.db import Database
from storage.models import JobRun, SweepRun, utcnow
from storage.processes import INTERRUPTED, alive, holder_alive, hostname, kill_group, of_pid

log = logging.getLogger(__name__)

SWEEP_RUN_RE = re.compile(r"sweep run #(\d+)", re.IGNORECASE)
STATS_MAX = 300
_DECORATION = "│┃╭╮╰╯─━┏┓┗┛┣┫║═╇╈┡┩ \t"


@dataclass(frozen=True)
class JobOutcome:
    job_run_id: int
    name: str
    status: str  # ok / failed / skipped / timeout
    exit_code: int | None
    duration: float
    stats_line: str
    sweep_run_id: int | None = None
    coalesced: int = 0
    log_path: Path | None = None


@dataclass(frozen=True)
class Problem:
    status: str  # skipped / failed
    message: str


@dataclass(frozen=True)
class RunPlan:
    run: bool  # False: missed by more than the grace time
    run_time: datetime
    coalesced: int  # earlier due times folded into this run
    late_by: timedelta


def plan_run(
    trigger: CronTrigger, first_due: datetime | None, run_time: datetime, now: datetime, grace: float
) -> RunPlan:
    """Decide a due run: coalesce every due time from ``first_due`` into ``run_time``; start it only
    if ``now`` is within ``grace`` seconds of ``run_time`` (APScheduler's ``misfire_grace_time``)."""
    folded = 0
    if first_due is not None and first_due < run_time:
        folded = defs.fire_times_between(trigger, first_due, run_time)
    late = now - run_time
    return RunPlan(run=late <= timedelta(seconds=grace), run_time=run_time, coalesced=folded, late_by=late)


def local_time(value: datetime, tz: str) -> str:
    """A UTC time as the analysts read it, e.g. ``2026-05-02 02:00 WIB``."""
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def meaningful_last_line(text: str) -> str:
    """The last line with words in it, without table borders; at most :data:`STATS_MAX` characters."""
    for line in reversed(text.splitlines()):
        cleaned = "".join(" " if ch in _DECORATION else ch for ch in line)
        if any(ch.isalnum() for ch in cleaned):
            return " ".join(cleaned.split())[:STATS_MAX]
    return ""


def _duration(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}min"


class JobRunner:
    """Runs definitions as subprocesses and records every run. Thread-safe: one thread per job."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        sched: SchedulerSettings,
        *,
        clock: Clock = utcnow,
        holder: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.settings = settings
        self.sched = sched
        self.clock = clock
        self.monotonic = monotonic
        self.holder = holder or new_holder()
        self.leases = Leases(db, clock)
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._kill_reason: str | None = None

    # -- recording -------------------------------------------------------------------------------
    def record_skip(
        self, name: str, reason: str, *, scheduled_for: datetime | None = None, coalesced: int = 0
    ) -> JobOutcome:
        return self._record_without_running(name, "skipped", reason, scheduled_for, coalesced)

    def record_failure(
        self, name: str, message: str, *, scheduled_for: datetime | None, coalesced: int
    ) -> JobOutcome:
        return self._record_without_running(name, "failed", message, scheduled_for, coalesced)

    def _record_without_running(
        self, name: str, status: str, message: str, scheduled_for: datetime | None, coalesced: int
    ) -> JobOutcome:
        """A history row for a run that ended before any command started (skipped, or could not start)."""
        now = self.clock()
        with self.db.session() as session:
            row = JobRun(
                job_name=name,
                scheduled_for=scheduled_for,
                started_at=now,
                ended_at=now,
                status=status,
                coalesced=coalesced,
                stats_line=message[:STATS_MAX],
            )
            session.add(row)
            session.flush()
            run_id = row.id
        log.info("job=%s status=%s reason=%r", name, status, message)
        return JobOutcome(run_id, name, status, None, 0.0, message[:STATS_MAX], coalesced=coalesced)

    # -- running -----------------------------------------------------------------------------------
    def run(
        self,
        name: str,
        *,
        scheduled_for: datetime | None = None,
        coalesced: int = 0,
        sweep_run_id: int | None = None,
        follow_ups: bool = True,
    ) -> list[JobOutcome]:
        """Run one definition now (and its follow-ups); returns every recorded outcome, first is ours."""
        # 1. the definition and its command line
        prepared = self._prepare(name, sweep_run_id, scheduled=scheduled_for is not None)
        if isinstance(prepared, Problem):
            record = self.record_skip if prepared.status == "skipped" else self.record_failure
            return [record(name, prepared.message, scheduled_for=scheduled_for, coalesced=coalesced)]
        kind, args = prepared

        # 2. the job lease: one run of a job at a time, across processes. A scheduler killed with -9
        # leaves its child running: kill it (and record the run interrupted) before anyone runs the job again
        self.settle_orphans(name)
        lease = job_lease(name)
        ttl = self.sched.lease_seconds
        if not self.leases.acquire(lease, self.holder, ttl):
            other = self.leases.get(lease)
            by = f" (held by {other.holder} until {other.expires_at:%H:%M:%S} UTC)" if other else ""
            return [
                self.record_skip(
                    name,
                    f"overlap: the previous run is still running{by}",
                    scheduled_for=scheduled_for,
                    coalesced=coalesced,
                )
            ]
        try:
            outcome = self._run_locked(name, kind, args, scheduled_for=scheduled_for, coalesced=coalesced)
        finally:
            # 7. release the lease
            self.leases.release(lease, self.holder)
        log.info(
            "job=%s status=%s exit=%s duration=%s coalesced=%d sweep_run=%s stats=%r",
            name,
            outcome.status,
            outcome.exit_code,
            _duration(outcome.duration),
            outcome.coalesced,
            outcome.sweep_run_id,
            outcome.stats_line,
        )
        outcomes = [outcome]
        # 8. the discovery follow-up of a successful sweep
        if follow_ups and kind == defs.KIND_SWEEP and outcome.status == "ok" and not self._stopping():
            with self.db.session() as session:
                discovery = defs.discovery_definition(session)
                follow = discovery.name if discovery is not None and not discovery.paused else None
            if follow is not None:
                if outcome.sweep_run_id is None:
                    outcomes.append(
                        self.record_failure(
                            follow,
                            f"the sweep job {name!r} (job run #{outcome.job_run_id}) reported no sweep run",
                            scheduled_for=None,
                            coalesced=0,
                        )
                    )
                else:
                    outcomes += self.run(follow, sweep_run_id=outcome.sweep_run_id, follow_ups=False)
        return outcomes

    def _prepare(
        self, name: str, sweep_run_id: int | None, *, scheduled: bool
    ) -> tuple[str, list[str]] | Problem:
        with self.db.session() as session:
            try:
                row = defs.get(session, name)
            except TertibError as exc:
                return Problem("skipped", str(exc))
            if row.paused and scheduled:
                return Problem("skipped", "paused")
            kind = defs.kind_of(row)
            if kind == "builtin:discovery" and sweep_run_id is None:
                sweep_run_id = session.scalars(
                    select(SweepRun.id)
                    .where(SweepRun.kind == "sweep", SweepRun.status.in_(("completed", "partial")))
                    .order_by(SweepRun.id.desc())
                    .limit(1)
                ).first()
            try:
                return kind, defs.command_for(row, sweep_run_id=sweep_run_id)
            except TertibError as exc:
                return Problem("failed", str(exc))

    def _run_locked(
        self, name: str, kind: str, args: list[str], *, scheduled_for: datetime | None, coalesced: int
    ) -> JobOutcome:
        # 3. the run record
        started = self.clock()
        with self.db.session() as session:
            job_run = JobRun(
                job_name=name,
                scheduled_for=scheduled_for,
                started_at=started,
                status="running",
                coalesced=coalesced,
                holder=self.holder,
            )
            session.add(job_run)
            session.flush()
            run_id = job_run.id

        # 4. the subprocess
        log_dir = self.settings.data_dir / "logs" / "scheduler"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = (log_dir / f"{run_id:06d}-{name}.log").resolve()
        argv = [self.sched.python, "-m", "crawler.cli", *args]
        t0 = self.monotonic()
        status, exit_code, note = "failed", None, ""
        with log_path.open("wb") as out:
            out.write(f"$ tertib {' '.join(args)}\n".encode())
            out.flush()
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self._child_env(run_id),
                    start_new_session=True,
                )
            except OSError as exc:
                note = f"cannot start {argv[0]}: {exc}"
            else:
                log.info("job=%s started pid=%d job_run=%d args=%r", name, proc.pid, run_id, args)
                self._record_child(run_id, proc.pid)
                # 5. wait, renew the lease, enforce the timeout
                exit_code, note = self._wait(name, proc)
                if note.startswith("timeout"):
                    status = "timeout"
                elif exit_code == 0 and not note:
                    status = "ok"
        duration = self.monotonic() - t0

        # 6. the outcome
        output = log_path.read_text(encoding="utf-8", errors="replace")
        body = output.split("\n", 1)[1] if "\n" in output else ""
        stats = note or meaningful_last_line(body) or f"exit {exit_code}"
        sweep_run_id = self._sweep_run_of(body, started, kind)
        with self.db.session() as session:
            finished = session.get(JobRun, run_id)
            if finished is None:
                raise TertibError(f"job run #{run_id} disappeared while {name!r} ran")
            job_run = finished
            job_run.ended_at = self.clock()
            job_run.status = status
            job_run.exit_code = exit_code
            job_run.stats_line = stats[:STATS_MAX]
            job_run.sweep_run_id = sweep_run_id
        return JobOutcome(
            run_id, name, status, exit_code, duration, stats[:STATS_MAX], sweep_run_id, coalesced, log_path
        )

    def _child_env(self, run_id: int) -> dict[str, str]:
        env = dict(os.environ)
        env["TERTIB_DATA_DIR"] = str(self.settings.data_dir.resolve())
        if self.settings.database_url:
            env["TERTIB_DATABASE_URL"] = self.settings.database_url
        if self.settings.sandbox_url:
            env["TERTIB_SANDBOX_URL"] = self.settings.sandbox_url
        env["TERTIB_JOB_RUN_ID"] = str(run_id)
        env["TERTIB_PARENT_PID"] = str(os.getpid())  # the child stops itself if this process dies
        env.setdefault("NO_COLOR", "1")
        env["COLUMNS"] = "200"
        return env

    def _record_child(self, run_id: int, pid: int) -> None:
        child = of_pid(pid)
        with self.db.session() as session:
            row = session.get(JobRun, run_id)
            if row is not None:
                row.pid, row.host = pid, hostname()
                row.start_token = child.start_token if child is not None else None

    def settle_orphans(self, name: str | None = None) -> list[str]:
        """Runs left ``running`` by a scheduler that died (killed with -9, machine crash) on this host:
        their child — still running in its own session — is killed, and the run recorded
        ``interrupted``, so the job never runs twice at once. Children on other hosts stop themselves
        when their scheduler dies (``crawler.cli`` watches the parent); their runs are settled there."""
        query = select(JobRun).where(JobRun.status == "running")
        if name is not None:
            query = query.where(JobRun.job_name == name)
        with self.db.session() as session:
            rows = [
                (r.id, r.job_name, r.pid, r.host, r.start_token, r.holder) for r in session.scalars(query)
            ]
        settled: list[str] = []
        for run_id, job, pid, host, token, holder in rows:
            if holder is None or holder == self.holder or holder_alive(holder) is not False:
                continue  # ours, a live scheduler's, another host's, or from before migration 0006
            child = alive(pid, host, token)
            if child is None and pid is not None:
                continue  # the child runs on another host: it stops itself, its host settles the run
            killed = child is True and pid is not None and kill_group(pid, token)
            note = (
                f"interrupted: scheduler {holder} died; its child {pid} was killed"
                if killed
                else f"interrupted: scheduler {holder} died"
            )
            with self.db.session() as session:
                row = session.get(JobRun, run_id)
                if row is not None and row.status == "running":
                    row.status, row.ended_at, row.stats_line = INTERRUPTED, self.clock(), note[:STATS_MAX]
            log.warning("job=%s job_run=%d %s", job, run_id, note)
            settled.append(f"job run #{run_id} ({job})")
        return settled

    def _wait(self, name: str, proc: subprocess.Popen[bytes]) -> tuple[int | None, str]:
        with self._lock:
            self._children[proc.pid] = proc
        try:
            deadline = self.monotonic() + self.sched.job_timeout
            renew_every = max(0.5, self.sched.lease_seconds / 3)
            next_renew = self.monotonic() + renew_every
            while True:
                try:
                    return proc.wait(timeout=0.2), ""
                except subprocess.TimeoutExpired:
                    pass
                now = self.monotonic()
                if self._kill_reason is not None:
                    self._kill(proc)
                    return proc.returncode, self._kill_reason
                if now >= deadline:
                    self._kill(proc)
                    return proc.returncode, f"timeout: killed after {_duration(self.sched.job_timeout)}"
                if now >= next_renew:
                    next_renew = now + renew_every
                    if not self.leases.renew(job_lease(name), self.holder, self.sched.lease_seconds):
                        log.warning("job=%s lost its lease; it was taken over", name)
        finally:
            with self._lock:
                self._children.pop(proc.pid, None)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
        """SIGTERM the job's process group, then SIGKILL what is left after ``grace`` seconds."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def _stopping(self) -> bool:
        return self._kill_reason is not None

    def kill_all(self, reason: str) -> int:
        """Kill every running child (shutdown past the stop timeout); returns how many were running."""
        self._kill_reason = reason
        with self._lock:
            return len(self._children)

    def running(self) -> int:
        with self._lock:
            return len(self._children)

    def _sweep_run_of(self, output: str, started: datetime, kind: str) -> int | None:
        """The sweep run the job produced: ``sweep run #N`` in its output, else (for a sweep job) the
        sweep run that started while it ran."""
        with self.db.session() as session:
            for match in reversed(SWEEP_RUN_RE.findall(output)):
                if session.get(SweepRun, int(match)) is not None:
                    return int(match)
            if kind != defs.KIND_SWEEP:
                return None
            return session.scalars(
                select(SweepRun.id)
                .where(SweepRun.kind == "sweep", SweepRun.started_at >= started - timedelta(seconds=1))
                .order_by(SweepRun.id.desc())
                .limit(1)
            ).first()


def run_job_by_name(name: str) -> list[JobOutcome]:
    """Run a definition once in the installation the environment configures (the callable APScheduler's
    job store names; the service's own executor runs jobs through ``SchedulerService.execute``)."""
    settings = load_settings()
    db = Database(settings.db_url)
    try:
        return JobRunner(db, settings, scheduler_settings(settings)).run(name)
    finally:
        db.dispose()
