"""Pipeline and health-check units: text cleaning, contact handles, NormalisePipeline, platform stats,
health checks (``crawler/pipelines.py``, ``crawler/extensions.py``).

Contact handles are checked against the sandbox catalog's own truth as well as hand-written Indonesian
formats (WhatsApp numbers are written ``0812-…``, ``+62 812 …``, ``wa.me/62…``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from crawler import extensions
from crawler.items import BlockedAttempt, Listing, QueryFinding
from crawler.pipelines import NormalisePipeline, clean_text, contact_handles
from sandbox.catalog import generate


# --------------------------------------------------------------------------------------------------
# clean_text / contact_handles
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Bal &amp; karung\n\n korea\t ", "Bal & karung korea"),
        ("&lt;b&gt;Thrift&lt;/b&gt;", "<b>Thrift</b>"),
        ("Rp&nbsp;150.000", "Rp 150.000"),
        (None, ""),
        ("", ""),
    ],
)
def test_clean_text(raw: str | None, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Order via WA 0812-3456-7890 ya", ["wa:6281234567890"]),
        ("hub 0812 3456 7890", ["wa:6281234567890"]),
        ("wa.me/6281234567890", ["wa:6281234567890"]),
        ("WA: +6281234567890", ["wa:6281234567890"]),
        ("WA +62 812-3456-7890", ["wa:6281234567890"]),  # the international form, with spaces
        ("IG @bal.korea_id.", ["ig:@bal.korea_id"]),
        ("follow ig tokobalkorea", ["ig:@tokobalkorea"]),
        ("instagram: @Gudang.Thrift", ["ig:@gudang.thrift"]),
        ("WA 0812-3456-7890 / IG @baju.bal", ["ig:@baju.bal", "wa:6281234567890"]),
    ],
)
def test_contact_handles_found(text: str, expected: list[str]) -> None:
    assert contact_handles(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Harga 150.000, isi 0812345",  # too short for a phone number
        "Ukuran 38 40 42, berat 1.250 gram",
        "Stok 2026, kode 8123",
        "kontak email toko.bal@gmail.com",  # an e-mail address is not an Instagram handle
        "@12345",
    ],
)
def test_contact_handles_not_invented(text: str) -> None:
    assert contact_handles(text) == []


def test_contact_handles_match_the_sandbox_catalog() -> None:
    """Every handle the catalog wrote into a listing's text is extracted, and none is invented."""
    checked = 0
    for listing in generate(5, 600):
        text = f"{listing.title}\n{listing.description}"
        got = set(contact_handles(text))
        digits = re.sub(r"\D", "", text)
        written = set()
        for handle in listing.contact_handles:
            kind, _, value = handle.partition(":")
            if (kind == "ig" and value.lstrip("@").lower() in text.lower()) or (
                kind == "wa" and value[2:] in digits
            ):
                written.add(handle)
        assert written <= got, (listing.key, written - got, text)
        assert got <= set(listing.contact_handles), (listing.key, got - set(listing.contact_handles), text)
        checked += len(written)
    assert checked > 50


# --------------------------------------------------------------------------------------------------
# NormalisePipeline
# --------------------------------------------------------------------------------------------------
def test_normalise_pipeline_cleans_and_merges_handles() -> None:
    pipeline = NormalisePipeline()
    item = Listing(
        platform="tokopedia",
        listing_id="123",
        url="http://127.0.0.1/tokopedia/shop/p",
        title="  Bal  korea &amp; jepang ",
        description="Grade A.\n\nOrder via WA 0812-3456-7890 atau IG @bal.korea",
        seller_name="   ",
        contact_handles=["wa:6281111111111"],
    )
    out = pipeline.process_item(item)
    assert out is item
    assert item.title == "Bal korea & jepang"
    assert item.description == "Grade A. Order via WA 0812-3456-7890 atau IG @bal.korea"
    assert item.seller_name is None
    assert item.contact_handles == ["ig:@bal.korea", "wa:6281111111111", "wa:6281234567890"]


@pytest.mark.parametrize(
    "item",
    [
        BlockedAttempt("tokopedia", "http://x/", "akamai"),
        QueryFinding("tokopedia", "balpres", detail="  kept  as  is "),
        {"title": "  a dict  "},
    ],
)
def test_normalise_pipeline_passes_other_items_untouched(item: Any) -> None:
    before = repr(item)
    assert NormalisePipeline().process_item(item) is item
    assert repr(item) == before


# --------------------------------------------------------------------------------------------------
# platform_stats / health_checks
# --------------------------------------------------------------------------------------------------
def counts(**values: int) -> dict[str, float]:
    base: dict[str, float] = dict.fromkeys(extensions.COUNTERS, 0)
    base.update(values)
    return base


def test_platform_stats_reads_prefixed_counters() -> None:
    stats = {
        "tertib/tokopedia/listings": 60,
        "tertib/tokopedia/blocked": 2,
        "tertib/lazada/responses": 3,
        "tertib/blibli/listings": 99,  # not in this run
        "downloader/request_count": 10,
    }
    out = extensions.platform_stats(stats, ["tokopedia", "lazada"])
    assert set(out) == {"tokopedia", "lazada"}
    assert out["tokopedia"]["listings"] == 60 and out["tokopedia"]["blocked"] == 2
    assert out["lazada"] == counts(responses=3)
    assert set(out["tokopedia"]) == set(extensions.COUNTERS)


def test_health_clean_run_has_no_messages() -> None:
    per = {
        "tokopedia": counts(requests=5, responses=5, listings=120, query_blocked=1),
        "lazada": counts(requests=4, responses=4, listings=40, blocked=2),  # 2 of 4: not "mostly"
    }
    assert extensions.health_checks(per, queries=3) == []


def test_health_no_listings_is_not_clean() -> None:
    messages = extensions.health_checks({"blibli": counts(requests=3, responses=3, empty_pages=3)}, queries=3)
    assert len(messages) == 1 and messages[0].startswith("blibli:") and "no listings" in messages[0]


def test_health_all_queries_refused_by_the_platform_is_a_finding_not_a_failure() -> None:
    per = {"tokopedia": counts(requests=2, responses=2, query_blocked=2)}
    assert extensions.health_checks(per, queries=2) == []
    # one of two queries refused and the other empty: still needs attention
    per = {"tokopedia": counts(requests=2, responses=2, query_blocked=1)}
    assert any("no listings" in m for m in extensions.health_checks(per, queries=2))


def test_health_mostly_blocked_after_retries() -> None:
    per = {"shopee": counts(requests=10, responses=10, listings=60, blocked=8, unobservable=6)}
    messages = extensions.health_checks(per, queries=2)
    assert messages == ["shopee: 6 of 10 searches stayed blocked after retries"]
    assert extensions.health_checks(per, queries=2, max_blocked_share=0.7) == []


def test_health_blocks_that_retries_got_past_are_normal() -> None:
    per = {"lazada": counts(requests=10, responses=10, listings=300, blocked=8, block_retries=8)}
    assert extensions.health_checks(per, queries=4) == []


def test_health_every_search_blocked_is_reported_as_blocked() -> None:
    """Two searches, each blocked on the first try and both polite retries: 6 responses, 2 searches.

    The share must be of searches (final outcomes), not of responses: retries of the same search inflate
    the response count, and a platform that blocked every search read as "2 of 6" below the threshold.
    """
    per = {"tokopedia": counts(requests=2, responses=6, blocked=6, block_retries=4, unobservable=2)}
    messages = extensions.health_checks(per, queries=2)
    assert any(m.startswith("tokopedia:") and "stayed blocked" in m for m in messages), messages


def test_health_shape_mismatch_flags_a_redesign() -> None:
    per = {"lazada": counts(requests=2, responses=2, listings=80, shape_mismatch=1)}
    messages = extensions.health_checks(per, queries=2)
    assert messages == ["lazada: shape changed — 1 of 2 answers no longer match its profile"]
    named = extensions.health_checks(
        per, queries=2, shape_changes={"lazada": {"mods.listItems[].itemId|nid": 1, "mainInfo": 1}}
    )
    assert named == [
        "lazada: shape changed — 1 of 2 answers no longer match its profile;"
        " missing: mainInfo (1), mods.listItems[].itemId|nid (1)"
    ]


def test_health_requests_without_any_response() -> None:
    per = {"facebook": counts(requests=4, errors=4)}
    messages = extensions.health_checks(per, queries=2)
    assert any("4 errors and no readable response" in m for m in messages), messages
    assert any("no listings" in m for m in messages), messages


def test_health_no_queries_no_listing_complaint() -> None:
    assert extensions.health_checks({"blibli": counts()}, queries=0) == []
