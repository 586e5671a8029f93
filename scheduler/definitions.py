"""Schedule definitions: ``Sweep`` rows are the source of truth for every scheduled job.

A definition is one row of ``sweeps``: ``name``, ``schedule`` (a cron expression), ``paused`` and what
to run. What to run is told by ``terms_source`` (no schema change needed):

- ``active`` or a file path → a **sweep** of ``platforms`` (empty list = every searchable platform)
  with ``max_pages`` pages per query: ``tertib sweep --platform P … --max-pages N --terms SOURCE``.
- ``builtin:rechecks`` → ``tertib recheck --due`` (built-in ``rechecks-due``, hourly).
- ``builtin:discovery`` → ``tertib terms discover --run ID`` (built-in ``discovery``): runs as a
  follow-up of every successful sweep job, on the sweep run that job produced; no cron of its own
  unless one is given with ``tertib schedule edit discovery --cron …``.
- ``builtin:evidence-verify`` → ``tertib evidence verify --all`` (built-in ``evidence-verify``, weekly).
- ``builtin:model-retrain`` → ``tertib model train --by scheduler`` (built-in ``model-retrain``, weekly,
  Sundays 04:00): retrains the detection model from the corpus and every review decision; the retrain
  gate keeps the active model when the new one is not at least as good on held-out data.
- ``builtin:discovery-background`` → ``tertib terms background refresh`` (built-in ``discovery-background``,
  Mondays 01:00): discovery's background of ordinary listings.
- ``builtin:follow-sellers`` → ``tertib follow`` (built-in ``follow-sellers``, daily 05:00): the shops of
  confirmed sellers.
- ``command:ARGS`` → ``tertib ARGS`` (any tertib verb, e.g. ``audit report``); ``tertib schedule add
  --command``.

``schedule`` holds a standard five-field crontab expression (minute hour day month weekday, weekday 0
or 7 = Sunday, as in crontab(5)), read in the installation time zone (``Settings.timezone``, Asia/Jakarta
by default). Another zone is stored as a prefix: ``CRON_TZ=Europe/London 0 2 * * *``. ``None`` means no
timed trigger. APScheduler 3 numbers weekdays from Monday, so :func:`build_trigger` converts numbers to
names before handing the expression over.

Every change a person makes (add, edit, pause, resume, remove, run now) appends a ``schedule_*`` custody
entry here, in the layer that makes it, so ``tertib schedule`` and the web console log alike.

To add a built-in job: add a :class:`Builtin` to :data:`BUILTINS` (its ``marker`` goes into
``terms_source``) and a branch in :func:`command_for`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.errors import NotFound, TertibError, UsageError
from crawler.registry import Registry
from storage import custody
from storage.models import Sweep

KIND_SWEEP = "sweep"
KIND_COMMAND = "command"
BUILTIN_PREFIX = "builtin:"
COMMAND_PREFIX = "command:"
TZ_PREFIX = "CRON_TZ="
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class Builtin:
    name: str
    marker: str  # terms_source value
    schedule: str | None
    description: str


BUILTINS: tuple[Builtin, ...] = (
    Builtin("rechecks-due", "builtin:rechecks", "0 * * * *", "rechecks that are due (tertib recheck --due)"),
    Builtin("discovery", "builtin:discovery", None, "emerging-term discovery after each successful sweep"),
    Builtin(
        "evidence-verify",
        "builtin:evidence-verify",
        "0 3 * * 0",
        "verify every stored evidence record (tertib evidence verify --all)",
    ),
    Builtin(
        "model-retrain",
        "builtin:model-retrain",
        "0 4 * * 0",
        "retrain the detection model from the corpus and review decisions (tertib model train)",
    ),
    Builtin(
        "discovery-background",
        "builtin:discovery-background",
        "0 1 * * 1",
        "refresh discovery's background of ordinary listings (tertib terms background refresh)",
    ),
    Builtin(
        "follow-sellers",
        "builtin:follow-sellers",
        "0 5 * * *",
        "read the shops of confirmed sellers; new candidates to review (tertib follow)",
    ),
)
BUILTIN_BY_MARKER = {b.marker: b for b in BUILTINS}
BUILTIN_BY_NAME = {b.name: b for b in BUILTINS}
DISCOVERY = "discovery"

_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class ScheduleExists(TertibError):
    """A definition with this name exists already."""


def kind_of(row: Sweep) -> str:
    """``sweep``, ``command`` or the built-in marker (``builtin:rechecks`` …)."""
    source = row.terms_source or "active"
    if source.startswith(BUILTIN_PREFIX):
        return source
    if source.startswith(COMMAND_PREFIX):
        return KIND_COMMAND
    return KIND_SWEEP


def summary(row: Sweep) -> str:
    """A few words for tables: ``sweep all``, ``sweep PLATFORM,OTHER``, ``recheck --due`` …"""
    kind = kind_of(row)
    if kind == KIND_SWEEP:
        where = ",".join(row.platforms) if row.platforms else "all"
        terms = "" if row.terms_source == "active" else f" ({Path(row.terms_source).name})"
        return f"sweep {where}{terms}"
    if kind == "builtin:discovery":
        return "terms discover"
    try:
        return " ".join(command_for(row))
    except TertibError:
        return kind


def describe(row: Sweep) -> str:
    kind = kind_of(row)
    if kind in BUILTIN_BY_MARKER:
        return f"built-in: {BUILTIN_BY_MARKER[kind].description}"
    if kind == KIND_COMMAND:
        return f"tertib {row.terms_source[len(COMMAND_PREFIX) :]}"
    platforms = ", ".join(row.platforms) if row.platforms else "all platforms"
    return f"sweep {platforms}; terms {row.terms_source}; {row.max_pages} page(s) per query"


# -- cron ----------------------------------------------------------------------------------------


def split_schedule(schedule: str, default_tz: str) -> tuple[str, str]:
    """``"CRON_TZ=Europe/London 0 2 * * *"`` → (``"0 2 * * *"``, ``"Europe/London"``)."""
    text = schedule.strip()
    if text.startswith(TZ_PREFIX):
        tz_part, _, cron = text.partition(" ")
        return cron.strip(), tz_part[len(TZ_PREFIX) :]
    return text, default_tz


def join_schedule(cron: str, tz: str, default_tz: str) -> str:
    cron = " ".join(cron.split())
    return cron if tz == default_tz else f"{TZ_PREFIX}{tz} {cron}"


def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {name!r} (use a name like Asia/Jakarta)") from None


def _dow_number(token: str) -> int:
    token = token.lower()
    if token in _DOW_NAMES:
        return _DOW_NAMES.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    raise ValueError(f"bad weekday {token!r}")


def crontab_weekdays(field: str) -> str:
    """Standard crontab weekday field (0/7 = Sunday) → APScheduler names (it counts 0 = Monday)."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step <= 0:
            raise ValueError(f"bad step in {part!r}")
        if spec == "*":
            first, last = 0, 6
        elif "-" in spec:
            lo, hi = spec.split("-", 1)
            first, last = _dow_number(lo), _dow_number(hi)
            if hi == "7":
                last = 7
            if last < first:
                raise ValueError(f"bad weekday range {spec!r}")
        else:
            first = last = _dow_number(spec)
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_DOW_NAMES[d] for d in sorted(days))


def build_trigger(cron: str, tz: str) -> CronTrigger:
    """A CronTrigger for a standard crontab expression in ``tz``; UsageError if it is not valid."""
    fields = cron.split()
    if len(fields) != 5:
        raise UsageError(f'cron {cron!r} needs 5 fields (minute hour day month weekday), e.g. "0 2 * * *"')
    timezone = zone(tz)
    try:
        return CronTrigger(
            minute=fields[0],
            hour=fields[1],
            day=fields[2],
            month=fields[3],
            day_of_week=crontab_weekdays(fields[4]),
            timezone=timezone,
        )
    except ValueError as exc:
        raise UsageError(f"invalid cron {cron!r}: {exc}") from None


def trigger_for(row: Sweep, default_tz: str) -> CronTrigger | None:
    if not row.schedule:
        return None
    cron, tz = split_schedule(row.schedule, default_tz)
    return build_trigger(cron, tz)


def next_runs(trigger: CronTrigger, now: datetime, count: int = 3) -> list[datetime]:
    """The next ``count`` fire times strictly after ``now``."""
    out: list[datetime] = []
    previous: datetime | None = None
    current = trigger.get_next_fire_time(None, now)
    while current is not None and len(out) < count:
        if previous is None or current > previous:
            out.append(current)
        previous = current
        current = trigger.get_next_fire_time(current, current)
    return out


def fire_times_between(trigger: CronTrigger, first: datetime, last: datetime) -> int:
    """How many fire times lie in ``[first, last)`` (``first`` itself being one)."""
    count = 0
    current: datetime | None = first
    while current is not None and current < last:
        count += 1
        current = trigger.get_next_fire_time(current, current)
        if count > 100_000:  # a per-minute job missed for months; the exact number no longer matters
            break
    return count


# -- rows ----------------------------------------------------------------------------------------


def ensure_builtins(session: Session, actor: str = "tertib") -> list[str]:
    """Create the built-in definitions that do not exist yet; returns the names created."""
    existing = set(session.scalars(select(Sweep.terms_source).where(Sweep.terms_source.like("builtin:%"))))
    created = []
    for builtin in BUILTINS:
        if builtin.marker in existing:
            continue
        if session.scalars(select(Sweep).where(Sweep.name == builtin.name)).first() is not None:
            continue  # an analyst's own definition took the name; leave it alone
        session.add(
            Sweep(
                name=builtin.name,
                platforms=[],
                terms_source=builtin.marker,
                max_pages=0,
                schedule=builtin.schedule,
                paused=False,
                created_by=actor,
            )
        )
        created.append(builtin.name)
    session.flush()
    return created


def get(session: Session, name: str) -> Sweep:
    row = session.scalars(select(Sweep).where(Sweep.name == name)).first()
    if row is None:
        raise NotFound(f"no schedule named {name!r} (see `tertib schedule list`)")
    return row


def all_definitions(session: Session) -> list[Sweep]:
    return list(session.scalars(select(Sweep).order_by(Sweep.name)))


def discovery_definition(session: Session) -> Sweep | None:
    return session.scalars(select(Sweep).where(Sweep.terms_source == "builtin:discovery")).first()


def validate_platforms(platforms: Sequence[str], registry: Registry) -> list[str]:
    out: list[str] = []
    for platform in platforms:
        p = platform.strip().lower()
        if p not in registry.search_names:
            raise UsageError(f"unknown platform {platform!r}; searchable: {', '.join(registry.search_names)}")
        if p not in out:
            out.append(p)
    return out


def validate_terms(terms: str) -> str:
    if terms == "active":
        return terms
    if terms.startswith((BUILTIN_PREFIX, COMMAND_PREFIX)):
        raise UsageError(f"--terms must be 'active' or a file, not {terms!r}")
    path = Path(terms).expanduser()
    if not path.is_file():
        raise UsageError(f"terms file {terms} does not exist")
    return str(path.resolve())


def validate_command(command: str) -> str:
    try:
        args = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"cannot read --command {command!r}: {exc}") from None
    if not args:
        raise UsageError("--command is empty")
    if args[0] in ("tertib", "schedule", "scheduler"):
        raise UsageError('--command takes a tertib verb and its arguments, e.g. "audit report"')
    return COMMAND_PREFIX + shlex.join(args)


def add(
    session: Session,
    *,
    name: str,
    cron: str,
    tz: str,
    default_tz: str,
    platforms: Sequence[str] = (),
    max_pages: int = 2,
    terms: str = "active",
    command: str | None = None,
    actor: str = "",
    registry: Registry,
) -> Sweep:
    """A new schedule (``registry``: the installation's platforms, which ``platforms`` must name)."""
    if not NAME_RE.match(name):
        raise UsageError(f"schedule name {name!r}: use lower-case letters, digits, '.', '_' or '-'")
    if name in BUILTIN_BY_NAME:
        raise UsageError(f"{name!r} is a built-in job; change it with `tertib schedule edit {name}`")
    if session.scalars(select(Sweep).where(Sweep.name == name)).first() is not None:
        raise ScheduleExists(f"schedule {name!r} exists; change it with `tertib schedule edit {name}`")
    if max_pages < 1:
        raise UsageError("--max-pages must be at least 1")
    build_trigger(cron, tz)
    source = validate_command(command) if command else validate_terms(terms)
    row = Sweep(
        name=name,
        platforms=[] if command else validate_platforms(platforms, registry),
        terms_source=source,
        max_pages=max_pages,
        schedule=join_schedule(cron, tz, default_tz),
        paused=False,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    _log(session, actor, "schedule_add", row)
    return row


def _log(session: Session, actor: str, action: str, row: Sweep, **details: object) -> None:
    """One custody entry for a change to a definition, with the definition as it stands after it."""
    custody.append(
        session,
        actor=actor or "tertib",
        action=action,
        object_type="schedule",
        object_id=row.name,
        details={
            "schedule": row.schedule,
            "platforms": list(row.platforms or []),
            "paused": bool(row.paused),
            "runs": summary(row),
            **details,
        },
    )


def edit(
    session: Session,
    name: str,
    *,
    default_tz: str,
    cron: str | None = None,
    tz: str | None = None,
    platforms: Sequence[str] | None = None,
    max_pages: int | None = None,
    terms: str | None = None,
    command: str | None = None,
    no_cron: bool = False,
    actor: str = "tertib",
    registry: Registry,
) -> Sweep:
    row = get(session, name)
    kind = kind_of(row)
    if (platforms or max_pages is not None or terms is not None) and kind != KIND_SWEEP:
        raise UsageError(f"{name!r} is not a sweep: --platform/--max-pages/--terms do not apply")
    if command is not None and kind != KIND_COMMAND:
        raise UsageError(f"{name!r} does not run a --command")
    if no_cron:
        if kind in (KIND_SWEEP, KIND_COMMAND):
            raise UsageError("only the discovery follow-up can run without a cron")
        row.schedule = None
    elif cron is not None or tz is not None:
        old_cron, old_tz = split_schedule(row.schedule, default_tz) if row.schedule else (None, default_tz)
        new_cron = cron or old_cron
        if new_cron is None:
            raise UsageError(f"{name!r} has no cron yet; give --cron")
        new_tz = tz or old_tz
        build_trigger(new_cron, new_tz)
        row.schedule = join_schedule(new_cron, new_tz, default_tz)
    if platforms:
        row.platforms = validate_platforms(platforms, registry)
    if max_pages is not None:
        if max_pages < 1:
            raise UsageError("--max-pages must be at least 1")
        row.max_pages = max_pages
    if terms is not None:
        row.terms_source = validate_terms(terms)
    if command is not None:
        row.terms_source = validate_command(command)
    session.flush()
    _log(session, actor, "schedule_edit", row)
    return row


def set_paused(session: Session, name: str, paused: bool, *, actor: str = "tertib") -> Sweep:
    row = get(session, name)
    row.paused = paused
    session.flush()
    _log(session, actor, "schedule_pause" if paused else "schedule_resume", row)
    return row


def remove(session: Session, name: str, *, actor: str = "tertib") -> None:
    row = get(session, name)
    if kind_of(row) in BUILTIN_BY_MARKER:
        raise UsageError(f"{name!r} is a built-in job; pause it with `tertib schedule pause {name}`")
    _log(session, actor, "schedule_remove", row)
    session.delete(row)
    session.flush()


def request_run(session: Session, name: str, *, actor: str) -> Sweep:
    """Record that ``actor`` asked for a run now (the caller then starts it: JobRunner.run)."""
    row = get(session, name)
    _log(session, actor, "schedule_run", row)
    return row


# -- what a job runs -----------------------------------------------------------------------------


def command_for(row: Sweep, *, sweep_run_id: int | None = None) -> list[str]:
    """The tertib arguments (after ``python -m crawler.cli``) a definition runs."""
    kind = kind_of(row)
    if kind == KIND_COMMAND:
        return shlex.split(row.terms_source[len(COMMAND_PREFIX) :])
    if kind == "builtin:rechecks":
        return ["recheck", "--due"]
    if kind == "builtin:evidence-verify":
        return ["evidence", "verify", "--all"]
    if kind == "builtin:model-retrain":
        return ["model", "train", "--by", "scheduler"]
    if kind == "builtin:discovery-background":
        return ["terms", "background", "refresh", "--no-progress"]
    if kind == "builtin:follow-sellers":
        return ["follow", "--no-progress"]
    if kind == "builtin:discovery":
        if sweep_run_id is None:
            raise NotFound("discovery needs a sweep run to mine and no sweep has completed yet")
        return ["terms", "discover", "--run", str(sweep_run_id)]
    if kind.startswith(BUILTIN_PREFIX):
        raise TertibError(f"{row.name!r} names an unknown built-in job {kind!r}")
    args = ["sweep"]
    for platform in row.platforms or []:
        args += ["--platform", str(platform)]
    args += ["--max-pages", str(row.max_pages), "--terms", row.terms_source or "active"]
    return args
