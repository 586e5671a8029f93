"""Append-only, hash-chained custody log.

Every capture, review decision, export, recheck and verification appends one entry::

    entry_hash = sha256(canonical_json({seq, at, actor, action, object_type, object_id,
                                        object_digest, details, prev_hash}))

with ``prev_hash`` the previous entry's ``entry_hash`` (:data:`GENESIS` for the first). Nothing updates or
deletes entries. :func:`verify` recomputes every hash and link and reports each problem by sequence number:
a modified field breaks that entry's hash, a deleted entry leaves a gap in ``seq`` and a broken link, and a
truncated tail is caught against an anchor (:func:`head`) recorded elsewhere — batch manifests and signed
verification reports carry it.

Writers: :func:`append` adds one entry; :func:`append_many` adds a batch's entries (``seq+1 … seq+K``)
from one head read, chained in memory and inserted in one savepoint — the evidence recorder's batches use
it. Both stay linear when another session or process appends at the same time:

- on PostgreSQL, an appending transaction first takes the chain's transaction-scoped advisory lock
  (:func:`_serialise`), so concurrent appenders queue up and each reads the head its predecessor
  committed: no collisions, no retries, however many writers (READ COMMITTED alone would let two read
  the same head, and a busy chain would exhaust the retries below);
- on SQLite, the same call takes the database's write lock before the head is read.

Should a head read still go stale (a caller bypassing the lock), the sequence-number collision rolls the
savepoint back and the entries are rebuilt from the new head (``retries`` times).

The lock is held until the appending transaction ends, as a colliding row lock would be, so keep those
transactions short. One chain has one lock name (:data:`CHAIN_LOCK`, ``storage.locks``); separate chains per
worker or shard anchored into this one would each take their own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.locks import xact_locks
from storage.models import CustodyEntry

GENESIS = "0" * 64
# the chain's lock name (storage.locks); a chain per worker or shard would lock its own name
CHAIN_LOCK = "custody:global"


def _serialise(session: Session) -> None:
    """Wait for the chain's lock (advisory lock on PostgreSQL, write lock on SQLite) until commit."""
    xact_locks(session, [CHAIN_LOCK])


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    object_digest: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    payload = {
        "seq": seq,
        "at": iso(at),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_digest": object_digest,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def entry_hash_of(entry: CustodyEntry) -> str:
    return entry_hash(
        seq=entry.seq,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        object_type=entry.object_type,
        object_id=entry.object_id,
        object_digest=entry.object_digest,
        details=entry.details or {},
        prev_hash=entry.prev_hash,
    )


def head(session: Session) -> tuple[int, str]:
    """(last sequence number, last hash); (0, GENESIS) for an empty log."""
    last = session.scalars(select(CustodyEntry).order_by(CustodyEntry.seq.desc()).limit(1)).first()
    return (last.seq, last.entry_hash) if last else (0, GENESIS)


@dataclass(frozen=True)
class EntrySpec:
    """What one entry says; :func:`append_many` gives it its place in the chain (seq, prev_hash, hash)."""

    actor: str
    action: str
    object_type: str
    object_id: str | int
    object_digest: str = ""
    details: dict[str, Any] | None = None
    at: datetime | None = None


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    object_digest: str = "",
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
    retries: int = 5,
) -> CustodyEntry:
    """Append one entry in the caller's transaction (flushed; committed with the caller's work).

    Concurrent appenders queue on the chain's lock (PostgreSQL) or collide on the primary key and retry
    on a fresh head inside a savepoint (SQLite), so the chain stays linear.
    """
    _serialise(session)
    details = json.loads(canonical_json(details or {}))  # exactly what the JSON column will return
    for attempt in range(retries):
        seq, prev = head(session)
        # the time is read after the head, so times rise with sequence numbers
        entry = CustodyEntry(
            seq=seq + 1,
            at=at or datetime.now(UTC),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            object_digest=object_digest,
            details=details,
            prev_hash=prev,
        )
        entry.entry_hash = entry_hash_of(entry)
        try:
            with session.begin_nested():
                session.add(entry)
            return entry
        except IntegrityError:
            if attempt == retries - 1:
                raise
    raise AssertionError("unreachable")


def append_many(session: Session, specs: Sequence[EntrySpec], *, retries: int = 5) -> tuple[int, str]:
    """Append ``specs`` in order as ``seq+1 … seq+K`` in the caller's transaction; returns the new head.

    The head is read once per attempt, the entries are chained in memory and inserted with one
    executemany in a savepoint. If another writer took one of those sequence numbers (primary-key
    collision), the savepoint is rolled back and the whole run is rebuilt from the new head.
    """
    if not specs:
        return head(session)
    _serialise(session)
    # exactly what the JSON column will return, so the stored hash recomputes identically
    prepared = [
        {
            "at": spec.at,
            "actor": spec.actor,
            "action": spec.action,
            "object_type": spec.object_type,
            "object_id": str(spec.object_id),
            "object_digest": spec.object_digest,
            "details": json.loads(canonical_json(spec.details or {})),
        }
        for spec in specs
    ]
    table = CustodyEntry.__table__
    assert isinstance(table, Table)
    for attempt in range(retries):
        seq, prev = head(session)
        now = datetime.now(UTC)  # after the head read, so times rise with sequence numbers
        rows: list[dict[str, Any]] = []
        for fields in prepared:
            seq += 1
            row = {**fields, "at": fields["at"] or now, "seq": seq, "prev_hash": prev}
            row["entry_hash"] = prev = entry_hash(**row)
            rows.append(row)
        try:
            with session.begin_nested():
                session.execute(insert(table), rows)
            return seq, prev
        except IntegrityError:
            if attempt == retries - 1:
                raise
    raise AssertionError("unreachable")


# -- digests of the rows an entry vouches for ---------------------------------------------------
# An entry's ``object_digest`` names the exact content of the row it was written for, so a row edited or
# inserted directly in the database no longer matches any entry (``crawler.evidence.verify`` checks).


def row_digest(fields: dict[str, Any]) -> str:
    """SHA-256 of a row's content as canonical JSON (times in UTC ISO form)."""
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


def decision_fields(decision: Any) -> dict[str, Any]:
    """What a review decision says: the fields its ``review`` entry's digest covers."""
    return {
        "id": decision.id,
        "listing_id": decision.listing_id,
        "score_id": decision.score_id,
        "decision": decision.decision,
        "reason": decision.reason,
        "note": decision.note or "",
        "reviewer": decision.reviewer,
        "simulated": bool(decision.simulated),
        "decided_at": iso(decision.decided_at),
    }


ITEM_FIELDS = ("listing_id", "platform", "row_no", "decision_id", "capture_id", "url")


def items_digest(items: Sequence[dict[str, Any]]) -> str:
    """Digest of a batch's items (the fields of :data:`ITEM_FIELDS`, in row order per platform)."""
    rows = sorted(([item.get(k) for k in ITEM_FIELDS] for item in items), key=lambda r: (str(r[1]), r[2]))
    return row_digest({"items": rows})


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"custody entry {self.seq}: {self.problem}"


def iter_entries(session: Session, batch: int = 5000) -> Iterator[CustodyEntry]:
    last = 0
    while True:
        rows = session.scalars(
            select(CustodyEntry).where(CustodyEntry.seq > last).order_by(CustodyEntry.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(session: Session, anchor: tuple[int, str] | None = None) -> list[ChainProblem]:
    """Check every entry's hash and link; with ``anchor`` (seq, hash) also detect a truncated tail."""
    problems: list[ChainProblem] = []
    expected_seq, prev = 1, GENESIS
    seen: dict[int, str] = {}
    for entry in iter_entries(session):
        if entry.seq != expected_seq:
            problems.append(ChainProblem(expected_seq, f"missing (next entry is {entry.seq})"))
        if entry.prev_hash != prev:
            problems.append(ChainProblem(entry.seq, "prev_hash does not match the previous entry"))
        if entry_hash_of(entry) != entry.entry_hash:
            problems.append(ChainProblem(entry.seq, "content does not match its hash (modified)"))
        seen[entry.seq] = entry.entry_hash
        expected_seq, prev = entry.seq + 1, entry.entry_hash
    if anchor is not None:
        seq, digest = anchor
        if seq > 0 and seq not in seen:
            problems.append(ChainProblem(seq, "anchored entry is missing (log truncated)"))
        elif seq > 0 and seen[seq] != digest:
            problems.append(ChainProblem(seq, "anchored hash differs (log rewritten)"))
    return problems
