"""Scheduler definitions, cron handling, misfire planning, leases and the job runner (issue #9)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler import cli_common
from crawler.errors import NotFound, UsageError
from crawler.registry import default_registry
from scheduler import definitions as defs
from scheduler.config import SchedulerSettings, scheduler_settings
from scheduler.jobs import JobRunner, meaningful_last_line, plan_run
from scheduler.lease import Leases, job_lease
from storage.db import Database
from storage.models import JobRun, Sweep, SweepRun

pytestmark = pytest.mark.both_backends

T0 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)  # 07:00 WIB
REGISTRY = default_registry()


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def tertib(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=Path(__file__).resolve().parents[1],
    )


def fake_python(tmp_path: Path, body: str) -> str:
    """A stand-in for the interpreter that runs jobs: a shell script receiving ``-m crawler.cli ARGS``."""
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def runner_for(clock: FakeClock | None = None, **sched: object) -> JobRunner:
    s = cli_common.settings()
    return JobRunner(
        cli_common.database(),
        s,
        scheduler_settings(s, **sched),
        **({"clock": clock} if clock else {}),
    )


def add_command_job(name: str, command: str, cron: str = "0 2 * * *") -> None:
    with cli_common.database().session() as session:
        defs.ensure_builtins(session)
        defs.add(
            session,
            registry=REGISTRY,
            name=name,
            cron=cron,
            tz="Asia/Jakarta",
            default_tz="Asia/Jakarta",
            command=command,
        )


def job_runs(name: str | None = None) -> list[JobRun]:
    with cli_common.database().session() as session:
        query = select(JobRun).order_by(JobRun.id)
        if name:
            query = query.where(JobRun.job_name == name)
        return list(session.scalars(query))


# -- cron ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", "*"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("5-7", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("mon,wed", "mon,wed"),
    ],
)
def test_crontab_weekdays_follow_crontab_numbering(field: str, expected: str) -> None:
    assert defs.crontab_weekdays(field) == expected


def test_cron_is_read_in_wib_and_weekday_zero_is_sunday() -> None:
    nightly = defs.build_trigger("0 2 * * *", "Asia/Jakarta")
    assert defs.next_runs(nightly, T0) == [
        datetime(2026, 1, 1, 19, 0, tzinfo=UTC),  # 02:00 WIB on 2 January
        datetime(2026, 1, 2, 19, 0, tzinfo=UTC),
        datetime(2026, 1, 3, 19, 0, tzinfo=UTC),
    ]
    weekly = defs.build_trigger("0 3 * * 0", "Asia/Jakarta")
    first = defs.next_runs(weekly, T0, 1)[0]
    assert first.astimezone(defs.zone("Asia/Jakarta")).strftime("%a %H:%M") == "Sun 03:00"
    with pytest.raises(UsageError):
        defs.build_trigger("0 2 * *", "Asia/Jakarta")
    with pytest.raises(UsageError):
        defs.build_trigger("61 * * * *", "Asia/Jakarta")
    with pytest.raises(UsageError):
        defs.build_trigger("0 2 * * *", "Mars/Olympus")


def test_schedule_string_keeps_a_non_default_zone() -> None:
    stored = defs.join_schedule("0  2 * * *", "Europe/London", "Asia/Jakarta")
    assert stored == "CRON_TZ=Europe/London 0 2 * * *"
    assert defs.split_schedule(stored, "Asia/Jakarta") == ("0 2 * * *", "Europe/London")
    assert defs.join_schedule("0 2 * * *", "Asia/Jakarta", "Asia/Jakarta") == "0 2 * * *"


# -- misfire planning with a fixed clock -----------------------------------------------------------


def test_plan_run_coalesces_missed_runs_within_grace() -> None:
    hourly = defs.build_trigger("0 * * * *", "UTC")
    plan = plan_run(hourly, T0, T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=10), grace=3600)
    assert plan.run and plan.coalesced == 3  # 00:00, 01:00 and 02:00 folded into the 03:00 run
    assert plan.late_by == timedelta(minutes=10)
    on_time = plan_run(hourly, T0, T0, T0 + timedelta(seconds=2), grace=3600)
    assert on_time.run and on_time.coalesced == 0


def test_plan_run_beyond_grace_is_missed() -> None:
    hourly = defs.build_trigger("0 * * * *", "UTC")
    plan = plan_run(hourly, T0, T0 + timedelta(hours=1), T0 + timedelta(hours=3), grace=3600)
    assert not plan.run and plan.coalesced == 1
    assert plan.late_by == timedelta(hours=2)


# -- settings ----------------------------------------------------------------------------------------


def test_scheduler_settings_precedence() -> None:
    env = {"TERTIB_SCHEDULER_MISFIRE_GRACE": "900", "TERTIB_SCHEDULER_POLL": "5"}
    s = scheduler_settings(None, env=env, poll=2.5)
    assert s.misfire_grace == 900 and s.poll == 2.5 and s.workers == SchedulerSettings().workers
    with pytest.raises(ValueError, match="scheduler_poll"):
        scheduler_settings(None, env={"TERTIB_SCHEDULER_POLL": "soon"})


# -- leases --------------------------------------------------------------------------------------------


def test_lease_is_exclusive_and_a_stale_one_is_taken_over(db: Database) -> None:
    clock = FakeClock(T0)
    leases = Leases(db, clock)
    assert leases.acquire("job:nightly", "host-a:1:x", ttl=60)
    assert leases.acquire("job:nightly", "host-a:1:x", ttl=60)  # re-entrant for its holder
    assert not leases.acquire("job:nightly", "host-b:2:y", ttl=60)
    assert leases.held_by_other("job:nightly", "host-b:2:y") is not None
    clock.now = T0 + timedelta(seconds=59)
    assert not leases.acquire("job:nightly", "host-b:2:y", ttl=60)
    clock.now = T0 + timedelta(seconds=61)  # holder a crashed and never renewed
    assert leases.acquire("job:nightly", "host-b:2:y", ttl=60)
    info = leases.get("job:nightly")
    assert info is not None and info.holder == "host-b:2:y"
    assert not leases.renew("job:nightly", "host-a:1:x", ttl=60)  # a learns it lost the lease
    leases.release("job:nightly", "host-a:1:x")  # not a's to release
    assert leases.get("job:nightly") is not None
    leases.release("job:nightly", "host-b:2:y")
    assert leases.get("job:nightly") is None


# -- definitions ------------------------------------------------------------------------------------


def test_builtins_are_created_once_and_cannot_be_removed(db: Database) -> None:
    with db.session() as session:
        assert defs.ensure_builtins(session) == [
            "rechecks-due",
            "discovery",
            "evidence-verify",
            "model-retrain",
            "discovery-background",
            "follow-sellers",
        ]
        assert defs.ensure_builtins(session) == []
        rows = {row.name: row for row in defs.all_definitions(session)}
        assert rows["rechecks-due"].terms_source == "builtin:rechecks"
        assert defs.command_for(rows["rechecks-due"]) == ["recheck", "--due"]
        assert defs.command_for(rows["evidence-verify"]) == ["evidence", "verify", "--all"]
        assert defs.command_for(rows["model-retrain"]) == ["model", "train", "--by", "scheduler"]
        assert defs.command_for(rows["follow-sellers"]) == ["follow", "--no-progress"]
        assert defs.command_for(rows["discovery-background"])[:3] == ["terms", "background", "refresh"]
        assert defs.command_for(rows["discovery"], sweep_run_id=7) == ["terms", "discover", "--run", "7"]
        with pytest.raises(NotFound):
            defs.command_for(rows["discovery"])
        with pytest.raises(UsageError, match="built-in"):
            defs.remove(session, "rechecks-due")
        defs.set_paused(session, "rechecks-due", True)
        defs.edit(session, "rechecks-due", registry=REGISTRY, default_tz="Asia/Jakarta", cron="30 * * * *")
        assert rows["rechecks-due"].schedule == "30 * * * *" and rows["rechecks-due"].paused


def test_sweep_definition_command_line(db: Database, tmp_path: Path) -> None:
    terms = tmp_path / "terms.txt"
    terms.write_text("bal korea\n")
    with db.session() as session:
        row = defs.add(
            session,
            registry=REGISTRY,
            name="nightly",
            cron="0 2 * * *",
            tz="Asia/Jakarta",
            default_tz="Asia/Jakarta",
            platforms=["Shopee", "lazada", "shopee"],
            max_pages=3,
            terms=str(terms),
        )
        assert row.platforms == ["shopee", "lazada"]
        assert defs.command_for(row) == [
            "sweep",
            "--platform",
            "shopee",
            "--platform",
            "lazada",
            "--max-pages",
            "3",
            "--terms",
            str(terms.resolve()),
        ]
        with pytest.raises(defs.ScheduleExists):
            defs.add(
                session,
                registry=REGISTRY,
                name="nightly",
                cron="0 2 * * *",
                tz="UTC",
                default_tz="Asia/Jakarta",
            )
        with pytest.raises(UsageError, match="platform"):
            defs.add(
                session,
                registry=REGISTRY,
                name="x",
                cron="0 2 * * *",
                tz="UTC",
                default_tz="UTC",
                platforms=["ebay"],
            )
        with pytest.raises(UsageError, match="does not exist"):
            defs.add(
                session,
                registry=REGISTRY,
                name="y",
                cron="0 2 * * *",
                tz="UTC",
                default_tz="UTC",
                terms="nope.txt",
            )


def test_meaningful_last_line_skips_table_borders() -> None:
    text = "sweep run #4 completed\n│ users │ 0 │\n└───┴───┘\n\n"
    assert meaningful_last_line(text) == "users 0"
    assert meaningful_last_line("╰────╯\n") == ""


# -- schedules persist across processes (the CLI) ----------------------------------------------------


def test_schedules_persist_across_processes_and_show_next_runs_in_wib() -> None:
    added = tertib("schedule", "add", "nightly", "--cron", "0 2 * * *", "-p", "shopee", "--max-pages", "3")
    assert added.returncode == 0, added.stderr
    assert "02:00 WIB" in added.stdout
    listed = tertib("schedule", "list")
    assert listed.returncode == 0, listed.stderr
    for name in ("nightly", "rechecks-due", "discovery", "evidence-verify"):
        assert name in listed.stdout
    assert listed.stdout.count("02:00") >= 3  # the next three nightly runs
    with cli_common.database().session() as session:
        defs.set_paused(session, "nightly", True)
    shown = tertib("schedule", "show", "nightly")
    assert "paused" in shown.stdout and "sweep --platform shopee --max-pages 3 --terms active" in shown.stdout
    bad = tertib("schedule", "add", "broken", "--cron", "0 2 * *")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "5 fields" in bad.stderr
    with cli_common.database().session() as session:
        row = session.scalars(select(Sweep).where(Sweep.name == "nightly")).one()
        assert row.paused and row.max_pages == 3 and row.schedule == "0 2 * * *"


# -- the runner ---------------------------------------------------------------------------------------


def test_run_now_runs_the_command_in_a_subprocess_and_records_history() -> None:
    add_command_job("status-check", "status")
    done = tertib("schedule", "run-now", "status-check")
    assert done.returncode == 0, done.stderr
    (run,) = job_runs("status-check")
    assert run.status == "ok" and run.exit_code == 0 and run.scheduled_for is None
    assert run.ended_at is not None and run.ended_at >= run.started_at
    assert run.stats_line  # the last line of `tertib status`
    log_file = next((cli_common.settings().data_dir / "logs" / "scheduler").glob(f"{run.id:06d}-*.log"))
    assert "data dir" in log_file.read_text()
    history = tertib("schedule", "history", "status-check")
    assert "status-check" in history.stdout and "ok" in history.stdout


def test_failing_job_is_recorded_and_shown_by_status() -> None:
    add_command_job("broken", "status --no-such-option")
    (done,) = runner_for().run("broken")
    assert done.status == "failed" and "No such option" in done.stats_line
    (run,) = job_runs("broken")
    assert run.status == "failed" and run.exit_code == 2
    status = tertib("status")
    assert "failing job broken" in status.stdout


def test_overlapping_run_is_skipped_and_a_stale_lease_is_taken_over() -> None:
    add_command_job("status-check", "status")
    clock = FakeClock(datetime.now(UTC))
    other = Leases(cli_common.database(), clock)
    assert other.acquire(job_lease("status-check"), "elsewhere:99:dead", ttl=60)
    runner = runner_for(clock)
    (skipped,) = runner.run("status-check")
    assert skipped.status == "skipped" and skipped.stats_line.startswith("overlap")
    assert "elsewhere:99:dead" in skipped.stats_line
    clock.now += timedelta(seconds=61)  # the other holder died; its lease expires
    (done,) = runner.run("status-check")
    assert done.status == "ok"
    assert [r.status for r in job_runs("status-check")] == ["skipped", "ok"]
    assert other.get(job_lease("status-check")) is None  # released after the run


# SQLite alone: what this checks (file formats, matching quality, process signals) does not depend on the
# database, and on both backends it would add seconds to every run (tests/conftest.py).
@pytest.mark.sqlite_only
def test_job_timeout_kills_the_subprocess(tmp_path: Path) -> None:
    add_command_job("slow", "status")
    pidfile = tmp_path / "pid"
    python = fake_python(tmp_path, f'echo $$ > {pidfile}\nsleep 30\nexec "{sys.executable}" "$@"\n')
    (done,) = runner_for(job_timeout=1, python=python).run("slow")
    assert done.status == "timeout" and done.duration < 10
    assert done.stats_line.startswith("timeout")
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)


def test_successful_sweep_runs_discovery_on_its_sweep_run(tmp_path: Path) -> None:
    with cli_common.database().session() as session:
        defs.ensure_builtins(session)
        defs.add(
            session,
            registry=REGISTRY,
            name="nightly",
            cron="0 2 * * *",
            tz="Asia/Jakarta",
            default_tz="Asia/Jakarta",
        )
        session.add(SweepRun(platforms=["shopee"], status="completed"))
    # a stand-in `tertib`: the sweep reports its run, discovery echoes what it was asked
    python = fake_python(
        tmp_path,
        'shift 2\ncase "$1" in\n  sweep) echo "args: $*"; echo "sweep run #1 completed: 12 listings";;\n'
        '  terms) echo "discovered 3 proposed terms from $*";;\n  *) exit 9;;\nesac\n',
    )
    outcomes = runner_for(python=python).run("nightly")
    assert [(o.name, o.status) for o in outcomes] == [("nightly", "ok"), ("discovery", "ok")]
    assert outcomes[0].sweep_run_id == 1 and outcomes[0].stats_line == "sweep run #1 completed: 12 listings"
    assert outcomes[1].stats_line == "discovered 3 proposed terms from terms discover --run 1"
    assert outcomes[0].log_path is not None
    assert "args: sweep --max-pages 2 --terms active" in outcomes[0].log_path.read_text()
    runs = job_runs()
    assert runs[0].sweep_run_id == 1 and runs[1].job_name == "discovery"
    with cli_common.database().session() as session:
        defs.set_paused(session, "discovery", True)
    outcomes = runner_for(python=python).run("nightly")
    assert [o.name for o in outcomes] == ["nightly"]  # paused follow-up does not run
