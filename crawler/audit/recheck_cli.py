"""``tertib recheck``: fetch reported links again with fresh evidence and write the verdict ledger.

Steps (numbered the same in :func:`recheck`):

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

Settings: ``recheck_days`` (``TERTIB_RECHECK_DAYS``), ``sandbox_url`` (``--sandbox`` /
``TERTIB_SANDBOX_URL``), ``actor``. The reports over the ledger are ``tertib audit``
(:mod:`crawler.audit.cli`).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import func, select

from crawler import cli_common as common
from crawler.audit import due as due_mod
from crawler.audit.cli import VERDICT_COLUMNS, parse_now
from crawler.audit.relist import detect_relistings
from crawler.errors import TertibError, UsageError
from crawler.recheck import run_recheck
from storage.models import BatchSend, Recheck, SweepRun


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
