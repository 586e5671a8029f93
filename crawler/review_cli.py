"""``tertib review …``: ``list``, ``approve``, ``reject``, ``next`` (interactive; single keystrokes when stdin
is a terminal, one line per answer otherwise so scripts and tests can drive it), ``stats``.

Thin commands over the service functions in :mod:`crawler.review`, which the web console calls too.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from crawler import cli_common as common
from crawler.errors import UsageError
from crawler.review import (
    REJECT_REASONS,
    ReviewCard,
    _verdicts,
    approve,
    format_price,
    highlight_signals,
    queue_size,
    reject,
    review_card,
    review_queue,
    term_precision,
)

app = typer.Typer(no_args_is_help=True, help="Review queue: list, approve, reject, next, stats.")


@app.command("list")
def list_command(
    platform: Annotated[str | None, typer.Option("--platform", help="Only this platform.")] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", help="Only scores >= X.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="Rows to show.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, max=2**62, help="Skip this many rows.")] = 0,
    order: Annotated[
        str, typer.Option("--order", help="score (highest first) | uncertain (model least sure first).")
    ] = "score",
) -> None:
    """Undecided candidates, highest score first (--order uncertain: what teaches the model most first).

    Example: tertib review list --platform PLATFORM --min-score 0.8 --limit 20
    """
    with common.database().session() as session:
        items = review_queue(
            session, platform=platform, min_score=min_score, limit=limit, offset=offset, order=order
        )
        total = queue_size(session, platform=platform, min_score=min_score, order=order)
    table = Table(
        "id", "key", "score", "verdict", "price", "seller", "title", title=f"Review queue ({total})"
    )
    for item in items:
        table.add_row(
            str(item.listing_id),
            escape(item.listing_key),
            "-" if item.score is None else f"{item.score:.2f}",
            item.verdict or "-",
            format_price(item.price),
            escape(item.seller_name or "-"),
            escape(item.title[:80]),
        )
    common.console.print(table)


@app.command("approve")
def approve_command(
    ids: Annotated[list[str], typer.Argument(help="Listing ids or keys (platform:id).")],
    by: Annotated[str, typer.Option("--by", help="Reviewer's name (recorded and custody-logged).")],
    note: Annotated[str, typer.Option("--note", help="Why, in a few words.")] = "",
) -> None:
    """Approve listings for takedown.

    Example: tertib review approve 12 PLATFORM:LISTING-ID --by "Siti (PKTN)" --note "bal 100 kg, ex Korea"
    """
    with common.database().session() as session:
        decided = approve(session, ids, by=by, note=note)
    common.console.print(f"approved {len(decided)} listing(s) by {escape(by)}")


@app.command("reject")
def reject_command(
    ids: Annotated[list[str], typer.Argument(help="Listing ids or keys (platform:id).")],
    by: Annotated[str, typer.Option("--by", help="Reviewer's name.")],
    reason: Annotated[str, typer.Option("--reason", help=" | ".join(REJECT_REASONS))],
    note: Annotated[str, typer.Option("--note", help="Details.")] = "",
) -> None:
    """Reject listings (also withdraws an earlier approval).

    Example: tertib review reject 14 --by "Siti (PKTN)" --reason legit_preloved
    """
    with common.database().session() as session:
        decided = reject(session, ids, by=by, reason=reason, note=note)
    common.console.print(f"rejected {len(decided)} listing(s) by {escape(by)} ({reason})")


def _read_key(prompt: str) -> str:
    """One keystroke from a terminal, else one line from stdin ('' at end of input)."""
    common.console.print(prompt, end="")
    if sys.stdin.isatty():
        import termios
        import tty

        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
        try:
            tty.setraw(fd)
            char = sys.stdin.read(1)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        common.console.print(char)
        return "q" if char in ("\x03", "\x04") else char.lower()
    line = sys.stdin.readline()
    common.console.print()
    if line == "":
        return "q"
    return line.strip().lower()[:1]


def show_card(card: ReviewCard) -> None:
    console = common.console
    console.rule(f"[bold]{escape(card.listing_key)}[/]  score {card.score or 0:.2f} ({card.verdict or '-'})")
    console.print(Text(card.title, style="bold"))
    console.print(f"price     {format_price(card.price)}")
    console.print(f"seller    {escape(card.seller)}")
    console.print(f"url       {escape(card.url)}")
    console.print(f"screenshot {card.screenshot or '(none captured)'}")
    if card.relist_parent:
        console.print(f"relist of {escape(card.relist_parent)}", style="yellow")
    console.print("signals:")
    for line in highlight_signals(card.text, card.signals) or [Text("  (no signals recorded)")]:
        console.print(Text("  ") + line)
    if card.model.get("model_version"):
        probability = float(card.model.get("probability") or 0)
        rules_alone = float(card.model.get("rule_score") or 0)
        console.print(
            f"model     {escape(str(card.model['model_version']))}: probability {probability:.2f}, "
            f"rules alone {rules_alone:.2f}",
            highlight=False,
        )
        product = card.model.get("product") or {}
        if product:
            console.print(
                f"product   {escape(str(product.get('kind')))}, {escape(str(product.get('condition')))}, "
                f"bulk {escape(str(product.get('bulk')))}",
                highlight=False,
            )
        features = [f for f in card.model.get("features") or [] if isinstance(f, dict)]
        if features:
            console.print("model features:")
            for line in highlight_signals(card.text, [{**f, "term": f.get("feature", "")} for f in features]):
                console.print(Text("  ") + line)


@app.command("next")
def next_command(
    by: Annotated[str, typer.Option("--by", help="Reviewer's name.")],
    platform: Annotated[str | None, typer.Option("--platform", help="Only this platform.")] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", help="Only scores >= X.")] = None,
    reason: Annotated[
        str, typer.Option("--reason", help="Reason recorded for [r]eject (one of the reject reasons).")
    ] = "other",
    order: Annotated[
        str, typer.Option("--order", help="score (highest first) | uncertain (model least sure first).")
    ] = "score",
) -> None:
    """Review candidates one by one: [a]pprove, [r]eject, [s]kip, [q]uit.

    --order uncertain shows first the listings the model is least sure about (weak ones included), so
    each decision teaches the next `tertib model train` the most.

    Example: tertib review next --by "Siti (PKTN)" --platform PLATFORM --order uncertain
    """
    if reason not in REJECT_REASONS:
        raise UsageError(f"unknown reason {reason!r}; use one of: {', '.join(REJECT_REASONS)}")
    _verdicts(order)
    db, settings = common.database(), common.settings()
    skipped: set[int] = set()
    counts = {"approve": 0, "reject": 0, "skip": 0}
    while True:
        with db.session() as session:
            offset = 0
            item = None
            while item is None:
                page = review_queue(
                    session, platform=platform, min_score=min_score, limit=50, offset=offset, order=order
                )
                if not page:
                    break
                item = next((i for i in page if i.listing_id not in skipped), None)
                offset += len(page)
            if item is None:
                common.console.print("queue empty")
                break
            card = review_card(session, item.listing_id, settings.blob_dir)
        show_card(card)
        key = _read_key("[a]pprove [r]eject [s]kip [q]uit > ")
        if key == "q":
            break
        with db.session() as session:
            if key == "a":
                approve(session, [card.listing_id], by=by)
                counts["approve"] += 1
            elif key == "r":
                reject(session, [card.listing_id], by=by, reason=reason)
                counts["reject"] += 1
            else:
                skipped.add(card.listing_id)
                counts["skip"] += 1
    common.console.print(
        f"approved {counts['approve']}, rejected {counts['reject']}, skipped {counts['skip']}"
    )


@app.command("stats")
def stats_command() -> None:
    """Per term: listings approved and rejected, and the precision that gives.

    Example: tertib review stats
    """
    with common.database().session() as session:
        stats = term_precision(session)
    table = Table("term", "approved", "rejected", "precision", title="Term precision from review decisions")
    for term, (approved, rejected) in sorted(stats.items(), key=lambda kv: (-sum(kv[1]), kv[0])):
        total = approved + rejected
        table.add_row(escape(term), str(approved), str(rejected), f"{approved / total:.0%}" if total else "-")
    common.console.print(table)
