"""Shared parser helpers: JSON loading, wrappers, brace balancing, paths, prices, URLs, blocks."""

from __future__ import annotations

import pytest

from crawler.config import load_settings
from crawler.errors import UsageError
from crawler.registry import default_registry
from spiders.base import (
    BodyError,
    PathReader,
    absolute_url,
    extract_balanced,
    extract_js_assignment,
    get_path,
    http_block,
    json_ld,
    load_json,
    parse_price,
    script_json,
    shopee_price,
    strip_query,
    unwrap_data,
)

REGISTRY = default_registry()
PROFILES = REGISTRY.profiles
get_profile = REGISTRY.get
PLATFORMS = ("tokopedia", "tiktokshop", "shopee", "lazada", "blibli", "facebook", "instagram", "bukalapak")


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1}',
        '{"a": 1}',
        {"a": 1},
        'for (;;);{"a": 1}',
        'while(1);{"a": 1}',
        ')]}\'\n{"a": 1}',
        'window.__STATE__ = {"a": 1};',
        'var x = {"a": 1}; var y = 2;',
        '\ufeff{"a": 1}',
    ],
)
def test_load_json_accepts_wrapped_forms(body: object) -> None:
    assert load_json(body) == {"a": 1}  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [b"", "   ", "<html>", '{"a": ', "hello = 3;", 'x = {"a": 1'])
def test_load_json_rejects_malformed(body: object) -> None:
    with pytest.raises(BodyError):
        load_json(body)  # type: ignore[arg-type]


def test_unwrap_data_only_unwraps_the_capture_wrapper() -> None:
    inner = {"code": 200, "status": "OK", "data": {"x": 1}}
    assert unwrap_data({"data": inner}) is inner
    assert unwrap_data(inner) is inner
    plain = {"data": {"products": []}}
    assert unwrap_data(plain) is plain


def test_extract_balanced_ignores_brackets_in_strings() -> None:
    text = 'var __moduleData__ = {"a": "}{", "b": [1, {"c": "\\"}"}]}; var z = {};'
    start = text.index("{")
    assert extract_balanced(text, start) == '{"a": "}{", "b": [1, {"c": "\\"}"}]}'
    assert extract_js_assignment(text, "__moduleData__") == {"a": "}{", "b": [1, {"c": '"}'}]}
    assert extract_js_assignment(text, "__absent__") is None
    with pytest.raises(BodyError):
        extract_js_assignment('var __moduleData__ = {"a": [1, 2};', "__moduleData__")


def test_script_json_and_json_ld() -> None:
    html = (
        '<script type="application/json" data-sjs>{"a": 1}</script>'
        '<script id="x" type="application/json">{"b": 2}</script>'
        '<script type="application/ld+json">{"@graph": [{"@type": "Product", "name": "P"}, {"@type": "Org"}]}'
        "</script>"
    )
    assert script_json(html, data_sjs=None) == [{"a": 1}]
    assert script_json(html, id="x") == [{"b": 2}]
    assert [p["name"] for p in json_ld(html, "Product")] == ["P"]


def test_path_reader_records_missing_paths() -> None:
    data = {"data": {"products": [{"name": "a"}]}}
    reader = PathReader()
    assert reader.require(data, "data.products", list) == [{"name": "a"}]
    assert reader.ok
    assert reader.require(data, "data.paging", dict) is None
    assert reader.require(data, "data.products", dict) is None  # wrong type counts as missing
    assert reader.missing == ["data.paging", "data.products"]
    assert not reader.ok
    assert get_path(data, "data.products.0.name") == "a"
    assert get_path(data, "data.products.5.name", "none") == "none"


@pytest.mark.parametrize(
    ("text", "rupiah"),
    [
        ("Rp 1.250.000", 1_250_000),
        ("Rp1.250.000", 1_250_000),
        ("Rp5 jt", 5_000_000),
        ("Rp1,25 jt", 1_250_000),
        ("1.5jt", 1_500_000),
        ("12,5rb", 12_500),
        ("150rb", 150_000),
        ("85000.00", 85_000),
        ("1.250.000,00", 1_250_000),
        ("Rp 99.000 - Rp 120.000", 99_000),
        (66900, 66_900),
        (99000.0, 99_000),
        ("", None),
        ("gratis", None),
        (None, None),
    ],
)
def test_parse_price(text: object, rupiah: int | None) -> None:
    assert parse_price(text) == rupiah


def test_shopee_price_divides_by_100000() -> None:
    assert shopee_price(8_500_000_000) == 85_000
    assert shopee_price("132500000000") == 1_325_000
    assert shopee_price(-1) is None
    assert shopee_price(None) is None


def test_urls() -> None:
    assert absolute_url("https://www.lazada.co.id", "//www.lazada.co.id/products/x.html") == (
        "https://www.lazada.co.id/products/x.html"
    )
    assert (
        absolute_url("http://127.0.0.1:8000/blibli", "/p/a/ps--X") == "http://127.0.0.1:8000/blibli/p/a/ps--X"
    )
    assert strip_query("https://h/p?ds=1&sid=2#f", ["ds"]) == "https://h/p?ds=1"


def test_http_block() -> None:
    block = http_block("shopee", 429, {"Retry-After": "120"})
    assert block is not None and block.reason == "rate_limited" and "120" in block.detail
    assert http_block("shopee", 503) is not None
    assert http_block("shopee", 200) is None


def test_registry_covers_every_platform_and_builds_on_settings_hosts() -> None:
    assert set(PROFILES) == set(PLATFORMS)
    with pytest.raises(UsageError):
        get_profile("friendster")
    sandbox = load_settings(env={}, sandbox_url="http://127.0.0.1:9999")
    for profile in PROFILES.values():
        if profile.search_request is not None:
            url = profile.search_request(sandbox, "bal korea", 2).url
            assert url.startswith("http://127.0.0.1:9999/"), url
    expected = {"tokopedia": 60, "shopee": 60, "lazada": 40, "blibli": 40}
    assert {p: PROFILES[p].page_size for p in expected} == expected
    assert PROFILES["tokopedia"].max_pages == 100 and PROFILES["blibli"].max_pages == 20
    assert {p for p, prof in PROFILES.items() if prof.needs_browser} == {"shopee", "facebook", "instagram"}
