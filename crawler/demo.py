"""``tertib demo``: the whole mission offline, against the sandbox, in one command.

Steps (the same numbers appear as comments in :func:`run_demo`):

1. Prepare a fresh data dir under ``OUT/data`` (migrate, signing keys, seed lexicon).
2. Generate the sandbox catalog and start the replica marketplaces on loopback.
3. Sweep every platform for the active terms (spiders → score → evidence → persist).
4. Mine the sweep for emerging terms (discovery).
5. Show the candidate queue.
6. Approve candidates above the strong threshold as a clearly labelled *simulated reviewer*.
7. Export the per-platform takedown batch (CSV, XLSX, JSON, letters, signed manifest, WACZ bundle).
8. Send the batch to the sandbox's takedown intake and record the send time.
9. Advance the sandbox clock one day and recheck the links (T+1).
10. Advance to day 7, recheck with screenshots (T+7), sweep again so relistings are found.
11. Print the audit summary and where the files are.

Every step runs the real command or service; a step that fails stops the demo with the reason.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from crawler import cli_common as common
from crawler import review
from crawler.core_commands import seed_lexicon
from crawler.evidence.signing import ensure_keypair
from crawler.terms.discovery import ranked_proposals
from sandbox import catalog
from sandbox import server as sandbox_server
from sandbox.state import SandboxState
from storage.models import BatchSend, Capture, Listing, SweepRun, TakedownBatch, TakedownItem


@dataclass
class DemoContext:
    out: Path
    data_dir: Path
    size: int
    seed: int
    sandbox_url: str = ""
    max_pages: int = 2
    max_queries: int = 6
    values: dict[str, Any] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)


def step_prepare(ctx: DemoContext) -> str:
    if ctx.data_dir.exists():
        shutil.rmtree(ctx.data_dir)
    common.set_overrides(data_dir=ctx.data_dir)
    db = common.database()
    ensure_keypair(common.settings().keys_dir)
    seeded = seed_lexicon()
    return f"data dir {ctx.data_dir} at revision {db.current_revision()}; {seeded}"


def step_sandbox(ctx: DemoContext) -> str:
    listings = catalog.generate(ctx.seed, ctx.size)
    path = ctx.out / "sandbox-catalog.jsonl"
    catalog.write_catalog(listings, path)
    srv = sandbox_server.SandboxServer(SandboxState(listings, seed=ctx.seed, faults="realistic"))
    ctx.sandbox_url = srv.__enter__()
    ctx.cleanups.append(lambda: srv.__exit__(None, None, None))
    common.set_overrides(sandbox_url=ctx.sandbox_url)
    return f"{len(listings)} listings across platforms at {ctx.sandbox_url} (catalog {path})"


class StepFailed(Exception):
    """A step ran and failed; the demo stops here (message says which command and why)."""


def _tertib(ctx: DemoContext, *args: str, capture: bool = False, accept: tuple[int, ...] = (0,)) -> str:
    """Run a ``tertib`` command as a user would (own process: crawls cannot share a reactor); exit codes
    other than ``accept`` fail the step."""
    command = [sys.executable, "-m", "crawler.cli", "--data-dir", str(ctx.data_dir), *args]
    common.console.print(f"    [dim]$ tertib {' '.join(shlex.quote(a) for a in args)}[/]", highlight=False)
    env = {**os.environ, "TERTIB_ACTOR": "demo"}
    proc = subprocess.run(command, env=env, text=True, capture_output=capture, timeout=1800)
    if proc.returncode not in accept:
        detail = (proc.stderr or "").strip().splitlines()[-1:] if capture else []
        raise StepFailed(
            f"`tertib {args[0]}` exited {proc.returncode}" + (f": {detail[0]}" if detail else "")
        )
    return proc.stdout or ""


def _sandbox_post(ctx: DemoContext, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        ctx.sandbox_url + path,
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        data: dict[str, Any] = json.load(response)
    return data


def _sandbox_now(ctx: DemoContext) -> str:
    with urllib.request.urlopen(ctx.sandbox_url + "/_sandbox/clock", timeout=30) as response:
        return str(json.load(response)["now"])


def _sweep(ctx: DemoContext, pages: int, *extra: str) -> None:
    """``tertib sweep`` over the sandbox. Exit 3 is a partial sweep (some candidates' pages were blocked, so
    they have no observable evidence and are never exported): the replicas block now and then, as the
    platforms do, so the demo goes on."""
    _tertib(
        ctx,
        "sweep",
        "--sandbox",
        ctx.sandbox_url,
        "--max-pages",
        str(pages),
        "--max-queries",
        str(ctx.max_queries),
        *extra,
        accept=(0, 3),
    )


def step_sweep(ctx: DemoContext) -> str:
    _sweep(ctx, ctx.max_pages)
    with common.database().session() as session:
        run = session.scalars(
            select(SweepRun).where(SweepRun.kind == "sweep").order_by(SweepRun.id.desc())
        ).first()
        if run is None or run.status == "failed":
            raise StepFailed("the sweep did not complete")
        ctx.values["sweep_run_id"] = run.id
        listings = session.scalar(select(func.count()).select_from(Listing)) or 0
        candidates = session.scalar(
            select(func.count()).select_from(Listing).where(Listing.verdict.in_(("candidate", "strong")))
        )
        captures = session.scalar(
            select(func.count()).select_from(Capture).where(Capture.observable.is_(True))
        )
    return f"run #{run.id} ({run.status}): {listings} listings, {candidates} candidates, {captures} captures"


def step_discovery(ctx: DemoContext) -> str:
    """Discovery ran as the sweep's follow-up; show what it proposes and whether the catalog's drift terms
    (new seller words the sandbox planted) are among them."""
    _tertib(ctx, "terms", "suggest", "--limit", "10")
    with common.database().session() as session:
        proposed = [term.text for term in ranked_proposals(session)][:20]
    with urllib.request.urlopen(ctx.sandbox_url + "/_sandbox/truth", timeout=30) as response:
        drift = json.load(response).get("drift_terms") or []
    found = [term for term in drift if term in proposed]
    return (
        f"{len(proposed)} proposed terms for an analyst to approve (tertib terms approve ID); "
        f"sandbox drift terms among the top 20: {len(found)} of {len(drift)} ({', '.join(found) or 'none'})"
    )


def step_queue(ctx: DemoContext) -> str:
    _tertib(ctx, "review", "list", "--limit", "10")
    return "candidates wait for a named reviewer's decision"


SIMULATED_REVIEWER = "simulated-reviewer (demo, not a person)"


def step_approve(ctx: DemoContext) -> str:
    threshold = common.settings().threshold_strong
    with common.database().session() as session:
        ids = list(
            session.scalars(
                select(Listing.id).where(Listing.verdict == "strong", Listing.score_value >= threshold)
            ).all()
        )
        if not ids:
            raise StepFailed("no candidate above the strong threshold to approve")
        note = "demo: auto-approved above the strong threshold"
        review.approve(session, ids, by=SIMULATED_REVIEWER, note=note, simulated=True)
    return f"{len(ids)} candidates at or above {threshold:.2f} approved by '{SIMULATED_REVIEWER}'"


def step_export(ctx: DemoContext) -> str:
    _tertib(ctx, "export", "--batch-name", "Demo sweep", "--out", str(ctx.out / "exports"))
    with common.database().session() as session:
        batch = session.scalars(select(TakedownBatch).order_by(TakedownBatch.id.desc())).first()
        if batch is None:
            raise StepFailed("no batch was created")
        ctx.values["batch"] = (batch.id, batch.number, batch.out_dir)
        count = len(batch.items)
    return f"batch {batch.number}: {count} links, files in {batch.out_dir}"


def step_send(ctx: DemoContext) -> str:
    """Send the links to the sandbox's takedown intake and record the send time (the audit clock starts).

    The audit timeline is real time from the recorded send; the sandbox's virtual clock counts days from its
    own intake. Rechecks below run at ``send time + N days`` after the sandbox has advanced N days.
    """
    batch_id, number, _ = ctx.values["batch"]
    with common.database().session() as session:
        items = session.scalars(select(TakedownItem).where(TakedownItem.batch_id == batch_id)).all()
        urls = [item.url for item in items]
        platforms = sorted({item.platform for item in items})
    result = _sandbox_post(ctx, "/_sandbox/takedowns", {"urls": urls})
    for platform in platforms:
        _tertib(ctx, "export", "mark-sent", number, "--platform", platform, "--channel", "sandbox")
    with common.database().session() as session:
        sent = session.scalars(select(BatchSend.sent_at).where(BatchSend.batch_id == batch_id)).all()
    ctx.values["sent_at"] = sent_at = max(sent)
    accepted = result.get("accepted", len(urls))
    return f"{accepted} links sent to the sandbox intake; send time {sent_at:%H:%M} UTC"


def _recheck_round(ctx: DemoContext, day: int, *extra: str) -> str:
    batch_id, _, _ = ctx.values["batch"]
    advance = day - int(ctx.values.get("sandbox_day", 0))
    clock = _sandbox_post(ctx, "/_sandbox/clock", {"advance_days": advance})
    ctx.values["sandbox_day"] = day
    # checked just before the deadline, as the scheduled rechecks are (crawler.audit.due.DEADLINE_LEAD)
    at = (ctx.values["sent_at"] + timedelta(days=day, minutes=-10)).isoformat()
    _tertib(
        ctx,
        "recheck",
        "--batch",
        str(batch_id),
        "--now",
        at,
        "--sandbox",
        ctx.sandbox_url,
        "--no-progress",
        *extra,
    )
    return f"sandbox day {clock['day']}; rechecked as of send time + {day} d"


def step_recheck_day1(ctx: DemoContext) -> str:
    return _recheck_round(ctx, 1, "--no-screenshots")


def step_recheck_day7(ctx: DemoContext) -> str:
    summary = _recheck_round(ctx, 7)
    _sweep(ctx, 1, "--no-progress")
    return summary + "; swept again: relistings of reported items flagged for review"


def step_audit(ctx: DemoContext) -> str:
    batch_id, _, _ = ctx.values["batch"]
    report = ctx.out / "audit-report.html"
    markdown = ctx.out / "audit-report.md"
    _tertib(ctx, "audit", "report", "--batch", str(batch_id), "--format", "md", "--out", str(markdown))
    _tertib(ctx, "audit", "report", "--batch", str(batch_id), "--format", "html", "--out", str(report))
    print(markdown.read_text(encoding="utf-8")[:3000])
    return f"audit report: {report}"


STEPS: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("prepare a fresh data dir", step_prepare),
    ("start the replica marketplaces", step_sandbox),
    ("sweep every platform", step_sweep),
    ("discover emerging terms", step_discovery),
    ("show the candidate queue", step_queue),
    ("approve strong candidates (simulated reviewer)", step_approve),
    ("export the takedown batch", step_export),
    ("send the batch to the sandbox intake and record the send time", step_send),
    ("advance the sandbox 1 day; recheck (T+1, WARC evidence)", step_recheck_day1),
    ("advance to day 7; recheck with screenshots (T+7); sweep again for relistings", step_recheck_day7),
    ("audit summary", step_audit),
]


def run_demo(*, out: Path, size: int, seed: int, max_queries: int = 6, max_pages: int = 2) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(
        out=out, data_dir=out / "data", size=size, seed=seed, max_queries=max_queries, max_pages=max_pages
    )
    console = common.console
    console.rule("[bold]tertib demo[/] — the whole mission, offline, against the sandbox")
    started = time.monotonic()
    done = 0
    failed = False
    try:
        for number, (title, step) in enumerate(STEPS, start=1):
            console.print(f"[bold cyan]{number:>2}.[/] {title} …")
            t0 = time.monotonic()
            try:
                summary = step(ctx)
            except StepFailed as exc:
                console.print(f"    [red]failed:[/] {exc}")
                failed = True
                break
            done += 1
            console.print(f"    [green]done[/] in {time.monotonic() - t0:.1f}s: {summary}")
    finally:
        for cleanup in reversed(ctx.cleanups):
            cleanup()
    pending = len(STEPS) - done - int(failed)  # not reached after a failed step
    console.rule()
    console.print(
        f"{done} steps done, {pending} pending, in {time.monotonic() - started:.1f}s. Files: {out.resolve()}"
    )
    if failed:
        raise SystemExit(1)


def demo_command(
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
    run_demo(out=out, size=size, seed=seed, max_queries=max_queries, max_pages=max_pages)
