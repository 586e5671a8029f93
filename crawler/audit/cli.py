"""``tertib recheck`` and ``tertib audit report|relist|rerequest|due``: the auditor's verbs.

``tertib recheck`` steps (numbered the same in :func:`recheck`):

1. Resolve the clock: ``--now ISO`` (for replays and the sandbox's virtual clock: a recheck at virtual
   day 3 is ``--now 2026-01-04T10:00:00+00:00``; a time without a zone is UTC) or the wall clock.
2. Pick the targets: ``--due`` (default) — rounds reached at ``now`` without a conclusive verdict
   (:mod:`crawler.audit.due`), after recording rounds already satisfied by an earlier REMOVED; or
   ``--batch ID`` — every item of one batch now.
3. Crawl in this process (:func:`crawler.recheck.run_recheck`; one crawl per process, Twisted cannot
   restart): fresh evidence, one ``Recheck`` row per target.
4. Relisting detection over listings first seen since the earliest send time involved
   (:func:`crawler.audit.relist.detect_relistings`).
5. Print a verdict table per platform (this run's rows only).

Settings: ``recheck_days`` (``TERTIB_RECHECK_DAYS``), ``timezone`` (report times), ``sandbox_url``
(``--sandbox`` / ``TERTIB_SANDBOX_URL``), ``actor``. Extend: a new report format is a renderer in
:mod:`crawler.audit.report` plus its name in ``FORMATS``.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from sqlalchemy import func, select

from crawler import cli_common as common
from crawler.audit import due as due_mod
from crawler.audit.relist import detect_relistings
from crawler.audit.report import FORMATS, build_report, render
from crawler.errors import TertibError, UsageError
from crawler.exports.service import create_batch
from crawler.recheck import run_recheck
from storage.models import BatchSend, Recheck, SweepRun

logger = logging.getLogger(__name__)

app = typer.Typer(no_args_is_help=True, help="Compliance reports over the recheck ledger.")

VERDICT_COLUMNS = ("LIVE", "REMOVED", "HIDDEN", "UNOBSERVABLE")


def parse_now(text: str | None) -> datetime:
    """``--now`` as an aware UTC datetime (naive input is taken as UTC); the wall clock without it."""
    if not text:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--now must be an ISO 8601 time such as 2026-01-04T10:00:00+00:00, not {text!r}"
        ) from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _tz() -> ZoneInfo:
    return ZoneInfo(common.settings().timezone)


def recheck(
    due: Annotated[bool, typer.Option("--due", help="Recheck the rounds that are due (default).")] = False,
    batch: Annotated[
        str | None, typer.Option("--batch", help="Recheck every item of this batch (number or id) now.")
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Use this time as 'now' (ISO 8601; replays, sandbox virtual clock)."),
    ] = None,
    sandbox: Annotated[
        str | None, typer.Option("--sandbox", help="Reach every platform at this sandbox root instead.")
    ] = None,
    no_screenshots: Annotated[
        bool, typer.Option("--no-screenshots", help="WARC evidence without screenshots.")
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress display.")] = False,
    no_relist: Annotated[bool, typer.Option("--no-relist", help="Skip relisting detection.")] = False,
) -> None:
    """Recheck reported links (LIVE / REMOVED / HIDDEN / UNOBSERVABLE) with fresh evidence.

    Example: tertib recheck --due            (rounds T+1, T+3, T+7, T+30 days after each send)
    Example: tertib recheck --batch TTB-2026-0001 --now 2026-01-04T10:00:00+00:00
    """
    if due and batch:
        raise UsageError("use either --due or --batch, not both")
    if sandbox:
        common.set_overrides(sandbox_url=sandbox)
    settings = common.settings()
    db = common.database()
    # 1. The clock.
    clock = parse_now(now)
    # 2. Targets.
    with db.session() as session:
        if batch:
            batch_row = due_mod.resolve_batch(session, batch)
            targets = due_mod.batch_targets(session, batch_row.id, clock, days=settings.recheck_days)
            sends = session.scalars(select(BatchSend.sent_at).where(BatchSend.batch_id == batch_row.id)).all()
        else:
            satisfied = due_mod.record_satisfied(
                session, clock, days=settings.recheck_days, actor=settings.actor_name()
            )
            if satisfied:
                common.console.print(f"{satisfied} round(s) satisfied by an earlier REMOVED verdict")
            targets = due_mod.due_targets(session, clock, days=settings.recheck_days)
            sends = session.scalars(select(BatchSend.sent_at)).all()
        before = int(session.scalar(select(func.max(Recheck.id))) or 0)
    if not targets:
        common.console.print(f"nothing to recheck at {clock.isoformat()}")
        return
    # 3. Crawl.
    run_id = run_recheck(
        settings, db, targets, now=clock, screenshots=not no_screenshots, progress=not no_progress
    )
    # 4. Relisting detection.
    relisted = 0
    if not no_relist:
        with db.session() as session:
            relisted = len(
                detect_relistings(
                    session, since=min(sends) if sends else None, now=clock, actor=settings.actor_name()
                )
            )
    # 5. The verdict table.
    keys = {t.listing_id for t in targets}
    with db.session() as session:
        rows = [
            r
            for r in session.scalars(select(Recheck).where(Recheck.id > before).order_by(Recheck.id))
            if r.listing_id in keys
        ]
        platforms = {t.listing_id: t.platform for t in targets}
    counts: Counter[tuple[str, str]] = Counter((platforms[r.listing_id], r.verdict) for r in rows)
    table = Table(title=f"Recheck run #{run_id} at {clock.isoformat()}", title_justify="left")
    table.add_column("platform")
    for column in (*VERDICT_COLUMNS, "total"):
        table.add_column(column, justify="right")
    for platform in sorted({p for p, _v in counts}):
        values = [counts[(platform, v)] for v in VERDICT_COLUMNS]
        table.add_row(platform, *map(str, values), str(sum(values)))
    common.console.print(table)
    common.console.print(
        f"{len(rows)} of {len(targets)} target(s) recorded; {relisted} new relisting(s) flagged"
    )
    with db.session() as session:
        run = session.get(SweepRun, run_id)
        problems = list(run.needs_attention or []) if run is not None else []
        if run is None or run.status == "failed" or len(rows) < len(targets):
            raise TertibError(
                f"recheck run #{run_id}: {len(targets) - len(rows)} target(s) without a recorded verdict"
                + (f" ({'; '.join(problems)})" if problems else "")
            )


@app.command("report")
def report_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="md, html or json.")] = "md",
    batch: Annotated[str | None, typer.Option("--batch", help="One batch (number or id).")] = None,
    platform: Annotated[str | None, typer.Option("--platform", "-p", help="One platform.")] = None,
) -> None:
    """Compliance report from the recheck ledger (same ledger, same bytes).

    Example: tertib audit report --batch TTB-2026-0001 --format html --out audit.html
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    settings = common.settings()
    with common.database().session() as session:
        report = build_report(session, batch=batch, platform=platform, recheck_days=settings.recheck_days)
    text = render(report, fmt, _tz(), settings.registry)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc}") from None
    total = report.groups[-1]
    common.console.print(
        f"wrote {out} ({fmt}): {total.requested} requested, {total.removed} removed, {total.hidden} hidden, "
        f"{total.live} still live, {total.unobservable} unobservable, {total.relisted} relisted"
    )


@app.command("relist")
def relist_command(
    run: Annotated[int | None, typer.Option("--run", help="Listings first seen in this run.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only listings first seen at/after this ISO time.")
    ] = None,
) -> None:
    """Flag new listings that relist a requested or removed one (seller, handle, title, image).

    Example: tertib audit relist --run 12
    """
    settings = common.settings()
    with common.database().session() as session:
        matches = detect_relistings(
            session,
            sweep_run_id=run,
            since=parse_now(since) if since else None,
            actor=settings.actor_name(),
        )
    table = Table(title=f"{len(matches)} relisting(s) flagged", title_justify="left")
    for column in ("listing", "relist of", "rule", "signals", "title", "image bits"):
        table.add_column(column)
    for m in matches:
        distance = m.evidence.get("image_distance")
        table.add_row(
            m.listing_key,
            m.parent_key,
            str(m.evidence.get("rule")),
            ", ".join(m.signals),
            f"{m.evidence.get('title_score', 0):.0f}",
            "" if distance is None else str(distance),
        )
    common.console.print(table)


@app.command("rerequest")
def rerequest_command(
    batch: Annotated[str, typer.Option("--batch", help="The batch whose still-live items to re-request.")],
    name: Annotated[str | None, typer.Option("--name", help="Name of the new batch.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output directory for the new batch.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the items.")] = False,
) -> None:
    """Put a batch's still-live items into a new takedown batch (or list them with --dry-run).

    Example: tertib audit rerequest --batch TTB-2026-0001
    """
    settings = common.settings()
    db = common.database()
    with db.session() as session:
        report = build_report(session, batch=batch, recheck_days=settings.recheck_days)
        number = report.items[0].batch_number
    live = [report.item(i) for i in report.ready_to_rerequest]
    if not live:
        common.console.print(f"batch {number}: no still-live items to re-request")
        return
    table = Table(title=f"batch {number}: {len(live)} still-live item(s)", title_justify="left")
    for column in ("listing", "platform", "last checked", "url"):
        table.add_column(column)
    for i in live:
        table.add_row(
            i.listing_key, i.platform, i.last_checked_at.isoformat() if i.last_checked_at else "", i.url
        )
    common.console.print(table)
    if dry_run:
        return
    result = create_batch(
        db,
        settings,
        name=name or f"Re-request of {number}",
        out=out,
        listing_ids=sorted({i.listing_id for i in live}),
    )
    common.console.print(f"new batch {result.number}: {result.item_count} item(s) in {result.out_dir}")


@app.command("due")
def due_command(
    now: Annotated[str | None, typer.Option("--now", help="Use this time as 'now' (ISO 8601).")] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="One batch (number or id).")] = None,
) -> None:
    """Show what each takedown item needs now (fetch, satisfied, done, waiting, exhausted, not sent).

    Example: tertib audit due --now 2026-01-08T10:00:00+00:00
    """
    settings = common.settings()
    clock = parse_now(now)
    with common.database().session() as session:
        batch_id = due_mod.resolve_batch(session, batch).id if batch else None
        plans = due_mod.plan(session, clock, days=settings.recheck_days, batch_id=batch_id)
    counts = Counter((p.platform, p.action) for p in plans)
    actions = ("fetch", "satisfy", "done", "waiting", "exhausted", "not_sent")
    table = Table(title=f"Recheck plan at {clock.isoformat()}", title_justify="left")
    table.add_column("platform")
    for a in actions:
        table.add_column(a, justify="right")
    for platform in sorted({p for p, _a in counts}):
        table.add_row(platform, *(str(counts[(platform, a)]) for a in actions))
    common.console.print(table)
