"""The sandbox catalog: determinism, label/evasion mix, drift terms, JSONL validation."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from sandbox.catalog import DRIFT_TERMS, CatalogError, generate, load_catalog, write_catalog
from sandbox.state import SandboxState, tokenize

ROOT = Path(__file__).resolve().parent.parent
LEXICON_CANDIDATES = (
    ROOT / "crawler" / "data" / "lexicon.tsv",
    ROOT.parent / "shared" / "reference" / "lexicon.tsv",
)


def lexicon_phrases() -> set[str]:
    path = next((p for p in LEXICON_CANDIDATES if p.is_file()), None)
    if path is None:
        pytest.skip("no lexicon.tsv available")
    phrases: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) >= 2:
            phrases.update(p.strip().lower() for p in [cols[0], *cols[1].split("|")] if p.strip())
    return phrases


def squash(text: str) -> str:
    """A crude normaliser: lowercase, leetspeak undone, separators and repeated letters removed."""
    text = text.lower().translate(str.maketrans("013457@!|", "oleastaii"))
    text = re.sub(r"[^a-z]", "", text)
    return re.sub(r"(.)\1+", r"\1", text)


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    write_catalog(generate(42, 800), a)
    write_catalog(generate(42, 800), b)
    write_catalog(generate(43, 800), c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert len(a.read_text().splitlines()) == 800


def test_round_trip(tmp_path: Path) -> None:
    listings = generate(5, 300)
    path = tmp_path / "cat.jsonl"
    write_catalog(listings, path)
    assert load_catalog(path) == listings


def test_label_evasion_and_platform_mix() -> None:
    listings = generate(1, 4000)
    labels = Counter(x.label for x in listings)
    assert labels == {
        "illegal_import": 1400,
        "legit_preloved": 800,
        "legit_new": 600,
        "legit_local_secondhand": 400,
        "unrelated": 800,
    }
    evasion = Counter(x.evasion for x in listings if x.label == "illegal_import")
    share = {k: v / labels["illegal_import"] for k, v in evasion.items()}
    assert 0.48 <= share["plain"] <= 0.60 and 0.20 <= share["spelling"] <= 0.30
    # "none": ~4 % by design plus drift listings whose drift word is their only trade word (~3 %)
    assert 0.12 <= share["euphemism"] <= 0.22 and share["none"] <= 0.10
    assert {x.evasion for x in listings if x.label != "illegal_import"} == {"plain"}
    assert {x.platform for x in listings} == {
        "tokopedia", "tiktokshop", "shopee", "lazada", "blibli", "facebook", "instagram", "bukalapak"
    }  # fmt: skip
    ids = [x.key for x in listings]
    assert len(set(ids)) == len(ids)


def test_listing_ids_follow_the_contract() -> None:
    for x in generate(2, 1500):
        pattern = {
            "tokopedia": r"\d{10}",
            "tiktokshop": r"\d{19}",
            "shopee": r"\d+\.\d+",
            "lazada": r"\d{10}",
            "blibli": r"[A-Z]{3}-\d{5}-\d{5}",
            "facebook": r"\d{16}",
            "instagram": r"[A-Za-z0-9_\-]{11}",
            "bukalapak": r"[a-z0-9]{7}",
        }[x.platform]
        assert re.fullmatch(pattern, x.listing_id), x.key
        if x.platform == "shopee":
            assert x.listing_id == f"{x.extra['shopid']}.{x.extra['itemid']}"


def test_drift_terms_are_new_words_used_by_illegal_sellers_only() -> None:
    phrases = lexicon_phrases()
    squashed = {squash(p) for p in phrases}
    for term in DRIFT_TERMS:
        assert term not in phrases
        assert squash(term) not in squashed
        # no lexicon term of 3+ letters hides inside the drift term, and the other way round
        assert not any(len(s) >= 3 and s in squash(term) for s in squashed), term
        assert not any(squash(term) in s for s in squashed), term
    listings = generate(9, 5000)
    illegal = [x for x in listings if x.label == "illegal_import"]
    with_drift = [x for x in illegal if "drift_term" in x.extra]
    assert 0.15 <= len(with_drift) / len(illegal) <= 0.25
    assert all(x.extra["drift_term"] in (x.title + " " + x.description).lower() for x in with_drift)
    legit_text = " ".join(
        (x.title + " " + x.description).lower() for x in listings if x.label != "illegal_import"
    )
    assert not any(term in legit_text for term in DRIFT_TERMS)
    assert set(SandboxState(listings).drift_terms()) == set(DRIFT_TERMS)


def test_no_signal_listings_carry_no_lexicon_phrase_but_share_a_handle() -> None:
    phrases = lexicon_phrases()
    listings = generate(4, 5000)
    by_handle: Counter[str] = Counter()
    for x in listings:
        if x.label == "illegal_import" and x.evasion != "none":
            by_handle.update(x.contact_handles)
    none = [x for x in listings if x.evasion == "none"]
    assert none
    for x in none:
        text = " " + " ".join(tokenize(x.title + " " + x.description.split("WA ")[0].split("IG ")[0])) + " "
        hits = [p for p in phrases if f" {' '.join(tokenize(p))} " in text]
        assert not hits, (x.title, hits)
        assert any(by_handle[h] for h in x.contact_handles), x.key


def test_hard_negatives_and_sellers_across_platforms() -> None:
    listings = generate(6, 5000)
    titles = [x.title.lower() for x in listings if x.label != "illegal_import"]
    assert any("bal tisu" in t for t in titles)
    assert any("ex korea" in t and "preloved" in t for t in titles)
    platforms_per_handle: dict[str, set[str]] = {}
    for x in listings:
        for h in x.contact_handles:
            platforms_per_handle.setdefault(h, set()).add(x.platform)
    assert sum(1 for p in platforms_per_handle.values() if len(p) >= 3) >= 10
    for x in listings:
        for h in x.contact_handles:
            if h.startswith("wa:"):
                assert h[5:] in re.sub(r"\D", "", x.description) or x.label != "illegal_import"
    relisted = [x for x in listings if x.relist_of]
    assert relisted and all("~" in x.image_seed for x in relisted)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 2: not valid JSON"),
        ('{"platform": "tokopedia"}', "line 2: missing field"),
        ("[1, 2]", "line 2: expected a JSON object"),
    ],
)
def test_load_catalog_names_the_bad_line(tmp_path: Path, line: str, message: str) -> None:
    good = generate(1, 1)[0].to_json()
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("price", "12000", "'price' has the wrong type"),
        ("label", "maybe", "'label' is 'maybe'"),
        ("platform", "ebay", "'platform' is 'ebay'"),
        ("sponsored", 1, "'sponsored' has the wrong type"),
        ("image_seed", "not hex!", "image_seed"),
        ("relist_of", "tokopedia:999", "relist_of 'tokopedia:999' is not in the catalog"),
    ],
)
def test_load_catalog_validates_fields(tmp_path: Path, field: str, value: object, message: str) -> None:
    data = json.loads(generate(1, 1)[0].to_json())
    data[field] = value
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(data) + "\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=re.escape(message)):
        load_catalog(path)


def test_load_catalog_rejects_duplicates_and_missing_files(tmp_path: Path) -> None:
    line = generate(1, 1)[0].to_json()
    path = tmp_path / "dup.jsonl"
    path.write_text(line + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="line 2: duplicate listing"):
        load_catalog(path)
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "missing.jsonl")


def test_hand_written_minimal_catalog_is_accepted(tmp_path: Path) -> None:
    row = {
        "platform": "lazada", "listing_id": "123", "seller_id": "9", "seller_name": "Toko",
        "seller_city": "Medan",
        "shop_domain": "toko", "title": "Jaket", "description": "", "price": 1000, "category": "Fashion",
        "condition": "USED", "image_seed": "ab12", "created_day": -3,
        "label": "unrelated", "evasion": "plain",
    }  # fmt: skip
    path = tmp_path / "min.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    (listing,) = load_catalog(path)
    assert listing.contact_handles == [] and listing.extra == {} and listing.active_from_day == -3
    state = SandboxState([listing])
    assert state.search("lazada", "jaket", 0, 10)[1] == 1


def test_given_drift_terms_replace_the_built_in_ones_in_varied_places() -> None:
    from sandbox.words import pseudo_words

    words = pseudo_words(808, 5)
    listings = generate(31, 6000, drift_terms=[w.upper() for w in words])
    illegal = [x for x in listings if x.label == "illegal_import"]
    with_drift = [x for x in illegal if "drift_term" in x.extra]
    assert 0.15 <= len(with_drift) / len(illegal) <= 0.25
    assert {x.extra["drift_term"] for x in with_drift} == set(words)
    text = " ".join((x.title + " " + x.description).lower() for x in listings)
    assert not any(term in text for term in DRIFT_TERMS)  # none of the built-in words
    legit = " ".join((x.title + " " + x.description).lower() for x in listings if x.label != "illegal_import")
    assert not any(w in legit for w in words)
    placements = Counter(x.extra["drift_placement"] for x in with_drift)
    assert set(placements) == {"title", "description", "both", "only_signal"}
    for x in with_drift:
        w, where = x.extra["drift_term"], x.extra["drift_placement"]
        in_title, in_body = w in x.title.lower(), w in x.description.lower()
        if where == "title":
            assert in_title and not in_body, x.key
        elif where == "description":
            assert in_body and not in_title, x.key
        elif where == "both":
            assert in_title and in_body, x.key
        else:
            assert x.evasion == "none" and (in_title or in_body), x.key
    # varied phrasings: the word alone as a segment, beside other words on either side, several casings
    titles = [x.title for x in with_drift if x.extra["drift_placement"] in ("title", "both")]
    assert len({t.split()[0].lower() in words for t in titles}) == 2  # first word sometimes, not always
    assert any(w.upper() in t for t in titles for w in words) and any(
        w.title() in t for t in titles for w in words
    )
    assert set(SandboxState(listings).drift_terms()) == set(words)


def test_drift_terms_are_checked() -> None:
    from sandbox.catalog import parse_drift_terms

    assert parse_drift_terms(" Abc ,  def  ghi ") == ("abc", "def ghi")
    for bad, message in (
        ("", "at least one"),
        ("a,b", "2-40 letters"),
        ("abc,abc", "given twice"),
        ("karungan", "already in the lexicon"),
        ("x1y", "2-40 letters"),
    ):
        with pytest.raises(CatalogError, match=message):
            parse_drift_terms(bad)


def test_catalog_and_serve_cli_take_drift_terms(tmp_path: Path) -> None:
    import subprocess
    import sys

    from sandbox.words import pseudo_words

    words = ",".join(pseudo_words(809, 3))
    out = tmp_path / "c.jsonl"
    cmd = [sys.executable, "-m", "crawler.cli", "sandbox", "catalog", "--seed", "2", "--size", "400",
           "--drift-terms", words, "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "drift terms:" in done.stdout
    assert {x.extra.get("drift_term") for x in load_catalog(out)} - {None} <= set(words.split(","))
    lexicon_word = [*cmd[:5], "--size", "10", "--drift-terms", "bal", "--out", str(tmp_path / "d.jsonl")]
    bad = subprocess.run(lexicon_word, capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode != 0 and "already in the lexicon" in bad.stderr and "Traceback" not in bad.stderr
    clash = [
        sys.executable,
        "-m",
        "crawler.cli",
        "sandbox",
        "serve",
        "--catalog",
        str(out),
        "--drift-terms",
        words,
    ]
    refused = subprocess.run(clash, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode != 0 and "--drift-terms" in refused.stderr
