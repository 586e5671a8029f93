"""What users see: health per platform, Indonesian wording, forms that keep their input, readable tables
instead of JSON, grouped signals, paging on every list, friendly error pages, actions by role."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import timedelta

import console_sample as sample
import pytest
from console_helpers import app_client, installation_fixtures, sign_in
from fastapi.testclient import TestClient
from sqlalchemy import select

from console.views import group_signals
from crawler.config import Settings
from storage import repositories as repo
from storage.db import Database
from storage.models import Capture, Listing, ReviewDecision, Score


def _seed(db: Database, settings: Settings) -> None:
    sample.seed_sample(db, settings)
    sample.seed_batch(db, settings)
    with db.session() as s:
        # 120 more captures, so the evidence list has pages
        first = s.scalars(select(Capture)).first()
        assert first is not None
        for n in range(120):
            s.add(
                Capture(
                    listing_key=first.listing_key,
                    url=f"{first.url}?n={n}",
                    captured_at=sample.T0 + timedelta(minutes=n),
                )
            )
        # a listing whose explanation repeats one signal three times, and a flagged relisting
        listing = s.scalars(select(Listing).where(Listing.listing_key == "tokopedia:1001")).one()
        score = s.scalars(select(Score).where(Score.listing_id == listing.id)).one()
        score.explanation = {
            "signals": [
                {"term": "korea", "span": [4, 9], "weight": 0.25, "role": "origin", "matched": "Korea"}
            ]
            * 3
            + [{"term": "bal", "span": [0, 3], "weight": 0.5, "role": "bulk", "matched": "Bal"}]
        }
        other = s.scalars(select(Listing).where(Listing.listing_key == "tokopedia:1003")).one()
        listing.relist_of_id = other.id
        listing.relist_evidence = {
            "parent_id": other.id, "parent_key": other.listing_key, "rule": "seller+title",
            "signals": ["seller", "title"], "title_score": 91.5, "image_distance": None,
            "shared_handles": ["wa:6281200000001"], "same_seller": True,
            "thresholds": {"title": 85, "image_max": 8},
        }  # fmt: skip
        # two weak listings near the model's midpoint: outside the score-ordered queue, first in the
        # uncertain order (0.49 before 0.53)
        for n, value in ((1, 0.53), (2, 0.49)):
            lid, _ = repo.upsert_listing(
                s,
                {"listing_key": f"shopee:77{n}", "platform": "shopee", "listing_id": f"77{n}",
                 "url": f"https://shopee.example/p/77{n}", "title": f"kaos ragu {n}", "price": 50_000},
                seen_at=sample.T0,
            )  # fmt: skip
            repo.add_score(s, listing_id=lid, value=value, verdict="weak", explanation={"signals": []},
                           scorer_version="sample")  # fmt: skip


pytestmark = pytest.mark.both_backends

templates, template, settings = installation_fixtures("pages", _seed, users=("siti", "audi"))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with app_client(settings) as c:
        yield c


login = sign_in


def test_dashboard_shows_health_per_platform(client: TestClient) -> None:
    login(client)
    page = client.get("/").text
    row = re.search(r'<tr class="attention"[^>]*>(.*?)</tr>', page, re.S)
    assert row and "blibli" in row.group(1)
    assert '<span class="badge bad">3</span>' in row.group(1)  # blocked searches, counted and shown
    assert "3 dari 4 pencarian tetap terblokir" in row.group(1)  # its message beside the platform
    assert "platforms:" not in page and "related_terms" not in page  # not the raw stats dict
    assert 'id="attention-count">1<' in page
    assert "sebagian" in page  # "partial", translated


def test_indonesian_by_default_and_english_with_the_toggle(client: TestClient) -> None:
    login(client)
    review = client.get("/review").text
    assert "preloved pribadi yang sah" in review and ">1 · legit_preloved<" not in review
    sweeps = client.get("/sweeps").text
    assert "Riwayat tugas" in sweeps and "Jenis" in sweeps and "Pemicu" in sweeps
    terms = client.get("/terms").text
    assert "Kategori" in terms and "Kekuatan" in terms and "Asal" in terms and "leksikon awal" in terms
    client.get("/lang/en")
    assert "legitimate personal preloved" in client.get("/review").text
    assert "Job history" in client.get("/sweeps").text


def test_friendly_error_pages(client: TestClient) -> None:
    login(client)
    r = client.get("/review?pos=abc")
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "tidak sah" in r.text and "pos" in r.text and "int_parsing" not in r.text
    r = client.get("/no/such/page")
    assert r.status_code == 404 and "Tidak ditemukan" in r.text and 'id="nav"' in r.text
    r = client.get("/batches/TTB-1999-0001")
    assert r.status_code == 404 and "Batch tidak ditemukan" in r.text


def test_forms_keep_input_and_show_errors_beside_fields(client: TestClient) -> None:
    token = login(client)
    r = client.post("/sweeps", data={"csrf": token, "name": "Malam Ini", "cron": "0 2 * *", "max_pages": "99",
                                     "platforms": ["shopee"]})  # fmt: skip
    assert r.status_code == 400
    assert 'id="error-name"' in r.text and 'id="error-cron"' in r.text and 'id="error-max_pages"' in r.text
    assert 'value="Malam Ini"' in r.text and 'value="0 2 * *"' in r.text and 'value="99"' in r.text
    assert re.search(r'value="shopee" checked', r.text)
    r = client.post("/batches", data={"csrf": token, "name": "  "})
    assert r.status_code == 400 and 'id="error-name"' in r.text and "Wajib diisi" in r.text
    r = client.post("/batches", data={"csrf": token, "name": "Patroli April", "platforms": ["ebay"]})
    assert r.status_code == 400 and 'id="error-platforms"' in r.text and 'value="Patroli April"' in r.text
    r = client.post("/batches/TTB-2026-0001/sent", data={"csrf": token, "platform": "shopee", "channel": "x"})
    assert r.status_code in (400, 404)
    r = client.post("/sweeps", data={"csrf": token, "name": "malam", "cron": "0 2 * * *", "max_pages": "2"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    r = client.post("/sweeps", data={"csrf": token, "name": "malam", "cron": "0 3 * * *", "max_pages": "2"})
    assert r.status_code == 400 and "sudah dipakai" in r.text


def test_signals_grouped_and_relisting_as_a_table(client: TestClient) -> None:
    login(client)
    page = client.get("/review?at=" + "0.95:0").text  # the first card (score 0.95: tokopedia:1001)
    assert "tokopedia:1001" in page
    table = re.search(r'<table id="signal-groups">(.*?)</table>', page, re.S)
    assert table and table.group(1).count("korea") == 1 and "×3" in table.group(1)
    relist = re.search(r'<table class="kv" id="relist-evidence">(.*?)</table>\s*\n', page, re.S)
    assert relist and "Kemiripan judul" in relist.group(1) and "penjual sama" in relist.group(1)
    assert "{" not in relist.group(1) and '"rule"' not in relist.group(1)
    groups = group_signals(
        [{"term": "a", "weight": 0.2, "matched": "A"}] * 2 + [{"term": "b", "weight": -0.5}]
    )
    assert [(g.term, g.count) for g in groups] == [("b", 1), ("a", 2)]


def test_every_list_pages(client: TestClient) -> None:
    login(client)
    first = client.get("/evidence").text
    older = re.search(r'href="(/evidence\?before=\d+)"', first)
    assert older, "no link to older captures"
    second = client.get(older.group(1).replace("&amp;", "&")).text
    ids_first = set(re.findall(r'href="/evidence/(\d+)"', first))
    ids_second = set(re.findall(r'href="/evidence/(\d+)"', second))
    assert len(ids_first) == 50 and ids_second and not ids_first & ids_second
    newer = re.search(r'href="(/evidence\?after=\d+)"', second)
    assert newer and set(re.findall(r'href="/evidence/(\d+)"', client.get(newer.group(1)).text)) == ids_first
    for path in ("/batches", "/terms", "/sellers", "/sweeps", "/review/list", "/audit"):
        assert client.get(path).status_code == 200, path
    from console.paging import page_of, parse_cursor

    page = page_of(list(range(120)), 3)
    assert (page.items[0], page.first, page.last, page.pages, page.has_next) == (100, 101, 120, 3, False)
    assert page_of([], 7).number == 1 and page_of(list(range(5)), 0).number == 1
    assert parse_cursor("0.93:12") == (0.93, 12)
    assert parse_cursor("nan:1") is None and parse_cursor("x:1") is None and parse_cursor("0.5:-1") is None


def test_review_list_pages_by_key(client: TestClient, settings: Settings) -> None:
    from console.routes import review as review_routes

    login(client)
    original = review_routes.PAGE_SIZE
    review_routes.PAGE_SIZE = 2
    try:
        page1 = client.get("/review/list").text
        nxt = re.search(r'href="(/review/list\?after=[^"]+)"', page1)
        assert nxt
        page2 = client.get(nxt.group(1).replace("&amp;", "&")).text
        keys1 = re.findall(r"review\?at=([^&\"]+)", page1)
        keys2 = re.findall(r"review\?at=([^&\"]+)", page2)
        assert len(keys1) == 2 and keys2 and not set(keys1) & set(keys2)
        prev = re.search(r'href="(/review/list\?before=[^"]+)"', page2)
        assert prev
        assert (
            re.findall(r"review\?at=([^&\"]+)", client.get(prev.group(1).replace("&amp;", "&")).text) == keys1
        )
    finally:
        review_routes.PAGE_SIZE = original


def test_review_card_moves_by_key(client: TestClient) -> None:
    token = login(client)
    card1 = client.get("/review").text
    key1 = re.search(r'id="listing-key"><a [^>]*>([^<]+)<', card1)
    nxt = re.search(r'id="next-link" class="button" href="([^"]+)"', card1)
    assert key1 and nxt and "after=" in nxt.group(1)
    card2 = client.get(nxt.group(1).replace("&amp;", "&")).text
    assert "Kandidat 2 dari" in card2
    prev = re.search(r'id="prev-link" class="button" href="([^"]+)"', card2)
    assert prev
    back = client.get(prev.group(1).replace("&amp;", "&")).text
    assert "Kandidat 1 dari" in back and key1.group(1) in back
    # deciding shows the candidate after the decided one
    listing_id = re.search(r'action="/review/(\d+)/decide"', card2)
    here = re.search(r'name="here" value="([^"]+)"', card2)
    assert listing_id and here
    r = client.post(
        f"/review/{listing_id.group(1)}/decide",
        data={"csrf": token, "decision": "approve", "pos": "1", "here": here.group(1)},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200 and "Kandidat 2 dari" in r.text


def test_actions_shown_by_role(client: TestClient) -> None:
    login(client, "audi")
    review = client.get("/review").text
    assert "approve-form" not in review and "a setujui" not in review
    assert "verify-button" in client.get("/evidence/1").text  # verifying is audit work
    for path in ("/batches", "/sweeps", "/terms"):
        text = client.get(path).text
        assert "batch-form" not in text and "schedule-form" not in text and "/approve" not in text, path


def test_model_page_shows_the_active_models_card(client: TestClient, settings: Settings) -> None:
    from crawler.terms.model import packaged_card

    login(client)
    card = packaged_card()
    page = client.get("/model").text
    assert card["version"] in page and card["sha256"] in page and "bawaan tertib" in page
    held = card["heldout"]["by_threshold"]["candidate"]
    table = re.search(r'<table id="model-heldout">(.*?)</table>', page, re.S)
    assert table and f"{held['precision']:.3f}" in table.group(1)
    assert f"{held['recall']:.3f}" in table.group(1) and f"{held['f1']:.3f}" in table.group(1)
    rows = re.search(r'<table id="model-data">(.*?)</table>', page, re.S)
    assert rows and f">{card['data']['heldout']['rows']}<" in rows.group(1)
    assert 'href="/review?order=uncertain"' in page
    # rules only: no card, said plainly
    with app_client(dataclasses.replace(settings, model="rules")) as rules:
        login(rules)
        assert 'id="model-none"' in rules.get("/model").text
    # a damaged active-model pointer: the page says so instead of failing
    (settings.data_dir / "models").mkdir(parents=True, exist_ok=True)
    from crawler.terms.model import ACTIVE_POINTER

    (settings.data_dir / "models" / ACTIVE_POINTER).write_text("{not json", encoding="utf-8")
    r = client.get("/model")
    assert r.status_code == 200 and 'id="model-error"' in r.text


def test_review_in_the_models_uncertain_order(client: TestClient, settings: Settings) -> None:
    token = login(client)
    db = Database(settings.db_url)
    with db.session() as s:
        decided = set(s.scalars(select(ReviewDecision.listing_id)))
        waiting = [
            (abs(score - 0.5), lid, key)
            for lid, key, score, verdict in s.execute(
                select(Listing.id, Listing.listing_key, Listing.score_value, Listing.verdict)
            )
            if verdict in ("strong", "candidate", "weak") and lid not in decided
        ]
    db.dispose()
    expected = [key for _, _, key in sorted(waiting)]
    assert expected[:2] == ["shopee:772", "shopee:771"]
    page = client.get("/review?order=uncertain").text
    assert "shopee:772" in page and '<option value="uncertain" selected>' in page
    assert f"dari {len(expected)}" in page and 'id="order-help"' in page
    nxt = re.search(r'id="next-link" class="button" href="([^"]+)"', page)
    assert nxt and "order=uncertain" in nxt.group(1)
    assert "shopee:771" in client.get(nxt.group(1).replace("&amp;", "&")).text
    # deciding keeps the order: the next card is the next least certain
    lid = int(re.search(r'action="/review/(\d+)/decide"', page).group(1))  # type: ignore[union-attr]
    r = client.post(
        f"/review/{lid}/decide",
        data={"decision": "reject", "reason": "other", "pos": 0, "order": "uncertain", "csrf": token},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert r.status_code == 200 and "shopee:771" in r.text
    # the list in the same order, and the score order without the weak listings
    listed = client.get("/review/list?order=uncertain").text
    keys = re.findall(r'aria-label="([a-z]+:[^"]+)"', listed)
    assert keys == expected[1 : 1 + len(keys)] and "order=uncertain&amp;pos=0" in listed
    assert "shopee:771" not in client.get("/review/list").text
