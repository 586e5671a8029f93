"""JSON API under ``/api/v1`` for scripts: candidates, decisions, batches, rechecks, terms.

Auth: ``Authorization: Bearer <token>`` (``tertib users token NAME``); the same roles as the console —
auditors read, everyone else may also write. A browser session cookie is not accepted here, so the API
needs no CSRF token. The OpenAPI document is ``/api/v1/openapi.json``.

Handlers call the same service functions as the pages (``crawler.review``, ``crawler.exports.service``,
``crawler.terms.store``); to add an endpoint, declare pydantic request/response models here and keep the
logic in the service module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import select

from crawler.web import auth
from crawler.web.auth import Principal
from storage.models import Recheck, TakedownBatch, TakedownItem

router = APIRouter(prefix="/api/v1", tags=["api"])
DB_INT_MAX = 2**63 - 1  # SQLite and PostgreSQL bigint
BATCH_REF = r"^[A-Za-z0-9-]{1,40}$"  # a batch number (TTB-2026-0001) or id, ASCII only

# a platform key as the registry names it (crawler.registry); which platforms exist is checked against the
# installation's registry, so a platform added there needs no change here
PlatformName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,39}$")]
RejectReason = Literal[
    "legit_preloved", "legit_new", "local_secondhand", "not_clothing", "insufficient_evidence", "other"
]


def _known_platforms(request: Request, platforms: list[str]) -> None:
    """400 for a platform the installation's registry does not know."""
    registry = request.app.state.console.settings.registry
    unknown = [p for p in platforms if p not in registry]
    if unknown:
        raise HTTPException(400, f"unknown platform {unknown[0]!r}; known: {', '.join(registry.names)}")


class ErrorOut(BaseModel):
    detail: str


def api_user(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    c = request.app.state.console
    with c.db.session() as s:
        user = auth.principal_for_token(s, token.strip())
    if user is None:
        raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
    return user


def api_writer(user: Principal = Depends(api_user)) -> Principal:
    if not user.can_write:
        raise HTTPException(403, f"role {user.role} is read-only")
    return user


RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut},
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    404: {"model": ErrorOut},
}


# -- candidates and decisions ------------------------------------------------------------------


class CandidateOut(BaseModel):
    listing_id: int
    listing_key: str
    platform: str
    title: str
    price: int | None
    score: float | None
    verdict: str | None
    seller_name: str | None
    url: str
    first_seen: datetime


class CandidatePage(BaseModel):
    total: int
    items: list[CandidateOut]


@router.get("/candidates", response_model=CandidatePage, responses=RESPONSES)
def candidates(
    request: Request,
    user: Annotated[Principal, Depends(api_user)],
    platform: PlatformName | None = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> CandidatePage:
    """Undecided candidates, highest score first (the review queue)."""
    from crawler import review

    _known_platforms(request, [platform] if platform else [])
    c = request.app.state.console
    with c.db.session() as s:
        items = review.review_queue(s, platform=platform, min_score=min_score, limit=limit, offset=offset)
        total = review.queue_size(s, platform=platform, min_score=min_score)
    return CandidatePage(
        total=total,
        items=[CandidateOut(**{f: getattr(i, f) for f in CandidateOut.model_fields}) for i in items],
    )


class DecisionIn(BaseModel):
    listing_ids: list[Annotated[int, Field(ge=1, le=DB_INT_MAX)]] = Field(min_length=1, max_length=500)
    decision: Literal["approve", "reject"]
    reason: RejectReason | None = None
    note: str = Field(default="", max_length=2000)


class DecisionOut(BaseModel):
    decision_ids: list[int]
    reviewer: str


@router.post("/decisions", response_model=DecisionOut, status_code=201, responses=RESPONSES)
def decide(
    request: Request, body: DecisionIn, user: Annotated[Principal, Depends(api_writer)]
) -> DecisionOut:
    """Approve or reject listings; recorded (and custody-logged) under the token's user."""
    from crawler import review

    c = request.app.state.console
    with c.db.session() as s:
        if body.decision == "approve":
            ids = review.approve(s, body.listing_ids, by=user.name, note=body.note)
        else:
            ids = review.reject(
                s, body.listing_ids, by=user.name, reason=body.reason or "other", note=body.note
            )
    return DecisionOut(decision_ids=ids, reviewer=user.name)


class DecisionRow(BaseModel):
    id: int
    listing_id: int
    decision: str
    reason: str | None
    note: str
    reviewer: str
    decided_at: datetime


@router.get("/decisions", response_model=list[DecisionRow], responses=RESPONSES)
def decisions(
    request: Request,
    user: Annotated[Principal, Depends(api_user)],
    listing_id: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DecisionRow]:
    """Review decisions, newest first."""
    from storage.models import ReviewDecision

    c = request.app.state.console
    query = select(ReviewDecision).order_by(ReviewDecision.decided_at.desc(), ReviewDecision.id.desc())
    if listing_id is not None:
        query = query.where(ReviewDecision.listing_id == listing_id)
    with c.db.session() as s:
        rows = list(s.scalars(query.limit(limit)))
        return [
            DecisionRow(
                id=r.id,
                listing_id=r.listing_id,
                decision=r.decision,
                reason=r.reason,
                note=r.note,
                reviewer=r.reviewer,
                decided_at=r.decided_at,
            )
            for r in rows
        ]


# -- batches and rechecks ----------------------------------------------------------------------


class BatchOut(BaseModel):
    number: str
    name: str
    created_at: datetime
    created_by: str
    counts: dict[str, int]
    sends: dict[str, dict[str, str]]
    manifest_sha256: str | None


def _batch_out(summary: object) -> BatchOut:
    s = summary
    return BatchOut(
        number=s.number,  # type: ignore[attr-defined]
        name=s.name,  # type: ignore[attr-defined]
        created_at=s.created_at,  # type: ignore[attr-defined]
        created_by=s.created_by,  # type: ignore[attr-defined]
        counts=s.counts,  # type: ignore[attr-defined]
        sends={
            p: {"channel": ch, "sent_at": at.isoformat()}
            for p, (ch, at) in s.sends.items()  # type: ignore[attr-defined]
        },
        manifest_sha256=s.manifest_sha256,  # type: ignore[attr-defined]
    )


@router.get("/batches", response_model=list[BatchOut], responses=RESPONSES)
def batches(request: Request, user: Annotated[Principal, Depends(api_user)]) -> list[BatchOut]:
    """Every takedown batch with per-platform item counts and sends."""
    from crawler.exports import service

    c = request.app.state.console
    with c.db.session() as s:
        return [_batch_out(b) for b in service.list_batches(s)]


class BatchIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    platforms: list[PlatformName] = Field(default_factory=list, max_length=8)


@router.post("/batches", response_model=BatchOut, status_code=201, responses=RESPONSES)
def create_batch(
    request: Request, body: BatchIn, user: Annotated[Principal, Depends(api_writer)]
) -> BatchOut:
    """Export every approved, not yet requested item as a new batch (files, letters, signed manifest)."""
    from crawler.exports import service

    _known_platforms(request, body.platforms)
    c = request.app.state.console
    result = service.create_batch(c.db, c.settings, name=body.name, platforms=body.platforms, actor=user.name)
    with c.db.session() as s:
        return _batch_out(service.summarize(s, service.get_batch(s, result.number)))


@router.get("/batches/{number}", response_model=BatchOut, responses=RESPONSES)
def batch(
    request: Request,
    number: Annotated[str, PathParam(pattern=BATCH_REF)],
    user: Annotated[Principal, Depends(api_user)],
) -> BatchOut:
    from crawler.exports import service

    c = request.app.state.console
    with c.db.session() as s:
        return _batch_out(service.summarize(s, service.get_batch(s, number)))


class RecheckOut(BaseModel):
    id: int
    batch: str
    platform: str
    listing_id: int
    url: str
    round_days: int | None
    checked_at: datetime
    verdict: str
    rule: str


@router.get("/rechecks", response_model=list[RecheckOut], responses=RESPONSES)
def rechecks(
    request: Request,
    user: Annotated[Principal, Depends(api_user)],
    batch: Annotated[str | None, Query(pattern=BATCH_REF)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[RecheckOut]:
    """Recheck ledger rows for takedown items, newest first."""
    c = request.app.state.console
    query = (
        select(Recheck, TakedownBatch.number, TakedownItem.platform, TakedownItem.url)
        .join(TakedownItem, TakedownItem.id == Recheck.takedown_item_id)
        .join(TakedownBatch, TakedownBatch.id == TakedownItem.batch_id)
        .order_by(Recheck.checked_at.desc(), Recheck.id.desc())
        .limit(limit)
    )
    if batch:
        query = query.where(TakedownBatch.number == batch)
    with c.db.session() as s:
        return [
            RecheckOut(
                id=r.id,
                batch=number,
                platform=platform,
                listing_id=r.listing_id,
                url=url,
                round_days=r.round_days,
                checked_at=r.checked_at,
                verdict=r.verdict,
                rule=r.rule,
            )
            for r, number, platform, url in s.execute(query).all()
        ]


# -- terms -------------------------------------------------------------------------------------


class TermOut(BaseModel):
    id: int
    text: str
    status: str
    category: str
    strength: str
    provenance: str
    approved: int
    rejected: int
    precision: float | None


@router.get("/terms", response_model=list[TermOut], responses=RESPONSES)
def terms(
    request: Request,
    user: Annotated[Principal, Depends(api_user)],
    status: Literal["active", "proposed", "retired", "rejected"] | None = None,
) -> list[TermOut]:
    """Lexicon terms with review-based precision."""
    from crawler.terms import store

    c = request.app.state.console
    with c.db.session() as s:
        rows = store.list_terms(s, status)
        precision = store.term_precision(s)
        out = []
        for t in rows:
            a, r = precision.get(t.id, (0, 0))
            out.append(
                TermOut(
                    id=t.id,
                    text=t.text,
                    status=t.status,
                    category=t.category,
                    strength=t.strength,
                    provenance=t.provenance,
                    approved=a,
                    rejected=r,
                    precision=(a / (a + r)) if a + r else None,
                )
            )
        return out


class TermAction(BaseModel):
    action: Literal["approve", "reject", "retire"]


@router.post("/terms/{term_id}", response_model=TermOut, responses=RESPONSES)
def term_action(
    request: Request,
    term_id: Annotated[int, PathParam(ge=1, le=DB_INT_MAX)],
    body: TermAction,
    user: Annotated[Principal, Depends(api_writer)],
) -> TermOut:
    """Approve a proposed term, reject it, or retire an active one."""
    from crawler.terms import store

    c = request.app.state.console
    with c.db.session() as s:
        if body.action == "approve":
            row, _ = store.approve_term(s, term_id, actor=user.name)
        elif body.action == "reject":
            row = store.reject_term(s, term_id, actor=user.name)
        else:
            row, _ = store.retire_term(s, term_id, actor=user.name)
        a, r = store.term_precision(s).get(row.id, (0, 0))
        return TermOut(
            id=row.id,
            text=row.text,
            status=row.status,
            category=row.category,
            strength=row.strength,
            provenance=row.provenance,
            approved=a,
            rejected=r,
            precision=(a / (a + r)) if a + r else None,
        )
