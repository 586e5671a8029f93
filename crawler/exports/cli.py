"""``tertib export``: make takedown batches, record sends, list, show and verify batches.

``tertib export --batch-name NAME [--platform P]... [--since DATE] --out DIR`` (the group callback) and
``tertib export create …`` do the same thing: :func:`crawler.exports.service.create_batch`. The other verbs:
``list``, ``show BATCH``, ``mark-sent BATCH --platform P --channel C --at TIME`` (ISO; WIB when no offset),
``verify DIR [--public-key PEM]``. Settings: ``timezone``, ``keys_dir``, ``exports_dir`` (default ``--out``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from crawler import cli_common as common
from crawler.errors import TertibError, UsageError
from crawler.evidence.signing import PUBLIC_NAME
from crawler.exports.common import human_local, parse_time, zone
from crawler.exports.manifest import verify_batch_dir
from crawler.exports.service import CHANNELS, create_batch, get_batch, list_batches, mark_sent, summarize

app = typer.Typer(
    help="Takedown batches and per-platform link lists.",
    invoke_without_command=True,
    no_args_is_help=False,
)

PlatformOpt = Annotated[
    list[str] | None, typer.Option("--platform", "-p", help="Only this platform (repeatable).")
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Only items approved at/after this date (ISO, WIB).")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Output directory (default: data dir exports/).")]
ContactOpt = Annotated[str | None, typer.Option("--contact", help="Contact line for corrections/appeals.")]
UnitOpt = Annotated[str | None, typer.Option("--unit", help="Requesting unit named in the letter.")]
MissingOpt = Annotated[
    bool,
    typer.Option(
        "--allow-missing-evidence",
        help="Also export approved items that have no evidence capture (marked 'missing' in the lists).",
    ),
]


def _create(
    batch_name: str,
    platform: list[str] | None,
    since: str | None,
    out: Path | None,
    contact: str | None,
    unit: str | None,
    by: str | None,
    allow_missing_evidence: bool = False,
) -> None:
    settings = common.settings()
    tz = zone(settings.timezone)
    result = create_batch(
        common.database(),
        settings,
        name=batch_name,
        out=out,
        platforms=platform or (),
        since=parse_time(since, tz) if since else None,
        actor=by,
        contact=contact,
        unit=unit,
        allow_missing_evidence=allow_missing_evidence,
    )
    title = f"Batch {result.number} → {result.out_dir}"
    table = Table("platform", "items", title=title, title_justify="left")
    for name, count in result.counts.items():
        table.add_row(name, str(count))
    common.console.print(table)
    if result.bundle.get("status") != "ok":
        reason = result.bundle.get("reason")
        common.err_console.print(f"[yellow]warning:[/] evidence bundle missing: {escape(str(reason))}")
    for excluded in result.excluded:
        common.err_console.print(
            f"[yellow]not exported:[/] {escape(str(excluded['listing_key']))}: {escape(excluded['reason'])}",
            soft_wrap=True,
        )
    if result.excluded:
        common.err_console.print(
            f"[yellow]warning:[/] {len(result.excluded)} approved item(s) held back; the reasons are in the "
            "manifest (excluded)"
        )
    if result.missing_evidence:
        common.err_console.print(
            f"[yellow]warning:[/] {result.missing_evidence} item(s) exported without evidence "
            "(evidence_status = missing in the link lists)"
        )
    if result.offenders:
        common.console.print(
            f"{len(result.offenders)} repeat-offender group(s) recommended for account-level action"
        )
    common.console.print(f"manifest sha256 {result.manifest_sha256}")


@app.callback()
def export(
    ctx: typer.Context,
    batch_name: Annotated[str | None, typer.Option("--batch-name", help="Name of the new batch.")] = None,
    platform: PlatformOpt = None,
    since: SinceOpt = None,
    out: OutOpt = None,
    contact: ContactOpt = None,
    unit: UnitOpt = None,
    by: Annotated[str | None, typer.Option("--by", help="Who makes the batch (default: actor).")] = None,
    allow_missing_evidence: MissingOpt = False,
) -> None:
    """Export approved, not-yet-requested items as one takedown batch, or run a verb below.

    Example: tertib export --batch-name "Patroli Maret" --platform PLATFORM --out ./kirim
    """
    if ctx.invoked_subcommand is not None:
        if batch_name is not None:
            raise UsageError("--batch-name goes with `tertib export` alone or `tertib export create`")
        return
    if batch_name is None:
        common.console.print(ctx.get_help())
        raise typer.Exit(0)
    _create(batch_name, platform, since, out, contact, unit, by, allow_missing_evidence)


@app.command("create")
def create_command(
    batch_name: Annotated[str, typer.Option("--batch-name", help="Name of the new batch.")],
    platform: PlatformOpt = None,
    since: SinceOpt = None,
    out: OutOpt = None,
    contact: ContactOpt = None,
    unit: UnitOpt = None,
    by: Annotated[str | None, typer.Option("--by", help="Who makes the batch.")] = None,
    allow_missing_evidence: MissingOpt = False,
) -> None:
    """Same as `tertib export --batch-name …`.

    Example: tertib export create --batch-name "Patroli Maret" --since 2026-03-01 --out ./kirim
    """
    _create(batch_name, platform, since, out, contact, unit, by, allow_missing_evidence)


@app.command("list")
def list_command() -> None:
    """All batches with item counts per platform and send status.

    Example: tertib export list
    """
    tz = zone(common.settings().timezone)
    with common.database().session() as session:
        summaries = list_batches(session)
    table = Table("batch", "name", "created (WIB)", "items", "sent", title="Takedown batches")
    for s in summaries:
        counts = ", ".join(f"{p} {n}" for p, n in s.counts.items())
        sent = ", ".join(f"{p} ({c})" for p, (c, _) in sorted(s.sends.items())) or "-"
        table.add_row(s.number, escape(s.name), human_local(s.created_at, tz), counts, sent)
    common.console.print(table)


@app.command("show")
def show_command(batch: Annotated[str, typer.Argument(help="Batch number, e.g. TTB-2026-0001.")]) -> None:
    """One batch: items per platform, sends (audit clock), files and manifest digest.

    Example: tertib export show TTB-2026-0001
    """
    tz = zone(common.settings().timezone)
    with common.database().session() as session:
        s = summarize(session, get_batch(session, batch))
    console = common.console
    console.print(f"[bold]{s.number}[/]  {escape(s.name)}")
    console.print(f"created   {human_local(s.created_at, tz)} by {escape(s.created_by)}")
    console.print(f"directory {escape(s.out_dir or '-')}")
    console.print(f"manifest  sha256 {s.manifest_sha256 or '-'}")
    bundle = s.details.get("evidence_bundle") or {}
    console.print(f"evidence  {bundle.get('path') or 'missing: ' + str(bundle.get('reason', '?'))}")
    table = Table("platform", "items", "channel", "sent (WIB)")
    for platform, count in s.counts.items():
        channel, sent_at = s.sends.get(platform, ("-", None))
        table.add_row(platform, str(count), channel, human_local(sent_at, tz) or "not sent")
    console.print(table)


@app.command("mark-sent")
def mark_sent_command(
    batch: Annotated[str, typer.Argument(help="Batch number.")],
    platform: Annotated[str, typer.Option("--platform", help="Platform the list went to.")],
    channel: Annotated[str, typer.Option("--channel", help=" | ".join(CHANNELS))],
    at: Annotated[str, typer.Option("--at", help="Send time, ISO (WIB when no offset), or 'now'.")] = "now",
    by: Annotated[str | None, typer.Option("--by", help="Who records it (default: settings actor).")] = None,
) -> None:
    """Record how and when a batch was sent to a platform; this starts the audit clock.

    Example: tertib export mark-sent TTB-2026-0001 --platform PLATFORM --channel idea --at 2026-03-05T09:30
    """
    settings = common.settings()
    tz = zone(settings.timezone)
    sent_at = datetime.now(UTC) if at.strip().lower() == "now" else parse_time(at, tz)
    with common.database().session() as session:
        send = mark_sent(
            session,
            batch,
            platform=platform,
            channel=channel,
            sent_at=sent_at,
            by=by or settings.actor_name(),
        )
        common.console.print(
            f"{batch}: {platform} sent via {send.channel} at {human_local(send.sent_at, tz)}"
        )


@app.command("verify")
def verify_command(
    directory: Annotated[Path, typer.Argument(help="A batch directory (with manifest.json).")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="The publisher's public key PEM (default: this installation's; a key beside the files is "
            "never trusted).",
        ),
    ] = None,
) -> None:
    """Check a batch directory: manifest signature and every file's SHA-256.

    Example: tertib export verify ./kirim/TTB-2026-0001 --public-key tertib-signing.pub
    """
    installation = common.settings().keys_dir / PUBLIC_NAME
    installation_key = installation if public_key is None and installation.is_file() else None
    problems = verify_batch_dir(directory, public_key, installation_key=installation_key)
    if problems:
        for problem in problems:
            common.console.print(f"[red]✗[/] {escape(problem)}", soft_wrap=True)
        raise TertibError(f"{directory}: {len(problems)} problem(s); the batch is not intact")
    signer = public_key or installation_key
    common.console.print(
        f"[green]✓[/] {escape(str(directory))}: signed by the trusted key {escape(str(signer))}, "
        "all files and the evidence bundle match the manifest",
        soft_wrap=True,
    )
