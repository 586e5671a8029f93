"""``tertib parse``: run a platform parser on a saved response file.

Reads one saved body (JSON, HTML, or JavaScript-wrapped JSON), runs the platform's ``parse_search`` or
``parse_detail`` from the platform registry (``settings.registry``), and prints machine-readable output on
stdout:

- ``--kind search``: one JSON line per listing (``Listing.to_dict()``); a summary line on stderr.
- ``--kind detail``: one JSON line ``{platform, listing_id, verdict, rule, signal, listing}``.

Exit codes: 0 parsed; 1 the body is malformed, a block (captcha, login wall, rate limit …), an unknown
shape (``shape_ok`` false, a redesign) or an UNOBSERVABLE detail; 2 bad arguments. ``--status`` and
``--location`` give the HTTP status and redirect target when a rule needs them (Blibli 404, Lazada 302).
Registered in ``crawler/cli.py:COMMANDS`` as ``parse``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from crawler import cli_common as common
from crawler.errors import ParseError, UsageError
from crawler.items import Verdict

log = logging.getLogger(__name__)


def parse(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Saved response body.")
    ],
    platform: Annotated[
        str, typer.Option("--platform", "-p", help="Platform name (tertib parse --help lists them).")
    ],
    kind: Annotated[str, typer.Option("--kind", "-k", help="search or detail.")] = "search",
    status: Annotated[int, typer.Option("--status", help="HTTP status of the saved response.")] = 200,
    url: Annotated[str, typer.Option("--url", help="URL the response came from (ids, absolute links).")] = "",
    location: Annotated[str, typer.Option("--location", help="Location header of a redirect response.")] = "",
    query: Annotated[str, typer.Option("--query", "-q", help="Search query, for provenance.")] = "",
    page: Annotated[int, typer.Option("--page", min=1, help="Result page number (1-based).")] = 1,
) -> None:
    """Parse a saved platform response into listings (JSONL) or a recheck verdict.

    Example: tertib parse --platform shopee --kind search search_items_kaos.json
    """
    profile = common.settings().registry.get(platform)
    if kind not in ("search", "detail"):
        raise UsageError(f"--kind must be 'search' or 'detail', not {kind!r}")
    if not 100 <= status <= 599:
        raise UsageError(f"--status must be an HTTP status code, not {status}")
    try:
        body = file.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read {file}: {exc.strerror}") from None
    log.info("parsing %s (%d bytes) as %s %s", file, len(body), profile.platform, kind)

    if kind == "search":
        if profile.parse_search is None:
            raise UsageError(f"{profile.platform} has no keyword search; use --kind detail ({profile.notes})")
        result = profile.parse_search(body, url=url, query=query, page=page, status=status)
        if result.block is not None:
            if result.block.reason == "malformed":
                raise ParseError(f"{file}: malformed response: {result.block.detail}")
            raise ParseError(f"{file}: blocked response ({result.block.reason}): {result.block.detail}")
        if not result.shape_ok:
            raise ParseError(
                f"{file}: not a {profile.platform} search response (expected paths did not match)"
            )
        for listing in result.listings:
            typer.echo(json.dumps(listing.to_dict(), ensure_ascii=False, sort_keys=True))
        summary = f"{len(result.listings)} listings, total {result.total}, has_more {result.has_more}"
        if result.query_blocked:
            summary += f"; the platform blocks this query: {result.query_blocked_detail}"
        if result.related_terms:
            summary += f"; related terms: {', '.join(result.related_terms)}"
        common.err_console.print(summary, highlight=False, markup=False, soft_wrap=True)
        return

    headers = {"Location": location} if location else None
    check = profile.parse_detail(body, url=url, status=status, headers=headers)
    record = {
        "platform": check.platform,
        "listing_id": check.listing_id,
        "verdict": str(check.verdict),
        "rule": check.rule,
        "signal": check.signal,
        "listing": check.listing.to_dict() if check.listing else None,
    }
    typer.echo(json.dumps(record, ensure_ascii=False, sort_keys=True))
    if check.verdict == Verdict.UNOBSERVABLE:
        what = (
            "malformed response"
            if check.rule.endswith(".malformed")
            else "unobservable (blocked or unreadable)"
        )
        raise ParseError(f"{file}: {what}: {check.rule} {check.signal}".rstrip())
