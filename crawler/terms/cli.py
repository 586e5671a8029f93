"""``tertib score`` and ``tertib terms …``: scoring from stdin and lexicon management.

Settings: ``data_dir`` / ``database_url`` (where the lexicon lives), ``actor`` (default for ``--by``),
``threshold_strong|candidate|weak`` (verdicts).

``tertib score`` uses the database's active lexicon when a database already exists (the SQLite file in the
data dir, or ``TERTIB_DATABASE_URL``) and holds terms; otherwise the seed lexicon packaged with tertib. The
learned model is the installation's active one, else the one packaged with tertib (setting ``model``,
:mod:`crawler.terms.model`). It never creates a data dir, so ``echo "bal korea isi 300" | tertib score``
answers on a fresh machine.

Add a verb: a function decorated with ``@app.command()`` that opens ``common.database().session()`` and
calls :mod:`crawler.terms.store`; user errors are :class:`crawler.errors.TertibError` subclasses.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.table import Table

from crawler import cli_common as common
from crawler.errors import UsageError
from crawler.terms import store
from crawler.terms.discovery import ranked_proposals
from crawler.terms.lexicon import CATEGORIES, STRENGTHS, Lexicon
from crawler.terms.model import load_for_settings
from crawler.terms.scorer import Scorer, Thresholds

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Lexicon: list, add, retire, import, export, suggest, approve, reject.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def scoring_lexicon() -> Lexicon:
    """The database's active lexicon when a database with terms exists, else the packaged seed."""
    s = common.settings()
    exists = bool(s.database_url) or (s.data_dir / "tertib.sqlite3").is_file()
    if exists:
        with common.database().session() as session:
            lexicon = store.load_lexicon(session, seed=False)
        if lexicon.active:
            log.info("scoring with the database lexicon (%d active terms)", len(lexicon.active))
            return lexicon
    log.info("scoring with the packaged seed lexicon")
    return Lexicon.packaged()


def _text_of(line: str, lineno: int) -> str | None:
    """A title line, or a JSON listing object's title + description."""
    stripped = line.strip()
    if not stripped:
        return None
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError:
            return stripped  # a title that starts with "{"
        except RecursionError:
            raise UsageError(f"line {lineno}: JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise UsageError(f"stdin line {lineno}: a JSON line must be an object with a title")
        title = obj.get("title") if obj.get("title") is not None else obj.get("text")
        if not isinstance(title, str):
            raise UsageError(f"stdin line {lineno}: JSON object has no string 'title' (or 'text')")
        description = obj.get("description") or ""
        if not isinstance(description, str):
            raise UsageError(f"stdin line {lineno}: 'description' must be a string")
        return f"{title}\n{description}" if description else title
    return stripped


def score(
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read from this file instead of stdin.")
    ] = None,
) -> None:
    """Score titles (one per line) or listing JSONL (title/description) from stdin; one JSON line each.

    Each line: score and verdict (rules + model), the rule signals with their spans, the rule score, the
    model's probability, version, strongest features and product-type facts.

    Example: echo "bal korea isi 300" | tertib score
    """
    settings = common.settings()
    scorer = Scorer(scoring_lexicon(), Thresholds.from_settings(settings), load_for_settings(settings))
    name = str(file) if file is not None else "stdin"
    if file is not None:
        try:
            stream: BinaryIO = file.open("rb")
        except OSError as exc:
            raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    else:
        stream = getattr(sys.stdin, "buffer", None) or io.BytesIO(sys.stdin.read().encode("utf-8"))
    out = sys.stdout
    with stream:
        # bytes in, decoded strictly: binary or non-UTF-8 input is one clear error, never invalid JSON out
        for lineno, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"{name} line {lineno}: not UTF-8 text") from None
            if "\x00" in line:
                raise UsageError(f"{name} line {lineno}: binary data, not text")
            text = _text_of(line, lineno)
            if text is None:
                continue
            out.write(scorer.score(text).to_json() + "\n")
    out.flush()


def _actor(by: str | None) -> str:
    return by or common.settings().actor_name()


ByOption = Annotated[
    str | None, typer.Option("--by", help="Who does this (default: settings actor / $USER).")
]


@app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option("--status", help="Only this status: active, proposed, retired, rejected.")
    ] = None,
) -> None:
    """List terms with status, strength, provenance, approver and review precision.

    Example: tertib terms list --status active
    """
    with common.database().session() as session:
        rows = store.list_terms(session, status)
        precision = store.term_precision(session)
        table = Table(title=f"lexicon ({len(rows)} terms)")
        for col in ("id", "term", "category", "strength", "status", "provenance", "approved by", "precision"):
            table.add_column(col)
        for r in rows:
            ok, bad = precision.get(r.id, (0, 0))
            prec = f"{ok / (ok + bad):.2f} ({ok}/{ok + bad})" if ok + bad else "-"
            table.add_row(
                str(r.id), r.text, r.category, r.strength, r.status, r.provenance, r.approved_by or "-", prec
            )
        version = store.current_version(session)
    common.console.print(table)
    common.console.print(f"lexicon version #{version.id} {version.content_hash[:12]}", highlight=False)


@app.command()
def add(
    text: Annotated[str, typer.Argument(help="The term, e.g. 'ukay'.")],
    variant: Annotated[
        list[str] | None, typer.Option("--variant", "-V", help="A variant spelling (repeat).")
    ] = None,
    category: Annotated[str, typer.Option(help=f"One of: {', '.join(CATEGORIES)}.")] = "standard",
    signal: Annotated[
        str, typer.Option(help="IMPORT, IMPORT-leaning, NEUTRAL, LOCAL, NEW.")
    ] = "IMPORT-leaning",
    strength: Annotated[str, typer.Option(help=f"One of: {', '.join(STRENGTHS)}.")] = "M",
    note: Annotated[str, typer.Option(help="Why this term matters.")] = "",
    by: ByOption = None,
) -> None:
    """Add an active analyst term (a new lexicon version).

    Example: tertib terms add ukay --category regional --strength M --by analyst1
    """
    with common.database().session() as session:
        row, version = store.add_term(
            session,
            text,
            actor=_actor(by),
            variants=tuple(variant or ()),
            category=category,
            signal=signal,
            strength=strength,
            note=note,
        )
        common.console.print(f"added #{row.id} {row.text!r}; lexicon version #{version.id}", highlight=False)


@app.command()
def retire(
    term: Annotated[str, typer.Argument(help="Term id or text.")],
    by: ByOption = None,
) -> None:
    """Retire an active term (a new lexicon version). Example: tertib terms retire 12"""
    with common.database().session() as session:
        row, version = store.retire_term(session, term, actor=_actor(by))
        common.console.print(
            f"retired #{row.id} {row.text!r}; lexicon version #{version.id}", highlight=False
        )


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="TSV in the seed format (term, variants, category, …).")],
    by: ByOption = None,
) -> None:
    """Add or update terms from a TSV file. Example: tertib terms import extra.tsv"""
    with common.database().session() as session:
        added, updated, version = store.import_tsv(session, file, actor=_actor(by))
        common.console.print(
            f"imported {file}: {added} added, {updated} updated; lexicon version #{version.id}",
            highlight=False,
        )


@app.command()
def export(file: Annotated[Path, typer.Argument(help="Where to write the active terms as TSV.")]) -> None:
    """Write the active terms as TSV (importable). Example: tertib terms export lexicon.tsv"""
    with common.database().session() as session:
        count = store.export_tsv(session, file)
    common.console.print(f"wrote {count} active terms to {file}", highlight=False)


@app.command()
def suggest(
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=100_000, help="How many proposals to show.")
    ] = 20,
) -> None:
    """Show proposed terms (from discovery), best first. Example: tertib terms suggest -n 10"""
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    with common.database().session() as session:
        rows = ranked_proposals(session)[:limit]
        table = Table(title=f"proposed terms ({len(rows)})")
        for col in ("id", "phrase", "candidates", "others", "lift", "log-odds z", "source", "examples"):
            table.add_column(col)
        for r in rows:
            d = r.discovery or {}
            table.add_row(
                str(r.id),
                r.text,
                str(d.get("count_candidates", 0)),
                str(d.get("count_others", 0)),
                f"{d.get('lift', 0):.1f}",
                f"{d.get('log_odds', 0):.2f}",
                ",".join(d.get("sources", [])) or "-",
                ", ".join(d.get("examples", [])[:2]),
            )
    if not rows:
        common.console.print("no proposed terms (discovery runs after each sweep)")
        return
    common.console.print(table)


@app.command()
def approve(term: Annotated[str, typer.Argument(help="Proposed term id.")], by: ByOption = None) -> None:
    """Activate a proposed term; the next sweep queries it. Example: tertib terms approve 57 --by analyst1"""
    with common.database().session() as session:
        row, version = store.approve_term(session, term, actor=_actor(by))
        common.console.print(
            f"approved #{row.id} {row.text!r}; lexicon version #{version.id}", highlight=False
        )


@app.command()
def reject(term: Annotated[str, typer.Argument(help="Proposed term id.")], by: ByOption = None) -> None:
    """Reject a proposed term (kept as rejected so discovery does not propose it again)."""
    with common.database().session() as session:
        row = store.reject_term(session, term, actor=_actor(by))
        common.console.print(f"rejected #{row.id} {row.text!r}", highlight=False)
