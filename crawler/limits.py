"""Length limits for everything a platform sends us: the one place they are written down.

Sellers control every string a platform returns, and a 1 MB "title" must cost no more than a real one.
Every text field of a :class:`crawler.items.Listing` is cut to :data:`LISTING_FIELDS` when the listing is
built (``Listing.__post_init__``), the scorer cuts what it reads to :data:`SCORE_TEXT_MAX` before
normalising (``crawler.terms.scorer.Scorer.score``), and JSON bodies deeper than :data:`JSON_MAX_DEPTH`
are refused as malformed (``spiders.base.load_json``). Each stage behind these cuts is also linear in its
input (``tests/test_input_bounds.py``), so the limits bound the cost, not hide a quadratic step.

The numbers sit well above what the platforms allow (titles of 70 to 255 characters on the marketplaces
tertib knows, descriptions ≤ 3,000–5,000; ``../shared/reference/platforms.md``) and at or below the database
columns (``storage/models.py``), so a real listing is never cut and a hostile one never reaches a column it
does not fit.
"""

from __future__ import annotations

from typing import Any

TITLE_MAX = 1_000
DESCRIPTION_MAX = 20_000
# the scorer reads "title\ndescription"
SCORE_TEXT_MAX = TITLE_MAX + 1 + DESCRIPTION_MAX
QUERY_MAX = 300
URL_MAX = 2_000
JSON_MAX_DEPTH = 200  # real platform responses nest 20–40 levels

# Listing field → longest kept value (characters). Matches the storage columns where there is one.
LISTING_FIELDS: dict[str, int] = {
    "platform": 24,
    "listing_id": 160,
    "url": URL_MAX,
    "title": TITLE_MAX,
    "description": DESCRIPTION_MAX,
    "seller_id": 120,
    "seller_name": 300,
    "seller_city": 120,
    "shop_url": 1_000,
    "image_url": URL_MAX,
    "category": 300,
    "condition": 40,
    "sold_text": 100,
    "status": 60,
    "query": QUERY_MAX,
    "source_url": URL_MAX,
}
CONTACT_HANDLES_MAX = 50  # handles kept per listing
CONTACT_HANDLE_LEN = 120


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (never splitting a surrogate pair: Python strings have none)."""
    return text if len(text) <= limit else text[:limit]


def clip_fields(obj: Any, limits: dict[str, int] = LISTING_FIELDS) -> None:
    """Cut every string attribute named in ``limits`` in place (non-strings are left alone)."""
    for name, limit in limits.items():
        value = getattr(obj, name, None)
        if isinstance(value, str) and len(value) > limit:
            setattr(obj, name, value[:limit])
    handles = getattr(obj, "contact_handles", None)
    if isinstance(handles, list) and (
        len(handles) > CONTACT_HANDLES_MAX or any(len(h) > CONTACT_HANDLE_LEN for h in handles)
    ):
        obj.contact_handles = [str(h)[:CONTACT_HANDLE_LEN] for h in handles[:CONTACT_HANDLES_MAX]]
