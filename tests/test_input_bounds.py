"""Hostile input is bounded and linear: a seller's 1 MB title, endless words, deep JSON, huge arrays.

CPU time (``time.process_time``) is measured, not wall time, so other work on the machine does not move
the figures. Linearity is checked as a ratio between two sizes of the same adversarial input measured in
the same test: 10× the input must cost far less than the 100× a quadratic step would.
"""

from __future__ import annotations

import gc
import time

import pytest

from crawler.items import Listing
from crawler.limits import DESCRIPTION_MAX, JSON_MAX_DEPTH, SCORE_TEXT_MAX, TITLE_MAX
from crawler.registry import default_registry
from crawler.terms.lexicon import Lexicon
from crawler.terms.matcher import Matcher
from crawler.terms.normalise import normalise
from crawler.terms.scorer import Scorer
from spiders.base import BodyError, find_deep, load_json

PROFILES = default_registry().profiles

# what sellers wrote, and shapes that used to be quadratic (each a unit repeated to the wanted size)
ADVERSARIAL = {
    "repeated terms": "bal korea ",
    "negated terms": "bukan bal korea barang ",
    "quantities": "isi 500 pcs 1 bal 20kg rp 5jt/bal ",
    "homoglyphs": "bаl kоrеа ",
    "spaced letters": "b a l k o r e a ",
    "dotted letters": "t.h.r.i.f.t ",
    "leetspeak word": "b4l",
    "joined words": "balpresimportkorea",
    "emoji separators": "bal🔥korea✨ ",
    "zero-width joins": "b\u200ba\u200bl ",
    "one endless word": "a",
    "mixed endless word": "jualbalpresimport1bal",
}


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(Lexicon.packaged())


def cpu(fn, *args):  # type: ignore[no-untyped-def]
    start = time.process_time()
    fn(*args)
    return time.process_time() - start


def text_of(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_a_1mb_title_scores_in_well_under_a_second(name: str, scorer: Scorer) -> None:
    title = text_of(ADVERSARIAL[name], 1_000_000)
    spent = cpu(scorer.score, title)
    assert spent < 1.0, f"{name}: {spent:.2f} s of CPU for a 1 MB title"
    result = scorer.score(title)
    assert 0.0 <= result.score <= 1.0 and len(result.text) <= SCORE_TEXT_MAX


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_every_stage_is_linear_without_the_cut(name: str, scorer: Scorer) -> None:
    """normalise → matcher → scorer on uncut text: 10× the input costs about 10×, not 100×."""
    matcher: Matcher = scorer.matcher
    small, large = text_of(ADVERSARIAL[name], 50_000), text_of(ADVERSARIAL[name], 500_000)

    def stages(text: str) -> None:
        norm = normalise(text)
        matcher.match_rows(norm.text)
        scorer.score_normalised(norm)

    # each size measured on text the per-word caches have not seen (an endless word is one cache entry), the
    # garbage collector paused (its passes grow with the live objects, not with our algorithms) and the best
    # of two runs kept (CPU time still moves a little on a loaded machine)
    gc.collect()
    gc.disable()
    try:
        small_cost = min(cpu(stages, small), cpu(stages, small))
        large_cost = min(cpu(stages, large), cpu(stages, large))
    finally:
        gc.enable()
    ratio = large_cost / max(small_cost, 2e-3)
    assert ratio < 45, f"{name}: 10× the text cost {ratio:.0f}× (quadratic would be ~100×)"


def test_listing_fields_are_cut_to_their_documented_length() -> None:
    listing = Listing(
        platform="tokopedia",
        listing_id="1" * 500,
        url="https://x/" + "a" * 10_000,
        title="bal " * 500_000,
        description="d" * 1_000_000,
        seller_name="s" * 10_000,
        contact_handles=[f"wa:{i}" for i in range(500)],
    )
    assert len(listing.title) == TITLE_MAX and len(listing.description) == DESCRIPTION_MAX
    assert (
        len(listing.listing_id) == 160 and len(listing.url) == 2000 and len(listing.seller_name or "") == 300
    )
    assert len(listing.contact_handles) == 50


def test_100000_deep_json_is_a_malformed_body_not_a_recursion_error() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(BodyError, match="nested deeper"):
        load_json(deep)
    assert load_json("[" * JSON_MAX_DEPTH + "]" * JSON_MAX_DEPTH)  # the limit itself is fine
    assert load_json('{"a": "' + "[" * 5000 + '"}') == {"a": "[" * 5000}  # brackets in strings do not count


@pytest.mark.parametrize("platform", sorted(PROFILES))
def test_every_parser_blocks_deep_json_cleanly(platform: str) -> None:
    profile = PROFILES[platform]
    deep = ('{"data":' * 100_000 + "1" + "}" * 100_000).encode()
    if profile.parse_search is not None:
        page = profile.parse_search(deep, url="https://x/search", query="bal", page=1)
        assert page.block is not None and not page.listings
    result = profile.parse_detail(deep, url="https://x/p/1")
    assert result.verdict == "UNOBSERVABLE"


def test_find_deep_on_a_huge_array_is_linear() -> None:
    body = {"items": list(range(2_000_000)), "x": {"name": 1}}
    assert cpu(find_deep, body, "name") < 1.0
