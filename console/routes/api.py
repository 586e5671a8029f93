"""JSON API under ``/api/v1`` for scripts: candidates, decisions, batches, rechecks, terms.

Auth: ``Authorization: Bearer <token>`` (``tertib users token NAME``); the same roles as the console —
auditors read, everyone else may also write. A browser session cookie is not accepted here, so the API
needs no CSRF token. The OpenAPI document is ``/api/v1/openapi.json``.

Handlers call the same service functions as the pages (``crawler.review``, ``crawler.exports.service``,
``crawler.audit.overview``, ``crawler.terms.store``) and answer with the services' own types where they fit
(:class:`crawler.review.QueueItem`, :class:`crawler.audit.overview.LedgerRow`, the
:class:`crawler.review.RejectReason` enum); platform names come from the installation's registry
(``Settings.registry``). To add an endpoint, declare its request/response models here and keep the logic
in the service module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from console import auth
from console.auth import Principal
from console.deps import BATCH_REF, JSON_INT_MAX, console_of
from crawler import review
from crawler.audit import overview
from crawler.exports import service
from crawler.terms import store
from storage.models import Term

router = APIRouter(prefix="/api/v1", tags=["api"])


# a platform key as the registry names it (crawler.registry); which platforms exist is checked against the
# installation's registry at request time (_known_platforms), so a platform added there needs no change here
# The OpenAPI document lists the installation's platforms as the field's enum (platform_openapi replaces the
# mark), so a client generated from it, or a schema fuzzer, sends only platforms that exist.
PLATFORM_MARK = "x-tertib-platform"
PlatformName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,39}$"),
    WithJsonSchema({"type": "string", PLATFORM_MARK: True}),
]
MAX_PLATFORMS = 64  # a bound on a request's list, not a claim about how many platforms exist


def _known_platforms(request: Request, platforms: list[str]) -> None:
    """400 for a platform the installation's registry does not know."""
    registry = console_of(request).settings.registry
    unknown = [p for p in platforms if p not in registry]
    if unknown:
        raise HTTPException(400, f"unknown platform {unknown[0]!r}; known: {', '.join(registry.names)}")


def platform_openapi(app: FastAPI, names: Sequence[str]) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` for this installation: the generated document with every platform field's mark
    replaced by an enum of the registry's platform names (built once, then cached as FastAPI does)."""

    def mark(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get(PLATFORM_MARK):
                return {"type": "string", "enum": list(names)}
            return {key: mark(value) for key, value in node.items()}
        if isinstance(node, list):
            return [mark(value) for value in node]
        return node

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            app.openapi_schema = mark(schema)
        return app.openapi_schema

    return build


class ErrorOut(BaseModel):
    detail: str


def api_user(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    with console_of(request).db.session() as s:
        user = auth.principal_for_token(s, token.strip())
    if user is None:
        raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
    return user


def api_allowed(action: str) -> Callable[[Principal], Principal]:
    """A dependency: the token's user, whose role may take ``action`` (console.auth.PERMISSIONS)."""

    def dependency(user: Annotated[Principal, Depends(api_user)]) -> Principal:
        if not user.may(action):
            raise HTTPException(403, f"role {user.role} may not {action}")
        return user

    return dependency


RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "A body that is not JSON at all, or a platform not installed"},
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    404: {"model": ErrorOut},
    409: {"model": ErrorOut, "description": "The data's state refuses the request (nothing to export …)"},
}


# -- candidates and decisions ------------------------------------------------------------------


class CandidatePage(BaseModel):
    total: int
    items: list[review.QueueItem]


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
    _known_platforms(request, [platform] if platform else [])
    with console_of(request).db.session() as s:
        items = review.review_queue(s, platform=platform, min_score=min_score, limit=limit, offset=offset)
        total = review.queue_size(s, platform=platform, min_score=min_score)
    return CandidatePage(total=total, items=items)


class DecisionIn(BaseModel):
    listing_ids: list[Annotated[int, Field(ge=1, le=JSON_INT_MAX)]] = Field(min_length=1, max_length=500)
    decision: Literal["approve", "reject"]
    reason: review.RejectReason | None = None
    note: str = Field(default="", max_length=2000)


class DecisionOut(BaseModel):
    decision_ids: list[int]
    reviewer: str


@router.post("/decisions", response_model=DecisionOut, status_code=201, responses=RESPONSES)
def decide(
    request: Request, body: DecisionIn, user: Annotated[Principal, Depends(api_allowed("review"))]
) -> DecisionOut:
    """Approve or reject listings; recorded (and custody-logged) under the token's user."""
    with console_of(request).db.session() as s:
        if body.decision == "approve":
            ids = review.approve(s, body.listing_ids, by=user.name, note=body.note)
        else:
            reason = body.reason or review.RejectReason.OTHER
            ids = review.reject(s, body.listing_ids, by=user.name, reason=reason.value, note=body.note)
    return DecisionOut(decision_ids=ids, reviewer=user.name)


class DecisionRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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
    listing_id: Annotated[int | None, Query(ge=1, le=JSON_INT_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DecisionRow]:
    """Review decisions, newest first."""
    with console_of(request).db.session() as s:
        rows = review.list_decisions(s, listing_id=listing_id, limit=limit)
        return [DecisionRow.model_validate(r) for r in rows]


# -- batches and rechecks ----------------------------------------------------------------------


class SendOut(BaseModel):
    channel: str
    sent_at: datetime


class BatchOut(BaseModel):
    number: str
    name: str
    created_at: datetime
    created_by: str
    counts: dict[str, int]
    sends: dict[str, SendOut]
    manifest_sha256: str | None


def _batch_out(s: service.BatchSummary) -> BatchOut:
    return BatchOut(
        number=s.number,
        name=s.name,
        created_at=s.created_at,
        created_by=s.created_by,
        counts=s.counts,
        sends={p: SendOut(channel=ch, sent_at=at) for p, (ch, at) in s.sends.items()},
        manifest_sha256=s.manifest_sha256,
    )


@router.get("/batches", response_model=list[BatchOut], responses=RESPONSES)
def batches(request: Request, user: Annotated[Principal, Depends(api_user)]) -> list[BatchOut]:
    """Every takedown batch with per-platform item counts and sends."""
    with console_of(request).db.session() as s:
        return [_batch_out(b) for b in service.list_batches(s)]


class BatchIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    platforms: list[PlatformName] = Field(default_factory=list, max_length=MAX_PLATFORMS)


@router.post("/batches", response_model=BatchOut, status_code=201, responses=RESPONSES)
def create_batch(
    request: Request, body: BatchIn, user: Annotated[Principal, Depends(api_allowed("batches"))]
) -> BatchOut:
    """Export every approved, not yet requested item as a new batch (files, letters, signed manifest)."""
    _known_platforms(request, body.platforms)
    c = console_of(request)
    result = service.create_batch(c.db, c.settings, name=body.name, platforms=body.platforms, actor=user.name)
    with c.db.session() as s:
        return _batch_out(service.summarize(s, service.get_batch(s, result.number)))


@router.get("/batches/{number}", response_model=BatchOut, responses=RESPONSES)
def batch(
    request: Request,
    number: Annotated[str, PathParam(pattern=BATCH_REF)],
    user: Annotated[Principal, Depends(api_user)],
) -> BatchOut:
    with console_of(request).db.session() as s:
        return _batch_out(service.summarize(s, service.get_batch(s, number)))


@router.get("/rechecks", response_model=list[overview.LedgerRow], responses=RESPONSES)
def rechecks(
    request: Request,
    user: Annotated[Principal, Depends(api_user)],
    batch: Annotated[str | None, Query(pattern=BATCH_REF)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[overview.LedgerRow]:
    """Recheck ledger rows for takedown items, newest first."""
    with console_of(request).db.session() as s:
        return overview.ledger_rows(s, batch=batch, limit=limit)


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


def _term_out(row: Term, precision: dict[int, tuple[int, int]]) -> TermOut:
    a, r = precision.get(row.id, (0, 0))
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


@router.get("/terms", response_model=list[TermOut], responses=RESPONSES)
def terms(
    request: Request,
    user: Annotated[Principal, Depends(api_user)],
    status: Literal["active", "proposed", "retired", "rejected"] | None = None,
) -> list[TermOut]:
    """Lexicon terms with review-based precision."""
    with console_of(request).db.session() as s:
        precision = store.term_precision(s)
        return [_term_out(t, precision) for t in store.list_terms(s, status)]


class TermAction(BaseModel):
    action: Literal["approve", "reject", "retire"]


@router.post("/terms/{term_id}", response_model=TermOut, responses=RESPONSES)
def term_action(
    request: Request,
    term_id: Annotated[int, PathParam(ge=1, le=JSON_INT_MAX)],
    body: TermAction,
    user: Annotated[Principal, Depends(api_allowed("terms"))],
) -> TermOut:
    """Approve a proposed term, reject it, or retire an active one."""
    with console_of(request).db.session() as s:
        if body.action == "approve":
            row, _ = store.approve_term(s, term_id, actor=user.name)
        elif body.action == "reject":
            row = store.reject_term(s, term_id, actor=user.name)
        else:
            row, _ = store.retire_term(s, term_id, actor=user.name)
        return _term_out(row, store.term_precision(s))
