"""Exact, joined, fuzzy and quantity matching over normalised text."""

from __future__ import annotations

import pytest

from crawler.terms.lexicon import Lexicon, LexTerm
from crawler.terms.matcher import Matcher
from crawler.terms.normalise import normalise


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(Lexicon.packaged())


def found(matcher: Matcher, text: str) -> list[tuple[str, str, str]]:
    n = normalise(text)
    return [(m.name, m.kind, n.original_text(m.start, m.end)) for m in matcher.match(n)]


def test_exact_terms_and_variants_on_word_boundaries(matcher: Matcher) -> None:
    assert found(matcher, "Jual BAL SEGEL korea") == [
        ("bal segel", "exact", "BAL SEGEL"),
        ("korea", "exact", "korea"),
    ]
    assert found(matcher, "ballpress jepang") == [
        ("balpres", "exact", "ballpress"),
        ("jepang", "exact", "jepang"),
    ]
    # "bal" inside other words never matches
    assert found(matcher, "baju balita, sambal, global, balon") == []


def test_overlapping_terms_keep_both_but_drop_contained(matcher: Matcher) -> None:
    names = [m[0] for m in found(matcher, "baju bekas korea")]
    assert names == ["pakaian bekas", "korea"]  # "baju bekas" and "bekas korea" overlap on "bekas"
    assert [m[0] for m in found(matcher, "baju bekas impor")] == ["baju bekas impor"]


def test_joined_words_are_segmented(matcher: Matcher) -> None:
    assert found(matcher, "balpresimport") == [
        ("balpres", "joined", "balpres"),
        ("impor", "joined", "import"),
    ]
    assert [m[0] for m in found(matcher, "jualbalkorea")] == ["bal", "korea"]
    assert found(matcher, "balikpapan") == []


def test_fuzzy_near_misses_of_long_terms_only(matcher: Matcher) -> None:
    (m,) = matcher.match(normalise("karungann"))  # collapsed to "karungan": exact
    assert m.kind == "exact"
    (m,) = matcher.match(normalise("rekondsi"))
    assert (m.name, m.kind) == ("rekondisi", "fuzzy") and 0.8 < m.similarity < 1
    assert matcher.match(normalise("balon")) == []  # short words are never fuzzy-matched


@pytest.mark.parametrize(
    ("text", "kind", "qty", "unit"),
    [
        ("isi 500 pcs", "pieces", 500, "pcs"),
        ("isi500pcs", "pieces", 500, "pcs"),
        ("300 helai", "pieces", 300, "helai"),
        ("100 kg", "weight", 100, "kg"),
        ("1 bal", "bales", 1, "bal"),
        ("2 karung", "bales", 2, "karung"),
    ],
)
def test_quantities(matcher: Matcher, text: str, kind: str, qty: int, unit: str) -> None:
    ms = [m for m in matcher.match(normalise(text)) if m.term is None]
    assert [(m.kind, m.quantity, m.unit) for m in ms] == [(kind, qty, unit)]


def test_price_per_bale_and_money_masking(matcher: Matcher) -> None:
    kinds = [m.kind for m in matcher.match(normalise("Rp 5 jt/bal"))]
    assert "price_per_bale" in kinds and "exact" in kinds
    # "rb" is a regional word for used goods, but not inside a price
    assert matcher.match(normalise("harga 50 rb")) == []
    assert [m.name for m in matcher.match(normalise("baju rb murah"))] == ["rombengan"]


def test_custom_lexicon() -> None:
    lex = Lexicon.of([LexTerm("ukay", ("ukay-ukay",), "regional", "IMPORT", "M")])
    m = Matcher(lex)
    assert [x.name for x in m.match(normalise("UKAY-UKAY korea"))] == ["ukay"]
    assert [x.name for x in m.match(normalise("ukay ukay"))] == ["ukay"]
