"""Hypothesis fuzzing of what reads seller-controlled text: normaliser, matcher, scorer, platform parsers.

Properties, for any input: no exception (parsers may only *report* a malformed body, as a block or an
UNOBSERVABLE verdict); normalised spans map back inside the original text; matches lie inside the
normalised text; scores stay in [0, 1] with a known verdict and serialise as JSON.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.items import SearchPage
from crawler.registry import default_registry
from crawler.terms.lexicon import Lexicon
from crawler.terms.normalise import normalise
from crawler.terms.scorer import Scorer

PROFILES = default_registry().profiles

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# text sellers could write: words of the trade, evasions, look-alikes, separators, emoji, control chars
TRADE = [
    "bal", "korea", "import", "bekas", "thrift", "b4l", "b a l", "t.h.r.i.f.t", "bukan", "isi 300 pcs",
    "rp 5jt/bal", "20kg", "preloved", "karung", "bаl", "\u200b", "🔥", "\ufeff", "@", "$", "!", "|",
]  # fmt: skip
hostile_text = st.one_of(
    st.text(max_size=400),
    st.lists(st.one_of(st.sampled_from(TRADE), st.text(max_size=6)), max_size=60).map(" ".join),
    st.lists(st.sampled_from(TRADE), max_size=80).map("".join),
)


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(Lexicon.packaged())


@FUZZ
@given(text=hostile_text)
def test_normalise_maps_every_token_back_inside_the_original(text: str) -> None:
    norm = normalise(text)
    assert isinstance(norm.text, str) and "  " not in norm.text
    for _token, start, end in norm.tokens():
        a, b = norm.original_span(start, end)
        assert 0 <= a < b <= len(text)


@FUZZ
@given(text=hostile_text)
def test_matcher_spans_lie_inside_the_normalised_text(text: str, scorer: Scorer) -> None:
    norm = normalise(text)
    rows, _words = scorer.matcher.match_rows(norm.text)
    for row in rows:
        assert 0 <= row[1] < row[2] <= len(norm.text)


@FUZZ
@given(text=hostile_text)
def test_scores_are_bounded_and_serialise(text: str, scorer: Scorer) -> None:
    result = scorer.score(text)
    assert 0.0 <= result.score <= 1.0
    assert result.verdict in ("strong", "candidate", "weak", "clear")
    data = json.loads(result.to_json())
    for signal in data["signals"]:
        a, b = signal["span"]
        assert 0 <= a <= b <= len(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=40,
)
bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=500).map(lambda t: f"<html><script>window.__X__ = {t};</script></html>".encode()),
)


@FUZZ
@given(
    platform=st.sampled_from(sorted(PROFILES)), body=bodies, status=st.sampled_from([200, 302, 404, 429, 500])
)
def test_parsers_never_raise_on_any_body(platform: str, body: bytes, status: int) -> None:
    profile = PROFILES[platform]
    if profile.parse_search is not None:
        page = profile.parse_search(
            body, url="https://example.test/search?q=bal", query="bal", page=1, status=status
        )
        assert isinstance(page, SearchPage)
    result = profile.parse_detail(body, url="https://example.test/p/1", status=status, headers={})
    assert result.verdict in ("LIVE", "REMOVED", "HIDDEN", "UNOBSERVABLE")
