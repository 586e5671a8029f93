"""The lexicon in the database: seed import, changes, versions, approvals and per-term precision.

Every function takes the caller's SQLAlchemy session (``with db.session() as s:``) and leaves the commit to
it. Rules:

- **Seed on first use** (:func:`ensure_seed`): when the ``terms`` table is empty, the packaged seed
  (``crawler/data/lexicon.tsv``) is imported as active ``seed`` terms. Running it again does nothing.
- **Every change makes a lexicon version** (:func:`record_version`): a :class:`LexiconVersion` keyed by the
  content hash of the active terms (:meth:`Lexicon.content_hash`) with a snapshot. Going back to an earlier
  content re-uses that earlier version (same content, same hash, same row).
- **Sweeps record the version they used**: :func:`current_version` returns the version of the active
  terms right now (creating it if the terms changed outside these functions).
- **Approvals, rejections, additions and retirements are custody-logged** (``storage.custody.append``,
  actions ``term_add``, ``term_approve``, ``term_reject``, ``term_retire``, ``lexicon_import``) with the
  actor, the term id and a SHA-256 of the term's content.

The actor defaults to ``Settings.actor_name()`` in the CLI (``--by NAME`` overrides). To add a lexicon
operation: change ``Term`` rows, call :func:`record_version` if active content changed, and append a
custody entry.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crawler.errors import NotFound, ParseError, UsageError
from crawler.terms.lexicon import Lexicon, LexTerm, validate_term
from crawler.terms.normalise import normalise_phrase
from storage import custody
from storage.models import LexiconVersion, ReviewDecision, Score, Term


def _now() -> datetime:
    return datetime.now(UTC)


def to_lexterm(row: Term) -> LexTerm:
    return LexTerm(
        text=row.text,
        variants=tuple(row.variants or ()),
        category=row.category,
        signal=row.signal,
        strength=row.strength,
        note=row.note or "",
        status=row.status,
        provenance=row.provenance,
        id=row.id,
    )


def term_digest(row: Term) -> str:
    blob = json.dumps(to_lexterm(row).content(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _log(session: Session, actor: str, action: str, row: Term, **details: Any) -> None:
    custody.append(
        session,
        actor=actor,
        action=action,
        object_type="term",
        object_id=str(row.id),
        object_digest=term_digest(row),
        details={"text": row.text, "status": row.status, **details},
    )


def ensure_seed(session: Session, actor: str = "tertib") -> bool:
    """Import the packaged seed when there are no terms yet. Returns True when it imported."""
    if session.scalar(select(func.count()).select_from(Term)):
        return False
    seed = Lexicon.packaged()
    now = _now()
    for t in seed.terms:
        session.add(
            Term(
                text=t.text,
                variants=list(t.variants),
                category=t.category,
                signal=t.signal,
                strength=t.strength,
                status="active",
                provenance="seed",
                note=t.note,
                created_at=now,
                created_by=actor,
                approved_at=now,
                approved_by="seed",
            )
        )
    session.flush()
    record_version(session, actor=actor, reason="seed import")
    return True


def load_lexicon(session: Session, *, seed: bool = True) -> Lexicon:
    """The active lexicon from the database (seeding it on first use), tagged with its version id."""
    if seed:
        ensure_seed(session)
    rows = session.scalars(select(Term).where(Term.status == "active").order_by(Term.id)).all()
    lex = Lexicon.of((to_lexterm(r) for r in rows), source="database")
    version = session.scalar(select(LexiconVersion).where(LexiconVersion.content_hash == lex.content_hash()))
    return Lexicon.of(lex.terms, source="database", version_id=version.id if version else None)


def record_version(session: Session, *, actor: str, reason: str) -> LexiconVersion:
    """The version row for the active terms now: an existing one with the same content, or a new one."""
    session.flush()
    rows = session.scalars(select(Term).where(Term.status == "active").order_by(Term.id)).all()
    lex = Lexicon.of(to_lexterm(r) for r in rows)
    digest = lex.content_hash()
    found = session.scalar(select(LexiconVersion).where(LexiconVersion.content_hash == digest))
    if found is not None:
        return found
    version = LexiconVersion(
        content_hash=digest,
        created_at=_now(),
        created_by=actor,
        reason=reason,
        term_count=len(rows),
        snapshot=lex.snapshot(),
    )
    session.add(version)
    session.flush()
    return version


def current_version(session: Session) -> LexiconVersion:
    """The lexicon version a sweep starting now uses (seeds the lexicon on a fresh database)."""
    ensure_seed(session)
    return record_version(session, actor="tertib", reason="active terms")


def get_term(session: Session, ref: str | int) -> Term:
    """A term by id, or by its text (or any normalised spelling of it)."""
    text = str(ref).strip()
    row: Term | None = None
    if text.isdigit():
        row = session.get(Term, int(text))
    if row is None:
        row = session.scalar(select(Term).where(Term.text == text))
    if row is None:
        key = normalise_phrase(text)
        for candidate in session.scalars(select(Term)):
            if normalise_phrase(candidate.text) == key:
                row = candidate
                break
    if row is None:
        raise NotFound(f"no term {text!r} (see `tertib terms list`)")
    return row


def find_by_key(session: Session, text: str) -> Term | None:
    key = normalise_phrase(text)
    for row in session.scalars(select(Term)):
        if normalise_phrase(row.text) == key or key in {normalise_phrase(v) for v in row.variants or ()}:
            return row
    return None


def add_term(
    session: Session,
    text: str,
    *,
    actor: str,
    variants: tuple[str, ...] = (),
    category: str = "standard",
    signal: str = "IMPORT-leaning",
    strength: str = "M",
    note: str = "",
) -> tuple[Term, LexiconVersion]:
    """Add an analyst term, active at once (the analyst approves it by adding it)."""
    ensure_seed(session, actor)
    term = validate_term(LexTerm(text, variants, category, signal, strength, note, provenance="analyst"))
    existing = find_by_key(session, term.text)
    if existing is not None:
        raise UsageError(
            f"term {term.text!r} already exists as #{existing.id} {existing.text!r} ({existing.status})"
        )
    now = _now()
    row = Term(
        text=term.text,
        variants=list(term.variants),
        category=term.category,
        signal=term.signal,
        strength=term.strength,
        status="active",
        provenance="analyst",
        note=term.note,
        created_at=now,
        created_by=actor,
        approved_at=now,
        approved_by=actor,
    )
    session.add(row)
    session.flush()
    _log(session, actor, "term_add", row)
    return row, record_version(session, actor=actor, reason=f"add {row.text!r}")


def retire_term(session: Session, ref: str | int, *, actor: str) -> tuple[Term, LexiconVersion]:
    row = get_term(session, ref)
    if row.status != "active":
        raise UsageError(f"term #{row.id} {row.text!r} is {row.status}, not active")
    row.status = "retired"
    row.retired_at = _now()
    session.flush()
    _log(session, actor, "term_retire", row)
    return row, record_version(session, actor=actor, reason=f"retire {row.text!r}")


def approve_term(session: Session, ref: str | int, *, actor: str) -> tuple[Term, LexiconVersion]:
    """Activate a proposed (or rejected/retired) term; the next sweep queries it."""
    row = get_term(session, ref)
    if row.status == "active":
        raise UsageError(f"term #{row.id} {row.text!r} is already active")
    previous = row.status
    row.status = "active"
    row.approved_at = _now()
    row.approved_by = actor
    row.retired_at = None
    session.flush()
    _log(session, actor, "term_approve", row, previous_status=previous)
    return row, record_version(session, actor=actor, reason=f"approve {row.text!r}")


def reject_term(session: Session, ref: str | int, *, actor: str) -> Term:
    row = get_term(session, ref)
    if row.status != "proposed":
        raise UsageError(f"term #{row.id} {row.text!r} is {row.status}; only proposed terms can be rejected")
    row.status = "rejected"
    session.flush()
    _log(session, actor, "term_reject", row)
    return row


def import_tsv(session: Session, path: Path, *, actor: str) -> tuple[int, int, LexiconVersion]:
    """Add or update terms from a TSV file (the seed format); returns (added, updated, version)."""
    ensure_seed(session, actor)
    lex = Lexicon.from_tsv(path)
    added = updated = 0
    now = _now()
    for t in lex.terms:
        row = session.scalar(select(Term).where(Term.text == t.text))
        if row is None:
            row = Term(
                text=t.text,
                provenance="analyst",
                created_at=now,
                created_by=actor,
            )
            session.add(row)
            added += 1
        elif list(row.variants or ()) == list(t.variants) and (
            row.category,
            row.signal,
            row.strength,
            row.status,
        ) == (t.category, t.signal, t.strength, "active"):
            continue
        else:
            updated += 1
        row.variants = list(t.variants)
        row.category, row.signal, row.strength = t.category, t.signal, t.strength
        row.note = t.note or row.note or ""
        if row.status != "active":
            row.status = "active"
            row.approved_at = now
            row.approved_by = actor
            row.retired_at = None
        session.flush()
        _log(session, actor, "lexicon_import", row, file=path.name)
    version = record_version(session, actor=actor, reason=f"import {path.name}")
    return added, updated, version


def export_tsv(session: Session, path: Path) -> int:
    lex = load_lexicon(session)
    try:
        path.write_text(lex.to_tsv(), encoding="utf-8")
    except OSError as exc:
        raise ParseError(f"cannot write {path}: {exc.strerror}") from None
    return len(lex.active)


def list_terms(session: Session, status: str | None = None) -> list[Term]:
    ensure_seed(session)
    query = select(Term).order_by(Term.id)
    if status:
        query = query.where(Term.status == status)
    return list(session.scalars(query))


def term_precision(session: Session) -> dict[int, tuple[int, int]]:
    """term id → (approved, rejected) review decisions on listings whose score explanation matched it.

    A decision counts for the score it names (``ReviewDecision.score_id``), else the listing's latest
    score. Terms without decisions are absent. Precision = approved / (approved + rejected).
    """
    by_text = {row.text: row.id for row in session.scalars(select(Term))}
    latest: dict[int, Score] = {}
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    decisions = session.scalars(select(ReviewDecision).order_by(ReviewDecision.id)).all()
    for decision in decisions:
        score: Score | None = None
        if decision.score_id is not None:
            score = session.get(Score, decision.score_id)
        if score is None:
            if decision.listing_id not in latest:
                found = session.scalar(
                    select(Score)
                    .where(Score.listing_id == decision.listing_id)
                    .order_by(Score.id.desc())
                    .limit(1)
                )
                if found is None:
                    continue
                latest[decision.listing_id] = found
            score = latest[decision.listing_id]
        signals = (score.explanation or {}).get("signals", [])
        terms = {by_text[s["term"]] for s in signals if s.get("term") in by_text and s.get("weight", 0) > 0}
        for term_id in terms:
            counts[term_id][0 if decision.decision == "approve" else 1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def ensure_seeded(session: Session, actor: str = "tertib") -> str:
    """Seed the database lexicon on first use (``tertib init``, the demo); returns a one-line summary."""
    seeded = ensure_seed(session, actor)
    version = current_version(session)
    state = "seeded the packaged lexicon" if seeded else "lexicon present"
    return f"{state}: {version.term_count} active terms, version #{version.id} ({version.content_hash[:12]})"
