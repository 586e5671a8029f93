"""Core verbs: ``tertib init``, ``tertib status`` and ``tertib demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from crawler import __version__
from crawler import cli_common as common


def init() -> None:
    """Create the data dir, migrate the database to head and create the signing key pair.

    Example: tertib --data-dir /srv/tertib init
    """
    from crawler.evidence.signing import ensure_keypair

    s = common.settings()
    db = common.database()
    for path in (s.warc_dir, s.blob_dir, s.exports_dir):
        path.mkdir(parents=True, exist_ok=True)
    key_path, created = ensure_keypair(s.keys_dir)
    seeded = _seed_lexicon()
    common.console.print(f"data dir     {s.data_dir.resolve()}")
    common.console.print(f"database     {db.url} (revision {db.current_revision()})")
    common.console.print(f"signing key  {key_path} ({'created' if created else 'exists'})")
    if seeded is not None:
        common.console.print(f"lexicon      {seeded}")


def _seed_lexicon() -> str | None:
    """Import the packaged seed lexicon on first use, when the terms package provides it."""
    import importlib

    try:
        lexicon = importlib.import_module("crawler.terms.lexicon")
    except ModuleNotFoundError:
        return None
    ensure = getattr(lexicon, "ensure_seeded", None)
    if ensure is None:
        return None
    with common.database().session() as session:
        return str(ensure(session, actor=common.settings().actor_name()))


def status() -> None:
    """Show the data dir, database, Chromium, row counts per table and failing jobs.

    Example: tertib status
    """
    from sqlalchemy import select

    from storage.models import SweepRun
    from storage.repositories import latest_failed_jobs, table_counts

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
    from rich.text import Text

    from crawler.proxies import ProxyPool

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


def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Where exports, letters, bundle and report land.")
    ] = Path("tertib-demo"),
    size: Annotated[int, typer.Option("--size", help="Sandbox catalog size.")] = 3000,
    seed: Annotated[int, typer.Option("--seed", help="Sandbox catalog seed.")] = 7,
    max_queries: Annotated[int, typer.Option("--max-queries", min=1, help="Search terms per platform.")] = 6,
    max_pages: Annotated[int, typer.Option("--max-pages", min=1, help="Result pages per search term.")] = 2,
) -> None:
    """Run the whole mission offline against the sandbox, step by step.

    Example: tertib demo --out ./tertib-demo
    """
    from crawler.demo import run_demo

    run_demo(out=out, size=size, seed=seed, max_queries=max_queries, max_pages=max_pages)


def register(app: typer.Typer) -> None:
    """Attach the core verbs to the root app."""
    app.command("init")(init)
    app.command("status")(status)
    app.command("demo")(demo)
