"""The normaliser undoes every evasion trick and maps each match back to the original characters."""

from __future__ import annotations

import pytest

from crawler.terms.normalise import normalise


def tokens(text: str) -> list[tuple[str, str]]:
    """(normalised token, the original characters it came from)."""
    n = normalise(text)
    return [(tok, n.original_text(s, e)) for tok, s, e in n.tokens()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # NFKC: full-width and mathematical letters, ligatures
        ("ＢＡＬ ＫＯＲＥＡ", [("bal", "ＢＡＬ"), ("korea", "ＫＯＲＥＡ")]),
        ("𝐁𝐚𝐥𝐩𝐫𝐞𝐬", [("balpres", "𝐁𝐚𝐥𝐩𝐫𝐞𝐬")]),
        ("ﬂanel", [("flanel", "ﬂanel")]),
        # case and diacritics
        ("BaL KÓRÉA", [("bal", "BaL"), ("korea", "KÓRÉA")]),
        ("kore\u0301a", [("korea", "kore\u0301a")]),
        # emoji and decoration
        ("🔥BAL🔥 korea ✨✨", [("bal", "BAL"), ("korea", "korea")]),
        ("★彡 thrift 彡★", [("thrift", "thrift")]),
        # homoglyphs and zero-width characters
        ("BАL", [("bal", "BАL")]),  # Cyrillic А
        ("bal\u200bpres", [("balpres", "bal\u200bpres")]),
        # leetspeak
        ("thr1ft b4l", [("thrift", "thr1ft"), ("bal", "b4l")]),
        ("pr3l0v3d", [("preloved", "pr3l0v3d")]),
        ("ba1", [("bal", "ba1")]),
        ("5econd", [("second", "5econd")]),  # a leading digit is a letter when that spells a known word
        ("5kg 2nd 3second", [("5kg", "5kg"), ("2nd", "2nd"), ("3second", "3second")]),  # else a number
        ("b@l", [("bal", "b@l")]),
        ("$econd", [("second", "$econd")]),
        ("k0rea 7hrift", [("korea", "k0rea"), ("thrift", "7hrift")]),
        ("thr!ft", [("thrift", "thr!ft")]),
        # numbers with units stay numbers
        ("isi500pcs 100kg x100", [("isi500pcs", "isi500pcs"), ("100kg", "100kg"), ("x100", "x100")]),
        ("Rp5.000.000", [("rp5000000", "Rp5.000.000")]),
        # repeated letters
        ("thriftt baaal", [("thrift", "thriftt"), ("bal", "baaal")]),
        ("ballpress", [("balpres", "ballpress")]),
        # separators inside words
        ("t.h.r.i.f.t", [("thrift", "t.h.r.i.f.t")]),
        ("b a l  korea", [("bal", "b a l"), ("korea", "korea")]),
        ("bal-pres", [("balpres", "bal-pres")]),
        ("b_a_l", [("bal", "b_a_l")]),
        # joined words stay one token (the matcher splits them with the lexicon)
        ("balpresimport", [("balpresimport", "balpresimport")]),
        # abbreviations
        ("bks korea", [("bekas", "bks"), ("korea", "korea")]),
        ("brg scnd", [("barang", "brg"), ("second", "scnd")]),
        # handles lose the @
        ("@thrift.korea", [("thrift", "thrift"), ("korea", "korea")]),
    ],
)
def test_tricks_with_original_spans(text: str, expected: list[tuple[str, str]]) -> None:
    assert tokens(text) == expected


def test_two_letter_words_are_not_joined() -> None:
    assert normalise("di ke bal").text == "di ke bal"
    assert normalise("S M L XL").text == "sml xl"  # a run of single letters is joined, harmless


def test_span_mapping_is_exact_for_every_character() -> None:
    text = "Jual 🔥B A L🔥 k0rea isi 300pcs!!"
    n = normalise(text)
    assert n.text == "jual bal korea isi 300pcs"
    start = n.text.index("korea")
    assert n.original_span(start, start + 5) == (text.index("k0rea"), text.index("k0rea") + 5)
    assert n.original_text(n.text.index("bal"), n.text.index("bal") + 3) == "B A L"
    with pytest.raises(ValueError):
        n.original_span(0, len(n.text) + 1)


def test_empty_and_symbol_only() -> None:
    assert normalise("").text == ""
    assert normalise("🔥✨!!").text == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # masks standing for hidden letters, read back with the vocabulary
        ("b*l korea", [("bal", "b*l"), ("korea", "korea")]),
        ("B**L J*P*NG", [("bal", "B**L"), ("jepang", "J*P*NG")]),
        ("b.l", [("bal", "b.l")]),
        ("b#l", [("bal", "b#l")]),
        ("b♥l", [("bal", "b♥l")]),
        ("b🔥a🔥l", [("bal", "b🔥a🔥l")]),
        ("b * a * l", [("bal", "b * a * l")]),
        ("bek*s imp*r", [("bekas", "bek*s"), ("impor", "imp*r")]),
        ("p*k*ian", [("pakaian", "p*k*ian")]),
        ("k*r*ng*n", [("karungan", "k*r*ng*n")]),
        ("b|a|l", [("bal", "b|a|l")]),
        # digits and vowel-less forms, only when they spell a known word
        ("1mp0r 8al", [("impor", "1mp0r"), ("bal", "8al")]),
        ("thrft blprs", [("thrift", "thrft"), ("balpres", "blprs")]),
        ("pcs jkt sby", [("pcs", "pcs"), ("jkt", "jkt"), ("sby", "sby")]),
        # known words glued by a joiner stand apart; other joins stay
        ("bal.korea.isi.300", [("bal", "bal"), ("korea", "korea"), ("isi", "isi"), ("300", "300")]),
        ("bal-pres-korea", [("balpres", "bal-pres"), ("korea", "korea")]),
        ("ex-jepang eks-LN", [("ex", "ex"), ("jepang", "jepang"), ("eks", "eks"), ("ln", "LN")]),
        (
            "k-pop anak-anak awul-awul",
            [("kpop", "k-pop"), ("anakanak", "anak-anak"), ("awulawul", "awul-awul")],
        ),
        # a mask that spells nothing separates
        ("jaket🔥korea", [("jaket", "jaket"), ("korea", "korea")]),
        ("merah--putih", [("merah", "merah"), ("putih", "putih")]),
        # look-alike letters: small capitals, fancy-text letters, enclosed letters, currency signs, flags
        ("ʙᴀʟ ᴋᴏʀᴇᴀ", [("bal", "ʙᴀʟ"), ("korea", "ᴋᴏʀᴇᴀ")]),
        ("ᗷᗩᒪ", [("bal", "ᗷᗩᒪ")]),
        ("🅑🅐🅛", [("bal", "🅑🅐🅛")]),
        ("b€kas", [("bekas", "b€kas")]),
        ("thrift🇰🇷", [("thrift", "thrift"), ("korea", "🇰🇷")]),
        ("🇧🇦🇱", [("bal", "🇧🇦🇱")]),
    ],
)
def test_masks_read_back_with_the_vocabulary(text: str, expected: list[tuple[str, str]]) -> None:
    assert tokens(text) == expected
    assert normalise(text).text == " ".join(t for t, _ in expected)
