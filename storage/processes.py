"""Which process runs a sweep, recheck or scheduled job, and whether it is still there.

A run records ``pid``, ``host`` and ``start_token`` (the process's start time as the kernel reports it,
so a pid reused after a reboot or by another program is never taken for the run's process).
:func:`reap_dead_runs` — called at the start of every command that opens the database
(``crawler.cli_common.database``) and by the scheduler — marks this host's ``running`` sweep runs and job
runs whose process is gone ``interrupted``. Runs of other hosts are left to their own host's commands
(a pid means nothing elsewhere). A job run whose scheduler died but whose child still runs is left
``running``: the child stops itself when its parent goes (``crawler.cli`` watches it) or the next
scheduler kills it before taking the job's lease (``scheduler.jobs.settle_orphans``).

Rows from before migration 0006 have no pid and are left alone.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import JobRun, SweepRun

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class ProcessId:
    pid: int
    host: str
    start_token: str

    def holder(self) -> str:
        return f"{self.host}:{self.pid}:{self.start_token}"


def hostname() -> str:
    return socket.gethostname()[:200]


def start_token(pid: int) -> str | None:
    """The process's start time (seconds since the epoch, 2 decimals), or None when it does not exist."""
    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def this_process() -> ProcessId:
    return ProcessId(os.getpid(), hostname(), start_token(os.getpid()) or "")


def of_pid(pid: int) -> ProcessId | None:
    token = start_token(pid)
    return ProcessId(pid, hostname(), token) if token is not None else None


def alive(pid: int | None, host: str | None, token: str | None) -> bool | None:
    """True/False for a process on this host; None when it cannot be told (another host, no pid)."""
    if not pid or not host or host != hostname():
        return None
    current = start_token(pid)
    if current is None:
        return False
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.Error:
        return False
    return not token or current == token


def parse_holder(holder: str | None) -> tuple[str | None, int | None, str | None]:
    """``host:pid:start_token[:…]`` (:func:`scheduler.lease.new_holder`) → host, pid, start token (None
    where absent or malformed; an older ``host:pid:random`` holder gives no token, so only its pid is
    checked)."""
    if not holder:
        return None, None, None
    parts = holder.split(":")
    host = parts[0] or None
    pid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    token = parts[2] if len(parts) > 2 and _is_token(parts[2]) else None
    return host, pid, token


def _is_token(text: str) -> bool:
    head, dot, tail = text.partition(".")
    return bool(dot) and head.isdigit() and tail.isdigit()


def holder_alive(holder: str | None) -> bool | None:
    """Whether the process named by a lease or job-run holder string still runs (None: cannot tell)."""
    host, pid, token = parse_holder(holder)
    return alive(pid, host, token)


def kill_group(pid: int, token: str | None, grace: float = 5.0) -> bool:
    """SIGTERM the process group led by ``pid`` (a scheduled job's child runs in its own session), then
    SIGKILL after ``grace`` seconds; only if ``pid`` is still the process that started with ``token``.
    Returns True when something was killed."""
    import signal
    import time

    if alive(pid, hostname(), token) is not True:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return sig != signal.SIGTERM
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if alive(pid, hostname(), token) is not True:
                return True
            time.sleep(0.1)
    return True


def reap_dead_runs(session: Session, *, now: datetime | None = None) -> list[str]:
    """Mark this host's running runs whose process is gone ``interrupted``; returns what was marked."""
    now = now or datetime.now(UTC)
    marked: list[str] = []
    for run in session.scalars(select(SweepRun).where(SweepRun.status == "running")):
        if alive(run.pid, run.host, run.start_token) is False:
            run.status = INTERRUPTED
            run.ended_at = now
            run.needs_attention = [
                *(run.needs_attention or []),
                f"interrupted: its process {run.pid} on {run.host} is gone (killed or crashed)",
            ]
            marked.append(f"{run.kind} run #{run.id}")
    for job in session.scalars(select(JobRun).where(JobRun.status == "running")):
        child = alive(job.pid, job.host, job.start_token)
        scheduler = holder_alive(job.holder)
        # over when its child is gone and no live scheduler is about to record the outcome (or it never
        # started and its scheduler is gone)
        if (child is False and scheduler is not True) or (job.pid is None and scheduler is False):
            job.status = INTERRUPTED
            job.ended_at = now
            job.stats_line = (
                f"interrupted: process {job.pid or '-'} gone, scheduler {job.holder or '-'} "
                f"{'gone' if scheduler is False else 'alive' if scheduler else 'unknown'}"
            )[:300]
            marked.append(f"job run #{job.id} ({job.job_name})")
    for message in marked:
        log.warning("marked %s interrupted: its process is gone", message)
    return marked
