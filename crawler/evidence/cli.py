"""``tertib evidence``: verify stored evidence, write signed WACZ bundles, show one capture.

Registered in ``crawler/cli.py:COMMANDS`` as ``evidence``. Uses ``crawler.cli_common.settings()`` /
``database()`` (so ``--data-dir`` applies) and the installation's signing key in ``Settings.keys_dir``
(created by ``tertib init``). To add a verb, add a function decorated with ``@app.command``; user errors
raise :class:`crawler.errors.TertibError` subclasses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from crawler import cli_common as common
from crawler.errors import NotFound, TertibError, UsageError
from crawler.evidence import bundle as bundles
from crawler.evidence import signing
from crawler.evidence.verify import verify as run_verify
from storage.evidence_store import open_store
from storage.models import Capture

app = typer.Typer(no_args_is_help=True, help="Evidence: show, verify, bundle (WACZ).")


@app.command("verify")
def verify_command(
    all_: Annotated[
        bool, typer.Option("--all", help="Every capture, the whole custody log, every batch.")
    ] = False,
    batch: Annotated[int | None, typer.Option("--batch", help="One takedown batch (id).")] = None,
    capture: Annotated[list[int] | None, typer.Option("--capture", help="Capture id (repeatable).")] = None,
) -> None:
    """Re-read records, recompute digests, check the custody chain and signatures; exit 1 on any failure.

    Example: tertib evidence verify --all
    """
    settings = common.settings()
    db = common.database()
    report = run_verify(
        db,
        settings,
        capture_ids=capture or None,
        batch_id=batch,
        all=all_,
        actor=settings.actor_name(),
        record=not db.read_only,  # a read-only data dir is checked, not written to
    )
    if db.read_only:
        common.err_console.print(
            "note: read-only data dir: this verification is not added to the custody log"
        )
    s = report.summary()
    common.console.print(
        f"checked {s['captures']} captures, {s['records']} records, {s['screenshots']} screenshots, "
        f"{s['custody_entries']} custody entries, {s['batches']} batches ({report.scope})",
        highlight=False,
    )
    if report.ok:
        common.console.print("[green]OK[/]: every digest, signature and custody link verified")
        return
    # one line per problem, never cut to the terminal's width: each names the record, file or row to examine
    common.console.print(f"[bold red]{len(report.problems)} problem(s)[/]")
    for problem in report.problems:
        common.console.print(
            f"[red]✗[/] {escape(problem.kind)}: {escape(problem.obj)}: {escape(problem.message)}",
            soft_wrap=True,
            highlight=False,
        )
    raise TertibError(f"verification failed: {len(report.problems)} problem(s) ({report.scope})")


@app.command("bundle")
def bundle_command(
    out: Annotated[Path, typer.Option("--out", help="The .wacz file to write.")],
    batch: Annotated[int | None, typer.Option("--batch", help="Takedown batch id.")] = None,
    capture: Annotated[list[int] | None, typer.Option("--capture", help="Capture id (repeatable).")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Bundle title.")] = None,
) -> None:
    """Write a signed WACZ (WARC, CDXJ, pages, datapackage + Ed25519 digest signature).

    Example: tertib evidence bundle --batch 1 --out batch-1.wacz
    """
    if (batch is None) == (not capture):
        raise UsageError("give either --batch ID or one or more --capture ID")
    if out.suffix.lower() != ".wacz":
        raise UsageError(f"--out must end in .wacz: {out}")
    settings = common.settings()
    db = common.database()
    if batch is not None:
        number, ids = bundles.batch_capture_ids(db, batch)
        title = title or f"tertib evidence for takedown batch {number}"
    else:
        ids = list(capture or [])
        title = title or f"tertib evidence: captures {', '.join(map(str, ids))}"
    path = bundles.write_wacz(
        db, settings, capture_ids=ids, out=out, title=title, actor=settings.actor_name()
    )
    common.console.print(f"wrote {path} ({len(ids)} captures, {path.stat().st_size} bytes)", highlight=False)


@app.command("check-bundle")
def check_bundle_command(
    wacz: Annotated[Path, typer.Argument(help="A .wacz written by `tertib evidence bundle`.")],
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="tertib-signing.pub (default: this installation's).")
    ] = None,
) -> None:
    """Check a bundle offline: structure, per-file SHA-256, WARC digests and the Ed25519 signature.

    Example: tertib evidence check-bundle batch-1.wacz --public-key tertib-signing.pub
    """
    if not wacz.is_file():
        raise NotFound(f"no such file: {wacz}")
    key_path = public_key or common.settings().keys_dir / signing.PUBLIC_NAME
    signing.load_public_key(key_path)  # missing, a directory or not a key: one line
    problems = bundles.check_wacz(wacz, key_path.read_bytes())
    if not problems:
        common.console.print(f"[green]OK[/]: {wacz} is intact and signed by {key_path}", highlight=False)
        return
    for problem in problems:
        common.console.print(f"[red]FAIL[/] {escape(problem)}", highlight=False)
    raise TertibError(f"{wacz}: {len(problems)} problem(s); the bundle is not intact")


@app.command("show")
def show_command(
    capture_id: Annotated[int, typer.Argument(metavar="CAPTURE", help="Capture id.")],
    screenshot: Annotated[
        Path | None, typer.Option("--screenshot", help="Write the capture's screenshot PNG here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the row as JSON.")] = False,
) -> None:
    """Print a capture's fields and records; optionally write its screenshot.

    Example: tertib evidence show 12 --screenshot listing-12.png
    """
    settings = common.settings()
    with common.database().session() as session:
        capture = session.get(Capture, capture_id)
        if capture is None:
            raise NotFound(f"no capture with id {capture_id}")
        records: list[dict[str, Any]] = list(capture.records or [])
        row: dict[str, Any] = {
            "id": capture.id,
            "url": capture.url,
            "purpose": capture.purpose,
            "observable": capture.observable,
            "unobservable_reason": capture.unobservable_reason,
            "captured_at": capture.captured_at.isoformat(),
            "listing_key": capture.listing_key,
            "sweep_run_id": capture.sweep_run_id,
            "warc_file": capture.warc_file,
            "warc_offset": capture.warc_offset,
            "warc_length": capture.warc_length,
            "warc_sha256": capture.warc_sha256,
            "screenshot_sha256": capture.screenshot_sha256,
            "screenshot_bytes": capture.screenshot_bytes,
            "metadata": capture.metadata_json,
        }
    if screenshot is not None:
        if not row["screenshot_sha256"]:
            raise NotFound(f"capture {capture_id} has no screenshot")
        screenshot.write_bytes(open_store(settings).blobs.get(str(row["screenshot_sha256"])))
    if as_json:
        typer.echo(json.dumps({**row, "records": records}, ensure_ascii=False, indent=2, default=str))
    else:
        table = Table("field", "value", title=f"capture {capture_id}", show_header=False)
        for key, value in row.items():
            shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)
            table.add_row(key, shown)
        common.console.print(table)
        listing = Table("type", "uri", "record id", "payload digest", title="WARC records")
        for info in records:
            listing.add_row(
                info.get("type"), info.get("uri"), info.get("record_id"), info.get("payload_digest")
            )
        common.console.print(listing)
    if screenshot is not None:
        common.console.print(f"screenshot written to {screenshot}", highlight=False)
