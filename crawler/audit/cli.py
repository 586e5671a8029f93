"""``tertib audit report|relist|rerequest|due``: the auditor's verbs over the recheck ledger.

``tertib recheck`` (the crawl that fills the ledger) is :mod:`crawler.audit.recheck_cli`, so these verbs load
no crawler. Settings: ``recheck_days`` (``TERTIB_RECHECK_DAYS``), ``timezone`` (report times), ``actor``.
Extend: a new report format is a renderer in :mod:`crawler.audit.report` plus its name in ``FORMATS``.
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

from crawler import cli_common as common
from crawler.audit import due as due_mod
from crawler.audit.relist import detect_relistings
from crawler.audit.report import FORMATS, build_report, render
from crawler.errors import UsageError
from crawler.exports.service import create_batch

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
