"""Terms: proposed terms with their discovery figures and example listings (approve/reject), and the active
lexicon with precision per term from review decisions; both paged."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from console.auth import Principal
from console.deps import Id, Offset, allowed, back_to, console_of, page_user, render
from console.paging import page_of
from crawler.errors import NotFound
from crawler.terms import store
from storage import repositories as repo

router = APIRouter(include_in_schema=False)


@router.get("/terms", response_class=HTMLResponse)
def terms_page(
    request: Request, page: Offset = 1, proposed_page: Offset = 1, user: Principal = Depends(page_user)
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        active = page_of(store.list_terms(s, "active"), page)
        proposed = page_of(store.list_terms(s, "proposed"), proposed_page, 20)
        precision = store.term_precision(s)
        keys = sorted(
            {
                k
                for t in proposed.items
                for k in (t.discovery or {}).get("examples", [])[:5]
                if isinstance(k, str)
            }
        )
        examples = repo.listings_by_keys(s, keys)
    return render(
        request, "terms.html.j2", active=active, proposed=proposed, precision=precision, examples=examples
    )


@router.post("/terms/{term_id}/{action}")
def term_action(
    request: Request, term_id: Id, action: str, user: Principal = Depends(allowed("terms"))
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        if action == "approve":
            store.approve_term(s, term_id, actor=user.name)
        elif action == "reject":
            store.reject_term(s, term_id, actor=user.name)
        elif action == "retire":
            store.retire_term(s, term_id, actor=user.name)
        else:
            raise NotFound(f"no term action {action}")
    return back_to("/terms")
