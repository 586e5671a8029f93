"""``tertib parse`` on the real fixtures and on block/malformed bodies, through ``crawler.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.cli import main

FIX = Path(__file__).parent / "fixtures"
REAL = FIX / "real"
EDGE = FIX / "edge"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["parse", *args])
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1 if code else 0), out, err


@pytest.mark.parametrize(
    ("platform", "path", "count", "first_key"),
    [
        ("shopee", REAL / "shopee" / "search_items_kaos.json", 50, "shopee:87759532.5424151845"),
        ("blibli", REAL / "blibli" / "search_kaos_wrapped.json", 32, "blibli:UMB-60239-00003"),
        ("tokopedia", EDGE / "tokopedia" / "search_v5.json", 3, "tokopedia:111"),
        ("lazada", EDGE / "lazada" / "search_page.html", 2, "lazada:7001"),
    ],
)
def test_search_jsonl(
    capsys: pytest.CaptureFixture[str], platform: str, path: Path, count: int, first_key: str
) -> None:
    code, out, err = run(capsys, "--platform", platform, "--kind", "search", "--query", "kaos", str(path))
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == count
    assert lines[0]["listing_key"] == first_key and lines[0]["rank"] == 1 and lines[0]["query"] == "kaos"
    assert f"{count} listings" in err


@pytest.mark.parametrize(
    ("platform", "path", "verdict", "listing_id"),
    [
        ("shopee", REAL / "shopee" / "item_get_detail.json", "LIVE", "18300679.1636649723"),
        ("blibli", REAL / "blibli" / "product_detail_wrapped.json", "LIVE", "UM2-60023-00074"),
        ("tokopedia", REAL / "tokopedia" / "pdp_get_layout.json", "LIVE", "525027826"),
        ("tiktokshop", EDGE / "tiktokshop" / "pdp_status_3.html", "REMOVED", "1729384756102938475"),
    ],
)
def test_detail_json_line(
    capsys: pytest.CaptureFixture[str], platform: str, path: Path, verdict: str, listing_id: str
) -> None:
    code, out, err = run(capsys, "-p", platform, "--kind", "detail", str(path))
    assert code == 0, err
    record = json.loads(out)
    assert record["verdict"] == verdict and record["listing_id"] == listing_id and record["rule"]
    assert record["listing"]["listing_id"] == listing_id


def test_status_option_drives_removal(capsys: pytest.CaptureFixture[str]) -> None:
    body = EDGE / "blibli" / "not_found_body.json"
    url = "https://www.blibli.com/backend/product-detail/products/ps--ABC-12345-00001/_summary"
    code, out, _ = run(capsys, "-p", "blibli", "-k", "detail", "--status", "404", "--url", url, str(body))
    assert (
        code == 0
        and json.loads(out)["rule"] == "blibli.http_404"
        and json.loads(out)["listing_id"] == "ABC-12345-00001"
    )
    code, out, _ = run(
        capsys,
        "-p",
        "lazada",
        "-k",
        "detail",
        "--status",
        "302",
        "--location",
        "/catalog/?q=bal",
        "--url",
        "https://www.lazada.co.id/products/x-i7001-s1.html",
        str(FIX / "edge" / "generic" / "empty.txt"),
    )
    assert code == 0 and json.loads(out)["verdict"] == "REMOVED"


def test_block_and_malformed_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "-p", "shopee", str(EDGE / "shopee" / "block_90309999.json"))
    assert code == 1 and out == "" and "blocked" in err and "signature" in err
    code, out, err = run(capsys, "-p", "tokopedia", str(EDGE / "generic" / "malformed.json"))
    assert code == 1 and out == "" and "malformed" in err and "Traceback" not in err
    code, out, err = run(capsys, "-p", "shopee", str(REAL / "blibli" / "product_detail_wrapped.json"))
    assert code == 1 and "not a shopee search response" in err
    code, out, err = run(
        capsys, "-p", "tiktokshop", "-k", "detail", str(EDGE / "tiktokshop" / "security_check.html")
    )
    assert code == 1 and json.loads(out)["verdict"] == "UNOBSERVABLE" and "security_check" in err


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    real = str(REAL / "shopee" / "search_items_kaos.json")
    assert run(capsys, "-p", "myspace", real)[0] == 2
    assert run(capsys, "-p", "shopee", "--kind", "gallery", real)[0] == 2
    assert run(capsys, "-p", "shopee", str(tmp_path / "missing.json"))[0] == 2
    assert run(capsys, "-p", "tiktokshop", "--kind", "search", real)[0] == 2
    assert run(capsys, "-p", "shopee", "--status", "42", real)[0] == 2
