"""The scheduler service: job store persistence, due runs, coalescing, overlap, one service, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler import cli_common
from crawler.registry import default_registry
from scheduler import definitions as defs
from scheduler.config import scheduler_settings
from scheduler.lease import SERVICE_LEASE, Leases
from scheduler.service import SchedulerBusy, SchedulerService
from storage.models import JobRun

pytestmark = pytest.mark.both_backends

REPO = Path(__file__).resolve().parents[1]


def service(clock: Callable[[], datetime] | None = None, **sched: object) -> SchedulerService:
    s = cli_common.settings()
    return SchedulerService(
        cli_common.database(), s, scheduler_settings(s, **sched), **({"clock": clock} if clock else {})
    )


def add_job(name: str, cron: str, command: str = "status", *, builtins_paused: bool = True) -> None:
    """Add a ``--command`` job; the built-ins are paused so only this job can be due."""
    with cli_common.database().session() as session:
        defs.ensure_builtins(session)
        for builtin in defs.BUILTINS:
            defs.set_paused(session, builtin.name, builtins_paused)
        defs.add(
            session,
            registry=default_registry(),
            name=name,
            cron=cron,
            tz="UTC",
            default_tz="Asia/Jakarta",
            command=command,
        )


def job_runs(name: str) -> list[JobRun]:
    with cli_common.database().session() as session:
        return list(session.scalars(select(JobRun).where(JobRun.job_name == name).order_by(JobRun.id)))


def hourly_half_an_hour_ago() -> tuple[str, datetime]:
    """An hourly cron whose latest fire time was ~30 minutes ago (never near a boundary)."""
    last = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)
    return f"{last.minute} * * * *", last


def store_job_due(name: str, hours_ago: float) -> None:
    """Sync ``name`` into the job store as a service running ``hours_ago`` would have, then stop:
    the runs since then are due (the service was down)."""
    past = datetime.now(UTC) - timedelta(hours=hours_ago)
    svc = service(clock=lambda: past)
    svc.open()
    svc.close()


def fake_python(tmp_path: Path, sleep: float) -> str:
    script = tmp_path / "slow-python"
    script.write_text(
        f'#!/bin/sh\necho $$ > {tmp_path / "child.pid"}\nsleep {sleep}\nexec "{sys.executable}" "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def test_jobs_persist_in_the_store_across_service_restarts() -> None:
    add_job("nightly", "0 2 * * *", builtins_paused=False)
    first = service()
    report = first.open()
    assert sorted(report.added) == [
        "discovery-background",
        "evidence-verify",
        "follow-sellers",
        "model-retrain",
        "nightly",
        "rechecks-due",
    ]  # discovery has no cron
    stored = first.next_run_times()
    first.close()
    second = service()
    report = second.open()
    try:
        assert not report  # nothing to add or change: the store kept the jobs
        assert second.next_run_times() == stored
        with cli_common.database().session() as session:
            defs.set_paused(session, "nightly", True)
            defs.edit(
                session,
                "rechecks-due",
                registry=default_registry(),
                default_tz="Asia/Jakarta",
                cron="15 * * * *",
            )
            defs.remove(session, "nightly")
        report = second.sync()
        assert report.removed == ["nightly"] and report.changed == ["rechecks-due"]
        assert "nightly" not in second.next_run_times()
    finally:
        second.close()
    assert "apscheduler_jobs" in cli_common.database().table_names()


def test_second_service_refuses_to_start_while_the_first_holds_the_lease() -> None:
    first = service()
    first.open()
    try:
        with pytest.raises(SchedulerBusy, match="another scheduler is running"):
            service().open()
        proc = subprocess.run(
            [sys.executable, "-m", "crawler.cli", "scheduler", "run", "--once"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert proc.returncode == 1
        assert proc.stderr.strip().startswith("error: another scheduler is running")
        assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    finally:
        first.close()
    again = service()
    again.open()  # the lease was released on close
    again.close()


def test_stale_service_lease_is_taken_over() -> None:
    clock_now = [datetime.now(UTC)]
    Leases(cli_common.database(), lambda: clock_now[0]).acquire(SERVICE_LEASE, "crashed:1:x", ttl=60)
    clock_now[0] += timedelta(seconds=61)
    svc = service(clock=lambda: clock_now[0])
    svc.open()
    info = svc.leases.get(SERVICE_LEASE)
    assert info is not None and info.holder == svc.holder
    svc.close()


def test_due_job_runs_once_in_a_subprocess_with_missed_runs_coalesced() -> None:
    cron, last_fire = hourly_half_an_hour_ago()
    add_job("status-check", cron)
    store_job_due("status-check", hours_ago=2.75)  # due at -2h30, -1h30 and -30min
    cmd = [sys.executable, "-m", "crawler.cli", "scheduler", "run", "--once"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    (run,) = job_runs("status-check")
    assert run.status == "ok" and run.exit_code == 0
    assert run.scheduled_for == last_fire and run.coalesced == 2
    again = service()
    again.open()
    try:
        assert again.run_once(timeout=30) == []  # the stored due time moved on: it ran once
    finally:
        again.close()
    assert len(job_runs("status-check")) == 1


def test_run_missed_beyond_the_grace_time_is_recorded_not_run() -> None:
    cron, last_fire = hourly_half_an_hour_ago()
    add_job("status-check", cron)
    store_job_due("status-check", hours_ago=1.75)  # due at -1h30 and -30min
    svc = service(misfire_grace=600)
    svc.open()
    try:
        (outcome,) = svc.run_once(timeout=30)
    finally:
        svc.close()
    assert outcome.status == "skipped" and outcome.stats_line.startswith("missed")
    (run,) = job_runs("status-check")
    assert run.status == "skipped" and run.coalesced == 1 and run.scheduled_for == last_fire
    assert run.exit_code is None  # nothing was started


def test_overlapping_trigger_is_skipped_and_recorded(tmp_path: Path) -> None:
    cron, _ = hourly_half_an_hour_ago()
    add_job("slow", cron)
    store_job_due("slow", hours_ago=0.75)
    svc = service(python=fake_python(tmp_path, sleep=3))
    svc.open()
    try:
        svc.resume()
        deadline = time.monotonic() + 20
        while not svc.runner.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert svc.runner.running() == 1
        svc.set_next_run_time("slow", datetime.now(UTC))  # the trigger fires again mid-run
        deadline = time.monotonic() + 20
        while len(job_runs("slow")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert svc.executor.wait_idle(30)
    finally:
        svc.close()
    runs = job_runs("slow")
    assert sorted(r.status for r in runs) == ["ok", "skipped"]
    skipped = next(r for r in runs if r.status == "skipped")
    assert skipped.stats_line.startswith("overlap")


def _start_service(tmp_path: Path, sleep: float, *extra: str) -> subprocess.Popen[str]:
    cron, _ = hourly_half_an_hour_ago()
    add_job("slow", cron)
    store_job_due("slow", hours_ago=0.75)
    env = {**os.environ, "TERTIB_SCHEDULER_PYTHON": fake_python(tmp_path, sleep)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "scheduler", "run", "--poll", "1", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if [r for r in job_runs("slow") if r.status == "running"]:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the job never started: {proc.communicate()}")


# SQLite alone: what this checks (file formats, matching quality, process signals) does not depend on the
# database, and on both backends it would add seconds to every run (tests/conftest.py).
@pytest.mark.sqlite_only
def test_sigterm_stops_after_the_running_job(tmp_path: Path) -> None:
    proc = _start_service(tmp_path, sleep=2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "scheduler stopped" in out and "killed" not in out
    (run,) = job_runs("slow")
    assert run.status == "ok" and run.exit_code == 0  # finished, not cut off
    assert Leases(cli_common.database()).get(SERVICE_LEASE) is None


# SQLite alone: what this checks (file formats, matching quality, process signals) does not depend on the
# database, and on both backends it would add seconds to every run (tests/conftest.py).
@pytest.mark.sqlite_only
def test_sigterm_kills_the_job_at_the_stop_timeout(tmp_path: Path) -> None:
    proc = _start_service(tmp_path, 60, "--stop-timeout", "1")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 15
    assert "killed 1 running job" in out
    (run,) = job_runs("slow")
    assert run.status == "failed" and run.stats_line.startswith("killed: scheduler stopped")
    with pytest.raises(ProcessLookupError):
        os.kill(int((tmp_path / "child.pid").read_text()), 0)
