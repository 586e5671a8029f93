"""Nothing is signed unverified: what an export checks about each item before it may enter a batch.

:func:`screen` takes the rows :func:`crawler.exports.rows.select_rows` chose and returns the ones that may
be signed, plus the excluded ones with their reason (written into the manifest's ``excluded`` list and
shown by the CLI, never dropped silently):

1. **The decision is real**: the row's latest ``approve`` decision has its chained ``review`` custody
   entry and agrees with it (reviewer, decision, time, and the digest of the row). A decision inserted or
   edited directly in the database has no such entry: the item is excluded ("forged").
2. **The evidence is intact**: the row's capture passes the same checks as ``tertib evidence verify``
   (:func:`crawler.evidence.verify.capture_problems`); a damaged capture excludes the item, naming the
   damage.
3. **There is evidence at all**: an approved listing with no observable capture is excluded unless the
   caller passes ``allow_missing_evidence`` (``--allow-missing-evidence``); then it is exported with
   ``evidence_status = "missing"`` in its link-list row, counted in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from crawler.config import Settings
from crawler.evidence.verify import capture_problems
from crawler.exports.rows import ExportRow
from storage import custody
from storage.db import Database
from storage.models import CustodyEntry, ReviewDecision

EVIDENCE_OK = "ok"
EVIDENCE_MISSING = "missing"


@dataclass(slots=True)
class Screened:
    rows: list[ExportRow]
    excluded: list[dict[str, Any]] = field(default_factory=list)
    missing_evidence: int = 0


def _decision_problem(decision: ReviewDecision | None, entry: CustodyEntry | None) -> str | None:
    if decision is None:
        return "its approval is not in the database any more"
    if entry is None:
        return f"approval (decision {decision.id}) has no review custody entry: inserted outside tertib"
    details = entry.details or {}
    fields = custody.decision_fields(decision)
    same = (
        entry.actor == decision.reviewer
        and details.get("decision") == decision.decision
        and details.get("listing_id") == decision.listing_id
        and custody.iso(entry.at) == fields["decided_at"]
        and (not entry.object_digest or entry.object_digest == custody.row_digest(fields))
    )
    if not same:
        return f"approval (decision {decision.id}) differs from its custody entry {entry.seq}: edited"
    return None


def screen(
    db: Database,
    settings: Settings,
    rows: list[ExportRow],
    *,
    allow_missing_evidence: bool = False,
    check_evidence: bool = True,
) -> Screened:
    """The rows that may be signed, and the excluded ones with reasons (see the module docstring)."""
    result = Screened(rows=[])
    decision_ids = [r.decision_id for r in rows if r.decision_id is not None]
    decisions: dict[int, ReviewDecision] = {}
    entries: dict[int, CustodyEntry] = {}
    with db.session() as session:
        for start in range(0, len(decision_ids), 500):
            chunk = decision_ids[start : start + 500]
            decisions.update(
                (d.id, d) for d in session.scalars(select(ReviewDecision).where(ReviewDecision.id.in_(chunk)))
            )
        # review entries name the decision in their details; one pass over them (no JSON index needed)
        wanted = set(decision_ids)
        for entry in session.scalars(select(CustodyEntry).where(CustodyEntry.action == "review")):
            decision_id = (entry.details or {}).get("decision_id")
            if decision_id in wanted:
                entries[decision_id] = entry
    damaged = (
        capture_problems(db, settings, [r.evidence_id for r in rows if r.evidence_id is not None])
        if check_evidence
        else {}
    )
    for row in rows:
        reason = None
        if row.decision_id is None:
            reason = "no approval decision"
        else:
            reason = _decision_problem(decisions.get(row.decision_id), entries.get(row.decision_id))
        if reason is None and row.evidence_id is not None and row.evidence_id in damaged:
            reason = f"evidence capture {row.evidence_id} is damaged: " + "; ".join(
                damaged[row.evidence_id][:3]
            )
        if reason is None and row.evidence_id is None:
            if allow_missing_evidence:
                row.evidence_status = EVIDENCE_MISSING
                result.missing_evidence += 1
            else:
                reason = "no evidence capture (export with --allow-missing-evidence to send it anyway)"
        if reason is not None:
            result.excluded.append(
                {
                    "listing_key": row.listing_key,
                    "listing_id": row.db_listing_id,
                    "capture_id": row.evidence_id,
                    "decision_id": row.decision_id,
                    "reason": reason,
                }
            )
            continue
        result.rows.append(row)
    return result
