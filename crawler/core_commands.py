"""Core verbs: ``tertib init`` and ``tertib status`` (``tertib demo`` is :mod:`crawler.demo`)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from crawler import __version__
from crawler import cli_common as common
from crawler.evidence.signing import ensure_keypair
from crawler.proxies import ProxyPool
from crawler.terms.store import ensure_seeded
from storage.models import SweepRun
from storage.repositories import latest_failed_jobs, table_counts


def init() -> None:
    """Create the data dir, migrate the database to head and create the signing key pair.

    Example: tertib --data-dir /srv/tertib init
    """
    s = common.settings()
    db = common.database()
    for path in (s.warc_dir, s.blob_dir, s.exports_dir):
        path.mkdir(parents=True, exist_ok=True)
    key_path, created = ensure_keypair(s.keys_dir)
    seeded = seed_lexicon()
    common.console.print(f"data dir     {s.data_dir.resolve()}")
    common.console.print(f"database     {db.url} (revision {db.current_revision()})")
    common.console.print(f"signing key  {key_path} ({'created' if created else 'exists'})")
    common.console.print(f"lexicon      {seeded}")


def seed_lexicon() -> str:
    """Import the packaged seed lexicon on first use; a one-line summary of the lexicon."""
    with common.database().session() as session:
        return ensure_seeded(session, actor=common.settings().actor_name())


def status() -> None:
    """Show the data dir, database, Chromium, row counts per table and failing jobs.

    Example: tertib status
    """
    s = common.settings()
    db = common.database()
    chromium = s.chromium_path()
    common.console.print(f"tertib       {__version__}")
    common.console.print(f"data dir     {s.data_dir.resolve()}")
    common.console.print(f"database     {db.url} (revision {db.current_revision()})")
    common.console.print(
        f"chromium     {chromium or 'not found (set TERTIB_CHROMIUM or apt-get install chromium)'}"
    )
    if s.sandbox_url:
        common.console.print(f"sandbox      {s.sandbox_url}")
    with db.session() as session:
        counts = table_counts(session)
        last_run = session.scalars(select(SweepRun).order_by(SweepRun.id.desc()).limit(1)).first()
        failed = latest_failed_jobs(session)
        table = Table("table", "rows", title="Stored records", title_justify="left")
        for name, count in counts.items():
            table.add_row(name, str(count))
        common.console.print(table)
        if last_run is not None:
            common.console.print(
                f"last run     #{last_run.id} {last_run.kind} {last_run.status} "
                f"started {last_run.started_at:%Y-%m-%d %H:%M} UTC"
                + (
                    f" — needs attention: {'; '.join(last_run.needs_attention)}"
                    if last_run.needs_attention
                    else ""
                )
            )
        for job in failed:
            common.console.print(
                f"[red]failing job[/] {job.job_name}: {job.status} (exit {job.exit_code}) at "
                f"{job.started_at:%Y-%m-%d %H:%M} UTC {job.stats_line}"
            )
        last_sweep = session.scalars(
            select(SweepRun).where(SweepRun.kind == "sweep").order_by(SweepRun.id.desc()).limit(1)
        ).first()
        _print_proxies(s, last_sweep)


def _print_proxies(settings: Any, run: Any) -> None:
    """Each configured proxy and its state in the last sweep (active, cooling, retired and why)."""
    pool = ProxyPool.from_settings(settings)  # a malformed proxy URL: one error line here too
    seen = list((run.stats or {}).get("proxies") or []) if run is not None else []
    if not pool.configured and not seen:
        common.console.print("proxies      none configured (platform traffic goes out directly)")
        return
    title = f"Proxies (state in sweep run #{run.id})" if seen else "Proxies (configured, not used yet)"
    columns = ("platform", "proxy", "state", "requests", "ok", "blocks", "errors", "why")
    table = Table(*columns, title=title, title_justify="left")
    rows = seen or [
        {"platform": s["platform"], "proxy": s["proxy"], "state": "configured"} for s in pool.snapshot()
    ]
    for row in rows:
        state = str(row.get("state", ""))
        style = {"retired": "red", "cooling": "yellow"}.get(state, "")
        table.add_row(
            Text(str(row.get("platform", ""))),
            Text(str(row.get("proxy", ""))),
            Text(state, style=style),
            *(Text(str(row.get(k, ""))) for k in ("requests", "ok", "blocks", "errors")),
            Text(str(row.get("reason", ""))),
        )
    common.console.print(table)
