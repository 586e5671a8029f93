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
from rich.markup import escape
from rich.table import Table

from crawler import cli_common as common
from crawler.errors import TertibError, UsageError
from crawler.terms import store
from crawler.terms.discovery import ProposalView, last_discovery, ranked_proposals, source_precision
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
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per proposal on stdout.")] = False,
) -> None:
    """Show proposed terms (from discovery), best first, with the sources that agreed and their evidence.

    Example: tertib terms suggest -n 25
    """
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    with common.database().session() as session:
        views = [ProposalView.of(r) for r in ranked_proposals(session)[:limit]]
        status = last_discovery(session)
        precision = source_precision(session)
    if as_json:
        for view in views:
            typer.echo(json.dumps(view.to_json(), ensure_ascii=False, sort_keys=True))
        return
    if status:
        common.console.print(
            f"discovery after sweep run #{status['sweep_run_id']}: {status.get('message', '')}",
            highlight=False,
            markup=False,
        )
    if not views:
        common.console.print("no proposed terms (discovery runs after each sweep)")
        return
    table = Table(title=f"proposed terms ({len(views)})")
    for col in ("id", "phrase", "score", "cand", "bg", "contrast", "context", "sources", "first seen"):
        table.add_column(
            col, no_wrap=col != "sources", justify="left" if col in ("phrase", "sources") else "right"
        )
    for v in views:
        table.add_row(
            str(v.id),
            escape(v.phrase),
            f"{v.score:.1f}",
            str(v.count_candidates),
            str(v.count_background),
            f"{v.contrast:.1f}",
            f"{v.context:.2f}",
            escape(",".join(v.sources) or "-"),
            (v.first_seen or "")[:10],
        )
    common.console.print(table)
    common.console.print("evidence of one proposal: tertib terms show ID", highlight=False)
    if precision:
        common.console.print(
            "proposal precision by source (approved/decided): "
            + ", ".join(f"{src} {ok}/{ok + bad}" for src, (ok, bad) in sorted(precision.items())),
            highlight=False,
            markup=False,
        )


@app.command()
def show(term: Annotated[str, typer.Argument(help="Term id or text.")]) -> None:
    """A term's discovery evidence: example listings with links, sellers, sources, first seen, and what its
    query found after approval. Example: tertib terms show 57"""
    from crawler.terms import store
    from crawler.terms.discovery import ProposalView

    with common.database().session() as session:
        v = ProposalView.of(store.get_term(session, term))

    def say(text: str) -> None:
        common.console.print(text, highlight=False, markup=False)

    say(f"#{v.id} {v.phrase!r} — {v.status}, {v.provenance}")
    if not v.sweep_run_ids and not v.yields:
        say("no discovery evidence (not proposed by discovery)")
        return
    near = f" (near {', '.join(v.neighbours)})" if v.neighbours else ""
    say(
        f"score {v.score:.2f}: contrast z {v.contrast:.2f} ({v.count_candidates} candidates, "
        f"{v.count_background} ordinary listings), context {v.context:.2f}{near}"
    )
    say(f"sources: {', '.join(v.sources) or '-'}")
    if v.platforms or v.blocked_on:
        say(
            f"platforms suggesting it: {', '.join(v.platforms) or '-'}; "
            f"refusing to search it: {', '.join(v.blocked_on) or '-'}"
        )
    if v.followed:
        say(f"in {v.followed} listings of followed sellers")
    runs = ", ".join(map(str, v.sweep_run_ids))
    say(f"first seen {v.first_seen or '-'}, last seen {v.last_seen or '-'}, sweep runs {runs or '-'}")
    if v.sellers:
        say("sellers: " + ", ".join(f"{name} ({count})" for name, count in v.sellers))
    for ex in v.example_listings:
        say(f"  {ex.get('key', '')}  {ex.get('title', '')[:90]}")
        if ex.get("url"):
            say(f"    {ex['url']}")
    for y in v.yields:
        say(
            f"after approval, sweep run #{y.get('sweep_run_id')}: its query found {y.get('listings', 0)} "
            f"listings, {y.get('new_listings', 0)} that no other term found "
            f"({y.get('new_candidates', 0)} candidates)"
        )


@app.command()
def discover(
    run: Annotated[int, typer.Option("--run", help="Sweep run id to mine.", min=1)],
    min_support: Annotated[int, typer.Option(help="Candidates that must carry a phrase.", min=1)] = 3,
    min_z: Annotated[float, typer.Option(help="Contrast z a phrase needs on its own.", min=0, max=20)] = 1.96,
    limit: Annotated[int, typer.Option(help="Most proposals to store.", min=1, max=500)] = 30,
    refresh_background: Annotated[
        bool, typer.Option(help="Crawl the background first when it is missing or stale.")
    ] = True,
) -> None:
    """Mine one sweep run for emerging terms (the scheduler runs this after every sweep).

    Example: tertib terms discover --run 12
    """
    from crawler.terms.background import ensure_background
    from crawler.terms.discovery import run_discovery
    from crawler.terms.model import load_for_settings
    from crawler.terms.scorer import Thresholds
    from storage.models import SweepRun

    settings = common.settings()
    db = common.database()
    with db.session() as session:
        found = session.get(SweepRun, run)
        if found is None or found.kind != "sweep":
            raise UsageError(f"no sweep run #{run}")
        platforms = list(found.platforms or [])
    if refresh_background and settings.discovery_crawls:
        problem = ensure_background(settings, db, platforms=platforms)
        if problem:
            log.warning("%s", problem)
    with db.session() as session:
        rows = run_discovery(
            session,
            run,
            min_support=min_support,
            min_z=min_z,
            limit=limit,
            actor=settings.actor_name(),
            thresholds=Thresholds.from_settings(settings),
            model=load_for_settings(settings),
            min_background=settings.discovery_background_min_docs,
        )
        info = (session.get(SweepRun, run).stats or {}).get("discovery") or {}  # type: ignore[union-attr]
    if rows and settings.discovery_crawls:
        from crawler.terms.probe import ensure_probe

        problem = ensure_probe(settings)
        if problem:
            log.warning("%s", problem)
    common.console.print(str(info.get("message", "")), highlight=False, markup=False)
    common.console.print(f"discovered {len(rows)} proposed terms from sweep run #{run}", highlight=False)


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


@app.command()
def probe(
    top: Annotated[int | None, typer.Option("--top", min=1, max=200, help="How many proposals.")] = None,
    sandbox: Annotated[
        str | None, typer.Option("--sandbox", help="Reach every platform at this sandbox root instead.")
    ] = None,
) -> None:
    """Search the best unprobed proposals once on discovery_probe_platforms; note which ones are refused.

    Example: tertib terms probe --top 10
    """
    from crawler.terms.probe import run_probe

    if sandbox:
        common.set_overrides(sandbox_url=sandbox)
    run_id = run_probe(top=top)
    if run_id is None:
        common.console.print("nothing to probe (no unprobed proposals, or no probe platform)")
        return
    with common.database().session() as session:
        from sqlalchemy import select

        from storage.models import Finding

        refused = session.scalars(
            select(Finding.query).where(Finding.sweep_run_id == run_id, Finding.kind == "query_blocked")
        ).all()
    common.console.print(
        f"probe run #{run_id}: {len(refused)} refused by a platform"
        + (f" ({', '.join(sorted(set(map(str, refused))))})" if refused else ""),
        highlight=False,
        markup=False,
    )


background_app = typer.Typer(
    help="Discovery's background corpus: ordinary clothing listings that candidates are compared with.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(background_app, name="background")


@background_app.command("refresh")
def background_refresh(
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "--platform", "-p", help="Platform (repeatable; default: discovery_background_platforms)."
        ),
    ] = None,
    sandbox: Annotated[
        str | None, typer.Option("--sandbox", help="Reach every platform at this sandbox root instead.")
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress display.")] = False,
) -> None:
    """Crawl the generic background queries now and replace the stored background.

    Example: tertib terms background refresh
    """
    import os

    from crawler.terms.background import load_background, refresh_background

    if sandbox:
        common.set_overrides(sandbox_url=sandbox)
    run_id = refresh_background(
        platforms=[p.strip().lower() for p in platform or []] or None,
        progress=not no_progress,
        trigger="schedule" if os.environ.get("TERTIB_JOB_RUN_ID") else "manual",
    )
    with common.database().session() as session:
        from storage.models import SweepRun

        run = session.get(SweepRun, run_id)
        status = load_background(session, with_docs=False)
        from sqlalchemy import func, select

        from storage.models import BackgroundDoc

        got = session.scalar(select(func.count()).where(BackgroundDoc.sweep_run_id == run_id)) or 0
        attention = list(run.needs_attention or []) if run is not None else []
        state = run.status if run is not None else "failed"
    for line in attention:
        common.console.print(f"[yellow]needs attention[/] {line}", highlight=False, markup=True)
    common.console.print(
        f"background crawl #{run_id} ({state}): {got} ordinary listings; "
        + ", ".join(f"{p} {when:%Y-%m-%d %H:%M} UTC" for p, when in sorted(status.fetched.items())),
        highlight=False,
    )
    if not got:
        raise TertibError(
            f"background crawl #{run_id} found no listings"
            + (f": {'; '.join(attention)}" if attention else "")
            + " (discovery keeps any older background)"
        )


@background_app.command("show")
def background_show() -> None:
    """How big and how old the stored background is. Example: tertib terms background show"""
    from crawler.terms.background import background_queries, load_background

    settings = common.settings()
    with common.database().session() as session:
        status = load_background(session)
    common.console.print(status.status(), highlight=False, markup=False)
    common.console.print(f"queries: {', '.join(background_queries(settings))}", highlight=False, markup=False)
