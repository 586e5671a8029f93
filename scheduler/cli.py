"""``tertib schedule …`` (definitions and history) and ``tertib scheduler run`` (the service).

Registered in ``crawler/cli.py`` as ``schedule`` = :data:`app` and ``scheduler`` = :data:`service_app`.
Definitions are ``Sweep`` rows (``scheduler.definitions``); the service syncs them into APScheduler's job
store (``scheduler.service``); every run is a ``JobRun`` row (``scheduler.jobs``). Times are stored in
UTC and shown in the installation time zone (WIB by default, ``TERTIB_TIMEZONE``). Service settings:
see ``scheduler.config`` (``TERTIB_SCHEDULER_*``).

To add a verb: add a function decorated with ``@app.command("verb")`` that opens
``common.database()`` and raises ``crawler.errors.TertibError`` subclasses for user errors.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Column, Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler import cli_common as common
from crawler.errors import TertibError
from scheduler import definitions as defs
from scheduler.config import scheduler_settings
from scheduler.jobs import JobOutcome, JobRunner, local_time
from scheduler.lease import Leases, job_lease
from scheduler.service import SchedulerService
from storage.models import JobRun, Sweep, utcnow

app = typer.Typer(no_args_is_help=True, help="Scheduled sweeps, rechecks and verification jobs.")
service_app = typer.Typer(no_args_is_help=True, help="Run the scheduler service.")

NameArg = Annotated[str, typer.Argument(help="Schedule name, e.g. nightly.")]


def _tz() -> str:
    return common.settings().timezone


def _when(value: datetime | None) -> str:
    return local_time(value, _tz()) if value is not None else "—"


def _cron_text(row: Sweep) -> str:
    if not row.schedule:
        return "after each sweep" if defs.kind_of(row) == "builtin:discovery" else "—"
    cron, tz = defs.split_schedule(row.schedule, _tz())
    return cron if tz == _tz() else f"{cron} ({tz})"


def _short(value: datetime) -> str:
    return value.astimezone(ZoneInfo(_tz())).strftime("%a %d %b %H:%M")


def _zone_abbrev() -> str:
    return utcnow().astimezone(ZoneInfo(_tz())).strftime("%Z")


def _next_runs(row: Sweep, count: int = 3, *, short: bool = False) -> list[str]:
    if row.paused or not row.schedule:
        return []
    trigger = defs.trigger_for(row, _tz())
    times = defs.next_runs(trigger, utcnow(), count) if trigger else []
    return [_short(t) if short else _when(t) for t in times]


def _last_run(session: Session, name: str) -> JobRun | None:
    return session.scalars(
        select(JobRun).where(JobRun.job_name == name).order_by(JobRun.id.desc()).limit(1)
    ).first()


@contextmanager
def _session_with_builtins() -> Iterator[Session]:
    """A session on the installation's database, with the built-in jobs present."""
    with common.database().session() as session:
        defs.ensure_builtins(session, actor=common.settings().actor_name())
        yield session


def _print_definition(row: Sweep) -> None:
    state = "[yellow]paused[/]" if row.paused else "active"
    common.console.print(f"[bold]{row.name}[/] ({state}): {defs.describe(row)}")
    common.console.print(f"  cron      {_cron_text(row)}")
    for i, when in enumerate(_next_runs(row)):
        common.console.print(f"  {'next runs' if i == 0 else '':9} {when}")


# -- definitions ---------------------------------------------------------------------------------


@app.command("add")
def add(
    name: NameArg,
    cron: Annotated[str, typer.Option("--cron", help='Crontab expression, e.g. "0 2 * * *" (02:00 daily).')],
    platform: Annotated[
        list[str] | None, typer.Option("--platform", "-p", help="Platform to sweep (repeat); default all.")
    ] = None,
    max_pages: Annotated[int, typer.Option("--max-pages", help="Result pages per query.")] = 2,
    terms: Annotated[str, typer.Option("--terms", help="'active' (the lexicon) or a terms file.")] = "active",
    tz: Annotated[
        str | None, typer.Option("--tz", help="Time zone of the cron (default Asia/Jakarta).")
    ] = None,
    command: Annotated[
        str | None,
        typer.Option("--command", help='Run another tertib verb instead of a sweep, e.g. "audit report".'),
    ] = None,
) -> None:
    """Schedule a sweep (or another tertib command) by cron, in WIB unless --tz says otherwise.

    Example: tertib schedule add nightly --cron "0 2 * * *"
    """
    with _session_with_builtins() as session:
        row = defs.add(
            session,
            name=name,
            cron=cron,
            tz=tz or _tz(),
            default_tz=_tz(),
            platforms=platform or [],
            max_pages=max_pages,
            terms=terms,
            command=command,
            actor=common.settings().actor_name(),
            registry=common.settings().registry,
        )
        common.console.print(f"added schedule {row.name}")
        _print_definition(row)


@app.command("edit")
def edit(
    name: NameArg,
    cron: Annotated[str | None, typer.Option("--cron", help="New crontab expression.")] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="New time zone of the cron.")] = None,
    platform: Annotated[
        list[str] | None, typer.Option("--platform", "-p", help="Platforms to sweep (replaces the list).")
    ] = None,
    max_pages: Annotated[int | None, typer.Option("--max-pages", help="Result pages per query.")] = None,
    terms: Annotated[str | None, typer.Option("--terms", help="'active' or a terms file.")] = None,
    command: Annotated[str | None, typer.Option("--command", help="New tertib command line.")] = None,
    no_cron: Annotated[
        bool, typer.Option("--no-cron", help="Drop the cron (discovery then runs only after sweeps).")
    ] = False,
) -> None:
    """Change a schedule, built-in jobs included; the running service picks it up at its next poll.

    Example: tertib schedule edit rechecks-due --cron "30 * * * *"
    """
    with _session_with_builtins() as session:
        row = defs.edit(
            session,
            name,
            default_tz=_tz(),
            cron=cron,
            tz=tz,
            platforms=platform,
            max_pages=max_pages,
            terms=terms,
            command=command,
            no_cron=no_cron,
            registry=common.settings().registry,
        )
        common.console.print(f"changed schedule {row.name}")
        _print_definition(row)


@app.command("list")
def list_() -> None:
    """List every schedule with its next three run times (WIB) and its last run.

    Example: tertib schedule list
    """
    with _session_with_builtins() as session:
        table = Table(
            Column("name", no_wrap=True),
            "runs",
            "cron",
            "state",
            Column(f"next runs ({_zone_abbrev()})", no_wrap=True),
            "last run",
            title_justify="left",
        )
        for row in defs.all_definitions(session):
            last = _last_run(session, row.name)
            table.add_row(
                row.name,
                defs.summary(row),
                _cron_text(row),
                "paused" if row.paused else "active",
                "\n".join(_next_runs(row, short=True)) or "—",
                f"{last.status} {_short(last.started_at)}" if last else "—",
            )
        common.console.print(table)


@app.command("show")
def show(name: NameArg) -> None:
    """Show one schedule: what it runs, its cron, next runs, lease and recent runs.

    Example: tertib schedule show nightly
    """
    with _session_with_builtins() as session:
        row = defs.get(session, name)
        _print_definition(row)
        try:
            args = defs.command_for(row, sweep_run_id=0)
            shown = " ".join(args).replace("--run 0", "--run <sweep run>")
        except TertibError as exc:
            shown = str(exc)
        common.console.print(f"  command   tertib {shown}")
        common.console.print(f"  created   {_when(row.created_at)} by {row.created_by or '—'}")
        _history_table(session, name, 5)
    lease = Leases(common.database()).get(job_lease(name))
    if lease is not None and lease.expires_at > utcnow():
        common.console.print(f"  running   held by {lease.holder} until {_when(lease.expires_at)}")


@app.command("pause")
def pause(name: NameArg) -> None:
    """Pause a schedule (built-ins too); missed runs while paused are not made up.

    Example: tertib schedule pause nightly
    """
    with _session_with_builtins() as session:
        defs.set_paused(session, name, True)
    common.console.print(f"paused {name}")


@app.command("resume")
def resume(name: NameArg) -> None:
    """Resume a paused schedule from its next cron time.

    Example: tertib schedule resume nightly
    """
    with _session_with_builtins() as session:
        row = defs.set_paused(session, name, False)
        common.console.print(f"resumed {name}")
        _print_definition(row)


@app.command("remove")
def remove(name: NameArg) -> None:
    """Delete a schedule (its run history stays). Built-in jobs can only be paused.

    Example: tertib schedule remove nightly
    """
    with _session_with_builtins() as session:
        defs.remove(session, name)
    common.console.print(f"removed {name}")


@app.command("run-now")
def run_now(name: NameArg) -> None:
    """Run a schedule's job once now, in a subprocess, and record it in the history.

    Example: tertib schedule run-now rechecks-due
    """
    with _session_with_builtins() as session:
        defs.get(session, name)
    s = common.settings()
    runner = JobRunner(common.database(), s, scheduler_settings(s))
    outcomes = runner.run(name)
    for outcome in outcomes:
        _print_outcome(outcome)
    first = outcomes[0]
    if first.status != "ok":
        raise TertibError(f"job {name} {first.status}: {first.stats_line}")


def _print_outcome(outcome: JobOutcome) -> None:
    colour = {"ok": "green", "skipped": "yellow"}.get(outcome.status, "red")
    extra = f", sweep run #{outcome.sweep_run_id}" if outcome.sweep_run_id else ""
    common.console.print(
        f"job run #{outcome.job_run_id} {outcome.name}: [{colour}]{outcome.status}[/] "
        f"(exit {'—' if outcome.exit_code is None else outcome.exit_code}, {outcome.duration:.1f}s{extra}) "
        f"{outcome.stats_line}",
        highlight=False,
    )
    if outcome.log_path is not None:
        common.console.print(f"  log {outcome.log_path}", highlight=False)


def _history_table(session: Session, name: str | None, limit: int) -> None:
    query = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
    if name:
        query = query.where(JobRun.job_name == name)
    runs = list(session.scalars(query))
    table = Table(
        "run",
        "job",
        "due",
        "started",
        "took",
        "status",
        "exit",
        "coalesced",
        "sweep run",
        "stats",
        title=f"Job runs (times {_tz()})",
        title_justify="left",
    )
    for run in runs:
        took = f"{(run.ended_at - run.started_at).total_seconds():.1f}s" if run.ended_at else "running"
        colour = {"ok": "green", "skipped": "yellow", "running": "cyan"}.get(run.status, "red")
        table.add_row(
            str(run.id),
            run.job_name,
            _when(run.scheduled_for) if run.scheduled_for else "by hand",
            _when(run.started_at),
            took,
            f"[{colour}]{run.status}[/]",
            "" if run.exit_code is None else str(run.exit_code),
            str(run.coalesced or ""),
            f"#{run.sweep_run_id}" if run.sweep_run_id else "",
            run.stats_line,
        )
    common.console.print(table)
    if not runs:
        common.console.print("no job runs yet" + (f" for {name}" if name else ""))


@app.command("history")
def history(
    name: Annotated[str | None, typer.Argument(help="Only this schedule's runs.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=100_000, help="How many runs to show.")
    ] = 20,
) -> None:
    """Show recent job runs: when they were due and ran, how long, the outcome, the sweep run produced.

    Example: tertib schedule history nightly
    """
    with _session_with_builtins() as session:
        if name is not None and not _has_runs(session, name):
            defs.get(session, name)  # a name that never existed is a typo: say so
        _history_table(session, name, limit)


def _has_runs(session: Session, name: str) -> bool:
    return session.scalars(select(JobRun.id).where(JobRun.job_name == name).limit(1)).first() is not None


# -- the service ----------------------------------------------------------------------------------


@service_app.callback()
def service_group() -> None:
    """Run the scheduler service (APScheduler on the project database)."""


@service_app.command("run")
def run(
    once: Annotated[bool, typer.Option("--once", help="Run what is due now, then exit.")] = False,
    poll: Annotated[
        float | None, typer.Option("--poll", help="Seconds between definition syncs (default 30).")
    ] = None,
    grace: Annotated[
        int | None, typer.Option("--grace", help="Misfire grace time in seconds (default 6 h).")
    ] = None,
    stop_timeout: Annotated[
        float | None,
        typer.Option("--stop-timeout", help="On SIGTERM, seconds to wait for running jobs (default 120)."),
    ] = None,
) -> None:
    """Run scheduled jobs until SIGTERM/SIGINT; one service per database.

    Example: tertib -v scheduler run
    """
    s = common.settings()
    sched = scheduler_settings(s, poll=poll, misfire_grace=grace, stop_timeout=stop_timeout)
    service = SchedulerService(common.database(), s, sched)
    service.open()
    stop = threading.Event()
    signals = {"count": 0}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        signals["count"] += 1
        if once or signals["count"] > 1:
            service.runner.kill_all(f"killed: scheduler stopped by {signal.Signals(signum).name}")
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        nexts = {k: v for k, v in service.next_run_times().items() if v is not None}
        upcoming = min(nexts.items(), key=lambda kv: kv[1]) if nexts else None
        common.console.print(
            f"scheduler {service.holder}: {len(nexts)} active job(s)"
            + (f"; next {upcoming[0]} at {_when(upcoming[1])}" if upcoming else ""),
            highlight=False,
        )
        if once:
            for outcome in service.run_once():
                _print_outcome(outcome)
            if not service.outcomes:
                common.console.print("nothing was due")
            service.close()
        else:
            service.serve(stop)
            killed = service.close()
            common.console.print(
                "scheduler stopped" + (f" (killed {killed} running job(s))" if killed else ""),
                highlight=False,
            )
    except BaseException:
        service.close(stop_timeout=0)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
