"""The scheduler service: APScheduler 3 with its SQLAlchemy job store in the project's own database.

Steps of a service's life (the same numbers appear as comments in :class:`SchedulerService`):

1. Take the service lease (``scheduler:service``); a second service on the same database refuses to
   start while the first holds it (:class:`SchedulerBusy`). The lease is renewed every few seconds and
   expires if the holder dies, so a crashed service never blocks the next one for long.
2. Start a ``BackgroundScheduler`` *paused*, on an ``SQLAlchemyJobStore`` (table ``apscheduler_jobs`` in
   the project database, so jobs and their next run times survive restarts), with ``coalesce=True``,
   ``max_instances=1`` and ``misfire_grace_time``.
3. Sync the definitions (``Sweep`` rows, the source of truth, see ``scheduler.definitions``) into the job
   store: add new ones, retrigger edited ones, pause/resume, drop removed ones. Existing jobs keep their
   stored next run time, so runs missed while the service was down are still due.
4. Resume: due jobs are submitted to :class:`TertibExecutor`, which coalesces every missed due time into
   one run (the ``JobRun`` records how many were folded in ``coalesced``), records a run missed by more
   than the grace time as ``skipped``, and runs the job in a subprocess through
   :class:`scheduler.jobs.JobRunner`. A trigger that fires while the same job still runs is refused by
   ``max_instances=1`` and recorded as ``skipped`` (and the job's database lease covers other processes,
   e.g. ``tertib schedule run-now``).
5. Every ``poll`` seconds: renew the service lease and re-sync definitions.
6. On stop (SIGTERM/SIGINT): submit nothing new, wait for running jobs up to ``stop_timeout``, then kill
   their subprocesses (recorded as ``failed``), shut APScheduler down and release the lease.

Settings (``scheduler.config``): ``TERTIB_SCHEDULER_MISFIRE_GRACE``, ``_POLL``, ``_LEASE_SECONDS``,
``_STOP_TIMEOUT``, ``_WORKERS``, ``_JOB_TIMEOUT``, ``_PYTHON``; the installation time zone
(``Settings.timezone``) is the default zone of cron expressions.

The clock is injected (``clock=``): it decides misfires, lease expiry, run records and the first run time
of newly synced jobs. APScheduler's own loop still wakes on the real clock, so tests move a job's stored
due time instead of the wall clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apscheduler.events import (
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger

from crawler.config import Settings
from crawler.errors import TertibError
from scheduler import definitions as defs
from scheduler.config import SchedulerSettings
from scheduler.jobs import JobOutcome, JobRunner, local_time, plan_run
from scheduler.lease import SERVICE_LEASE, Clock, Leases, new_holder
from storage.db import Database
from storage.models import utcnow

log = logging.getLogger(__name__)

JOBSTORE_TABLE = "apscheduler_jobs"
JOB_FUNC = "scheduler.jobs:run_job_by_name"


class SchedulerBusy(TertibError):
    """Another scheduler service holds this database's service lease."""


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.added, self.changed, self.paused, self.resumed, self.removed, self.invalid))


class _Scheduler(BackgroundScheduler):
    """BackgroundScheduler that counts its processing passes, so ``--once`` knows one has happened."""

    def __init__(self, **options: Any) -> None:
        self.passes = 0
        self._pass_done = threading.Condition()
        super().__init__(**options)

    def _process_jobs(self) -> float | None:
        # APScheduler 3's loop makes one more pass after shutdown() (state STOPPED, not PAUSED): that
        # pass would submit due jobs to a stopped executor and move their due times past the missed
        # runs, losing them for the next start. Only a running scheduler processes jobs.
        if self.state != STATE_RUNNING:
            return None
        wait: float | None = super()._process_jobs()
        with self._pass_done:
            self.passes += 1
            self._pass_done.notify_all()
        return wait

    def wait_for_pass(self, after: int, timeout: float) -> bool:
        with self._pass_done:
            return self._pass_done.wait_for(lambda: self.passes > after, timeout=timeout)


class TertibExecutor(BaseExecutor):
    """Runs due jobs on a thread pool through the service (misfire check, coalesce count, subprocess)."""

    def __init__(self, service: SchedulerService, workers: int) -> None:
        super().__init__()
        self.service = service
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tertib-job")
        self._futures: set[Future[Any]] = set()
        self._futures_lock = threading.Lock()

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        # APScheduler updates the job's next run time only after submitting, so here it is still the
        # earliest due time: every due time from it up to run_times[-1] is folded into this run.
        first_due: datetime | None = job.next_run_time
        run_time = run_times[-1]
        future = self._pool.submit(self.service.execute, str(job.id), job.trigger, first_due, run_time)
        with self._futures_lock:
            self._futures.add(future)
        future.add_done_callback(lambda f: self._finished(job, run_time, f))

    def _finished(self, job: Job, run_time: datetime, future: Future[Any]) -> None:
        with self._futures_lock:
            self._futures.discard(future)
        exc = future.exception()
        if exc is not None:
            self._run_job_error(job.id, exc, exc.__traceback__)
            return
        outcome: JobOutcome | None = future.result()
        code = EVENT_JOB_MISSED if outcome is not None and outcome.stats_line.startswith("missed") else 0
        event = JobExecutionEvent(code or EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time)
        self._run_job_success(job.id, [event])

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            with self._futures_lock:
                pending = list(self._futures)
            if not pending:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            wait(pending, timeout=min(remaining, 0.5))

    def busy(self) -> int:
        with self._futures_lock:
            return len(self._futures)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


class SchedulerService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        sched: SchedulerSettings,
        *,
        clock: Clock = utcnow,
        holder: str | None = None,
        runner: JobRunner | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.sched = sched
        self.clock = clock
        self.holder = holder or new_holder()
        self.leases = Leases(db, clock)
        self.runner = runner or JobRunner(db, settings, sched, clock=clock, holder=self.holder)
        self.executor = TertibExecutor(self, sched.workers)
        self.scheduler: _Scheduler | None = None
        self.outcomes: list[JobOutcome] = []
        self._outcomes_lock = threading.Lock()

    # -- life cycle --------------------------------------------------------------------------------
    def open(self) -> SyncReport:
        """Take the service lease, start APScheduler paused and sync the definitions."""
        # 1. the service lease
        if not self.leases.acquire(SERVICE_LEASE, self.holder, self.sched.lease_seconds):
            other = self.leases.get(SERVICE_LEASE)
            who = f"{other.holder}, lease until {other.expires_at:%Y-%m-%d %H:%M:%S} UTC" if other else "?"
            raise SchedulerBusy(
                f"another scheduler is running on this database ({who}); stop it first or wait for its "
                "lease to expire"
            )
        try:
            # the previous service's orphans (it was killed with -9): killed and recorded interrupted
            settled = self.runner.settle_orphans()
            if settled:
                log.warning("scheduler settled runs of a dead scheduler: %s", ", ".join(settled))
            # 2. APScheduler on the project database, paused until the definitions are in
            scheduler = _Scheduler(
                jobstores={"default": SQLAlchemyJobStore(engine=self.db.engine, tablename=JOBSTORE_TABLE)},
                executors={"default": self.executor},
                job_defaults={
                    "coalesce": True,
                    "max_instances": 1,
                    "misfire_grace_time": int(self.sched.misfire_grace),
                },
                timezone="UTC",
            )
            scheduler.add_listener(self._on_max_instances, EVENT_JOB_MAX_INSTANCES)
            scheduler.start(paused=True)
            self.scheduler = scheduler
            with self.db.session() as session:
                created = defs.ensure_builtins(session, actor=self.settings.actor_name())
            if created:
                log.info("scheduler created built-in jobs=%s", ",".join(created))
            # 3. definitions → job store
            return self.sync()
        except BaseException:
            self._shutdown_scheduler()
            self.leases.release(SERVICE_LEASE, self.holder)
            raise

    def resume(self) -> None:
        # 4. start processing due jobs
        assert self.scheduler is not None, "open() first"
        self.scheduler.resume()

    def run_once(self, timeout: float | None = None) -> list[JobOutcome]:
        """Process what is due now (missed runs coalesced), wait for it, and return the outcomes."""
        assert self.scheduler is not None, "open() first"
        before = self.scheduler.passes
        self.resume()
        self.scheduler.wait_for_pass(before, timeout=60)
        self.scheduler.pause()
        self.executor.wait_idle(timeout if timeout is not None else self.sched.job_timeout + 60)
        with self._outcomes_lock:
            return list(self.outcomes)

    def serve(self, stop: threading.Event, *, on_tick: Callable[[], None] | None = None) -> None:
        """Run until ``stop`` is set, renewing the lease and re-syncing every poll interval."""
        self.resume()
        renew_every = max(0.5, min(self.sched.poll, self.sched.lease_seconds / 3))
        next_sync = time.monotonic() + self.sched.poll
        while not stop.wait(renew_every):
            # 5. keep the lease, pick up edited definitions
            if not self.leases.renew(SERVICE_LEASE, self.holder, self.sched.lease_seconds) and not (
                self.leases.acquire(SERVICE_LEASE, self.holder, self.sched.lease_seconds)
            ):
                log.error("scheduler lost its service lease to another process; stopping")
                return
            if time.monotonic() >= next_sync:
                next_sync = time.monotonic() + self.sched.poll
                self.sync()
            if on_tick is not None:
                on_tick()

    def close(self, stop_timeout: float | None = None) -> int:
        """Stop: no new runs, wait for running ones up to the stop timeout, then kill them.
        Returns how many job subprocesses had to be killed."""
        # 6. stop cleanly
        timeout = self.sched.stop_timeout if stop_timeout is None else stop_timeout
        killed = 0
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
        if self.executor.busy():
            log.info(
                "scheduler stopping: waiting up to %ss for %d running job(s)", timeout, self.executor.busy()
            )
        if not self.executor.wait_idle(timeout):
            killed = self.runner.kill_all(f"killed: scheduler stopped (stop timeout {timeout:g}s)")
            log.warning("scheduler stop timeout reached: killing %d job subprocess(es)", killed)
            self.executor.wait_idle(30)
        self._shutdown_scheduler()
        self.leases.release(SERVICE_LEASE, self.holder)
        return killed

    def _shutdown_scheduler(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.scheduler = None

    # -- definitions → job store ------------------------------------------------------------------
    def sync(self) -> SyncReport:
        """Make the job store match the ``Sweep`` definitions (see the module docstring, step 3)."""
        assert self.scheduler is not None, "open() first"
        report = SyncReport()
        now = self.clock()
        tz = self.settings.timezone
        wanted: dict[str, tuple[CronTrigger, str, bool]] = {}
        with self.db.session() as session:
            for row in defs.all_definitions(session):
                if not row.schedule:
                    continue
                try:
                    trigger = defs.trigger_for(row, tz)
                except TertibError as exc:
                    report.invalid.append(row.name)
                    log.warning("job=%s has an unusable schedule %r: %s", row.name, row.schedule, exc)
                    continue
                if trigger is not None:
                    wanted[row.name] = (trigger, f"{row.name} [{row.schedule}]", row.paused)
        jobs = {str(job.id): job for job in self.scheduler.get_jobs()}
        for name, (trigger, fingerprint, paused) in wanted.items():
            job = jobs.get(name)
            next_time = None if paused else trigger.get_next_fire_time(None, now)
            if job is None:
                self.scheduler.add_job(
                    JOB_FUNC,
                    trigger=trigger,
                    args=[name],
                    id=name,
                    name=fingerprint,
                    next_run_time=next_time,
                    replace_existing=True,
                )
                report.added.append(name)
            elif job.name != fingerprint:
                self.scheduler.modify_job(name, name=fingerprint, trigger=trigger, next_run_time=next_time)
                report.changed.append(name)
            elif paused and job.next_run_time is not None:
                self.scheduler.modify_job(name, next_run_time=None)
                report.paused.append(name)
            elif not paused and job.next_run_time is None:
                self.scheduler.modify_job(name, next_run_time=next_time)
                report.resumed.append(name)
        for name in set(jobs) - set(wanted):
            self.scheduler.remove_job(name)
            report.removed.append(name)
        if report:
            log.info(
                "scheduler sync added=%s changed=%s paused=%s resumed=%s removed=%s invalid=%s",
                report.added,
                report.changed,
                report.paused,
                report.resumed,
                report.removed,
                report.invalid,
            )
        return report

    def next_run_times(self) -> dict[str, datetime | None]:
        assert self.scheduler is not None, "open() first"
        return {str(job.id): job.next_run_time for job in self.scheduler.get_jobs()}

    def set_next_run_time(self, name: str, when: datetime) -> None:
        """Move a stored job's due time (tests; an operator catching up a run by hand)."""
        assert self.scheduler is not None, "open() first"
        self.scheduler.modify_job(name, next_run_time=when)

    # -- running -------------------------------------------------------------------------------------
    def execute(
        self, name: str, trigger: CronTrigger, first_due: datetime | None, run_time: datetime
    ) -> JobOutcome | None:
        """One due run (called on an executor thread): missed → recorded skip; else run it."""
        plan = plan_run(trigger, first_due, run_time, self.clock(), self.sched.misfire_grace)
        tz = self.settings.timezone
        if not plan.run:
            missed = plan.coalesced + 1
            outcome = self.runner.record_skip(
                name,
                f"missed: due {local_time(run_time, tz)} ({missed} run(s)), late by "
                f"{plan.late_by.total_seconds() / 60:.0f} min > grace "
                f"{self.sched.misfire_grace / 60:.0f} min",
                scheduled_for=run_time,
                coalesced=plan.coalesced,
            )
            self._keep([outcome])
            return outcome
        if plan.coalesced:
            log.info("job=%s coalesced=%d missed run(s) into the run due %s", name, plan.coalesced, run_time)
        outcomes = self.runner.run(name, scheduled_for=run_time, coalesced=plan.coalesced)
        self._keep(outcomes)
        for outcome in outcomes:
            if outcome.status != "ok":  # quiet by default, but a failing job is worth a warning
                log.warning(
                    "job=%s status=%s exit=%s job_run=%d stats=%r",
                    outcome.name,
                    outcome.status,
                    outcome.exit_code,
                    outcome.job_run_id,
                    outcome.stats_line,
                )
        return outcomes[0] if outcomes else None

    def _keep(self, outcomes: list[JobOutcome]) -> None:
        with self._outcomes_lock:
            self.outcomes.extend(outcomes)

    def _on_max_instances(self, event: JobSubmissionEvent) -> None:
        run_time = event.scheduled_run_times[-1] if event.scheduled_run_times else None
        outcome = self.runner.record_skip(
            str(event.job_id),
            "overlap: the previous run was still running when this one was due",
            scheduled_for=run_time,
        )
        self._keep([outcome])
