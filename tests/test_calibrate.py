"""``tertib calibrate``: a HAR recorded by Chromium against the sandbox reads as every profile expects; a
redesigned answer names its missing paths and new keys; real captures in a HAR; bad files exit 1 with one
line; ``--save`` stores the bodies as fixtures with URL and date."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler.calibrate import calibrate, classify, key_paths, read_har, split_host
from crawler.cli import main
from crawler.config import load_settings
from crawler.errors import ParseError
from sandbox.catalog import generate
from sandbox.har import DEFAULT_PLATFORMS, record_session
from sandbox.server import SandboxServer
from sandbox.state import SandboxState

REAL = Path(__file__).parent / "fixtures" / "real"
SEED, SIZE, QUERY = 11, 2000, "thrift"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", *args])
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1 if code else 0), out, err


def har_of(*answers: tuple[str, Any], method: str = "GET", base64_body: bool = False) -> dict[str, Any]:
    """A HAR as Chromium's DevTools writes it, with the given (URL, body) answers."""
    entries = []
    for url, body in answers:
        text = body if isinstance(body, str) else json.dumps(body)
        content: dict[str, Any] = {"size": len(text), "mimeType": "application/json", "text": text}
        if base64_body:
            content.update(text=base64.b64encode(text.encode()).decode(), encoding="base64")
        entries.append(
            {
                "startedDateTime": "2026-12-01T03:04:05.000Z",
                "request": {"method": method, "url": url, "headers": [], "httpVersion": "HTTP/2"},
                "response": {"status": 200, "statusText": "", "headers": [], "content": content},
            }
        )
    return {"log": {"version": "1.2", "creator": {"name": "WebInspector"}, "entries": entries}}


def _tokopedia_v4() -> list[dict[str, Any]]:
    real = json.loads((REAL / "tokopedia/search_v4_iphone_rapidapi_wrapped.json").read_text())["results"]
    return [{"data": {"ace_search_product_v4": real}}]


V4_URL = "https://gql.tokopedia.com/graphql/SearchProductQueryV4"


# -- a real answer in a HAR (no browser) -------------------------------------------------------------
def test_real_tokopedia_v4_answer_in_a_har(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    har = tmp_path / "tokopedia.har"
    unrelated = ("https://www.tokopedia.com/help", "<html><body>help</body></html>")
    har.write_text(json.dumps(har_of((V4_URL, _tokopedia_v4()), unrelated, base64_body=True)))
    code, out, err = run(capsys, str(har), "--platform", "tokopedia")
    assert code == 0, out + err
    out = " ".join(out.split())  # the report wraps at the terminal's width
    assert "parsed: 1 listings, total 196238 [ace_search_product_v4]" in out
    assert "2783580239" in out and "GoodPonsel" in out and "missing path" not in out and "new keys" not in out
    assert "every recognised answer read as its profile expects" in out


def test_changed_real_shape_names_missing_path_and_new_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    body = _tokopedia_v4()
    shop = body[0]["data"]["ace_search_product_v4"]["data"]["products"][0]["shop"]
    shop["sellerKey"] = shop.pop("shopId")
    har = tmp_path / "changed.har"
    har.write_text(json.dumps(har_of((V4_URL, body))))
    code, out, err = run(capsys, str(har))
    assert code == 3, out + err
    flat = " ".join(out.split())
    assert "SHAPE CHANGED" in flat
    assert "missing path: data.ace_search_product_v4.data.products[].shop.shopId|shop.id" in flat
    assert "new keys: [].data.ace_search_product_v4.data.products[].shop.sellerKey" in flat
    assert "calibration found changed or blocked answers" in err


def test_real_answers_of_every_platform_with_a_fixture(tmp_path: Path) -> None:
    blibli = json.loads((REAL / "blibli/category_sponsored_excerpt.json").read_text())
    profile = json.loads((REAL / "instagram/web_profile_info_excerpt.json").read_text())
    shopee = json.loads((REAL / "shopee/search_items_kaos.json").read_text())
    har = tmp_path / "real.har"
    har.write_text(
        json.dumps(
            har_of(
                ("https://www.blibli.com/backend/search/products?searchTerm=susu&page=1", blibli),
                ("https://www.instagram.com/api/v1/users/web_profile_info/?username=adrianhorning", profile),
                ("https://shopee.co.id/api/v4/search/search_items?keyword=kaos&newest=0", shopee),
            )
        )
    )
    report = calibrate(har, load_settings(env={}))
    found = {a.platform: a for a in report.answers}
    assert set(found) == {"blibli", "instagram", "shopee"} and not report.changed
    assert sum(item.sponsored for item in found["blibli"].search.listings) == 4  # type: ignore[union-attr]
    assert found["instagram"].shape == "profile" and not found["instagram"].new_keys
    assert [x.listing_id for x in found["instagram"].search.listings] == ["DEiyb48AeB9"]  # type: ignore[union-attr]
    abroad = [x.listing_id for x in found["shopee"].search.listings if x.ships_from_abroad]  # type: ignore[union-attr]
    assert abroad == ["70515557.2237667952"] and not found["shopee"].new_keys


def test_hosts_and_answers_are_recognised() -> None:
    settings = load_settings(env={})
    assert split_host("https://gql.tokopedia.com/graphql/SearchProductV5Query", settings) == (
        "tokopedia-gql",
        "/graphql/SearchProductV5Query",
    )
    assert split_host("http://127.0.0.1:8899/shopee/api/v4/search/search_items?x=1", settings) == (
        "shopee",
        "/api/v4/search/search_items",
    )
    assert split_host("https://example.com/graphql/SearchProductV5Query", settings) is None
    entry = read_har_entries(har_of(("https://www.facebook.com/api/graphql/", {"data": {"viewer": {}}})))[0]
    assert classify(entry, settings) is None  # Facebook's GraphQL answers other queries too
    entry.body = b'{"data": {"marketplace_search": {"feed_units": {"edges": []}}}}'
    found = classify(entry, settings)
    assert found is not None and (found.platform, found.kind) == ("facebook", "search")
    assert key_paths({"a": [{"b": 1}, {"c": {"BLI-60047-00004": 1}}]}) == {"a", "a[].b", "a[].c", "a[].c.*"}


def read_har_entries(doc: dict[str, Any]) -> list[Any]:
    from crawler.calibrate import _entry

    return [_entry(e) for e in doc["log"]["entries"]]


# -- bad input --------------------------------------------------------------------------------------
def test_bad_files_one_line_and_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    whole = json.dumps(har_of((V4_URL, _tokopedia_v4())))
    cases = {
        "truncated.har": (whole[: len(whole) // 2], "cut short (truncated)"),
        "notes.har": ("these are my notes, not a recording", "not JSON"),
        "other.json": (json.dumps({"data": [1, 2, 3]}), "JSON but not a HAR file (no log.entries)"),
        "empty.har": ("", "is empty, not a HAR file"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        code, out, err = run(capsys, str(path))
        assert code == 1, (name, out, err)
        assert expected in err and len(err.strip().splitlines()) == 1, (name, err)
        assert "Traceback" not in out + err
        with pytest.raises(ParseError):
            read_har(path)
    code, _out, err = run(capsys, str(tmp_path / "missing.har"))
    assert code == 2 and "no such file" in err
    code, _out, err = run(capsys, str(tmp_path / "notes.har"), "--platform", "myspace")
    assert code == 2 and "unknown platform" in err


def test_a_recording_without_the_platform_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    har = tmp_path / "news.har"
    har.write_text(json.dumps(har_of(("https://news.example.org/", "<html></html>"))))
    code, _out, err = run(capsys, str(har), "--platform", "shopee")
    assert code == 1 and "no answer of shopee in the recording" in err


# -- a Chromium session on the sandbox ----------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox_har(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, SandboxState, str]]:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium not installed")
    state = SandboxState(list(generate(SEED, SIZE)), seed=SEED)
    out = tmp_path_factory.mktemp("har") / "session.har"
    with SandboxServer(state) as url:
        record_session(url, out, query=QUERY)
        yield out, state, url


@pytest.mark.integration
def test_sandbox_recording_reads_as_every_profile_expects(
    sandbox_har: tuple[Path, SandboxState, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    har, state, url = sandbox_har
    report = calibrate(har, load_settings(env={}))
    by_platform = report.by_platform()
    assert set(by_platform) == set(DEFAULT_PLATFORMS)
    assert not report.changed
    for platform, answers in by_platform.items():
        for answer in answers:
            assert answer.entry.body is not None and not answer.blocked, (platform, answer.entry.url)
            assert not answer.missing and not answer.new_keys, (platform, answer.missing, answer.new_keys)
            if answer.detail is not None:
                assert answer.detail.verdict.value == "LIVE", (platform, answer.detail)
    # what each platform's first search answer read is exactly what the sandbox shows for the query
    for platform, size in {"tokopedia": 60, "shopee": 60, "lazada": 40, "blibli": 40}.items():
        search = next(a.search for a in by_platform[platform] if a.search is not None)
        truth, total = state.search(platform, QUERY, 0, size)
        assert [x.listing_id for x in search.listings] == [x.listing_id for x in truth]
        assert search.total == total
    assert any(a.detail is not None for a in by_platform["tiktokshop"])
    assert any(a.search is not None and a.search.listings for a in by_platform["facebook"])
    assert any(a.search is not None and a.search.shape == "tag_sections" for a in by_platform["instagram"])

    code, out, err = run(capsys, str(har), "--save", str(tmp_path / "calib"))
    assert code == 0, out + err
    index = json.loads((tmp_path / "calib" / "index.json").read_text())
    assert {f["platform"] for f in index["fixtures"]} == set(DEFAULT_PLATFORMS)
    first = index["fixtures"][0]
    assert first["url"].startswith(url) and first["recorded_at"] and first["status"] == 200
    saved = tmp_path / "calib" / first["file"]
    assert saved.read_bytes() == next(a.entry.body for a in report.answers if a.entry.url == first["url"])
    assert json.loads((tmp_path / "calib" / "shapes.json").read_text())["shapes"]


@pytest.mark.integration
def test_sandbox_recording_with_a_redesigned_answer(
    sandbox_har: tuple[Path, SandboxState, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The same session after a redesign of Lazada's catalogue answer (its list renamed)."""
    har, _state, _url = sandbox_har
    doc = json.loads(har.read_text())
    changed = copy.deepcopy(doc)
    for entry in changed["log"]["entries"]:
        if "/lazada/catalog/" in entry["request"]["url"]:
            body = json.loads(entry["response"]["content"]["text"])
            body["mods"]["itemCards"] = body["mods"].pop("listItems")
            entry["response"]["content"]["text"] = json.dumps(body)
    path = tmp_path / "redesigned.har"
    path.write_text(json.dumps(changed))
    code, out, err = run(capsys, str(path), "--platform", "lazada", "--platform", "blibli")
    assert code == 3, out + err
    flat = " ".join(out.split())
    assert "missing path: mods.listItems" in flat and "new keys: mods.itemCards" in flat
    assert flat.count("SHAPE CHANGED") == 1  # Blibli in the same recording still reads
