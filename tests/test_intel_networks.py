"""Dealer networks (crawler.intel.networks): links with evidence, the grouping rules, volume with its
uncertainty, wholesale signals and the ranking; the edge cases (no handles, no sold field, a network of
one); ``tertib intel networks``; the dossier and ``tertib evidence verify`` over it; the sandbox truth."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from test_evidence_support import make_db, make_settings, run_cli

from crawler.intel.measure import compare
from crawler.intel.networks import GENERIC_HANDLE_ACCOUNTS, compute_networks, find_network, normalise_name
from crawler.intel.volume import volume_facts
from crawler.items import Listing
from storage import repositories as repo
from storage.db import Database
from storage.models import Listing as ListingRow

T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
STRONG = {"score": 0.95, "verdict": "strong", "signals": []}


def _record(platform: str, lid: str, seller: str, **over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "platform": platform, "listing_id": lid, "url": f"https://{platform}.example/p/{lid}",
        "title": "Bal korea campur isi 300 pcs", "price": 4_000_000, "seller_id": seller,
        "seller_name": f"Toko {seller}", "seller_city": "Medan", "sold_text": "10",
    }  # fmt: skip
    fields.update({k: v for k, v in over.items() if k in Listing.__dataclass_fields__})
    item = Listing(**fields)
    return {**item.to_dict(), "score": over.get("score", STRONG), "volume": volume_facts(item).to_row()}


def _store(db: Database, records: list[dict[str, Any]], day: int = 0) -> None:
    with db.session() as s:
        repo.persist_batch(s, records, sweep_run_id=None, scorer_version="v", lexicon_version_id=None,
                           seen_at=T0 + timedelta(days=day))  # fmt: skip


def _phash(db: Database, key: str, value: str) -> None:
    with db.session() as s:
        s.execute(update(ListingRow).where(ListingRow.listing_key == key).values(image_phash=value))


def _by_account(networks: list[Any]) -> dict[str, Any]:
    return {a.key: n for n in networks for a in n.accounts}


pytestmark = pytest.mark.both_backends


def test_shared_handle_joins_accounts_across_platforms_with_the_handle_as_evidence(db: Database) -> None:
    _store(db, [
        _record("tokopedia", "1", "a", contact_handles=["wa:628111"], seller_name="Bal Rina"),
        _record("shopee", "2.2", "b", contact_handles=["wa:628111", "ig:@balrina"], seller_name="Gudang X"),
        _record("lazada", "3", "c", contact_handles=["wa:628999"], seller_name="X", seller_city="Bandung"),
    ])  # fmt: skip
    with db.session() as s:
        nets = compute_networks(s)
    by = _by_account(nets)
    assert by["tokopedia:a"] is by["shopee:b"] and by["lazada:c"] is not by["tokopedia:a"]
    (link,) = [lk for lk in by["tokopedia:a"].links if lk.kind == "handle"]
    assert link.evidence == {"handle": "wa:628111"} and {link.a, link.b} == {"tokopedia:a", "shopee:b"}
    assert by["tokopedia:a"].summary()["platforms"] == ["shopee", "tokopedia"]


def test_near_identical_names_join_only_with_a_second_link_and_no_contradiction(db: Database) -> None:
    _store(db, [
        # same name on two platforms, same city, no handles: joined (name + city)
        _record("tokopedia", "1", "a", seller_name="Bal Segel Rina Medan"),
        _record("lazada", "2", "b", seller_name="BAL SEGEL RINA MEDAN!"),
        # same name, another city: not joined on the name alone
        _record("blibli", "3", "c", seller_name="Bal Segel Rina Medan", seller_city="Surabaya"),
        # same name and city but both show handles and share none: contradicted, not joined
        _record("tokopedia", "4", "d", seller_name="Thrift Jaya Makmur", contact_handles=["wa:62811"]),
        _record("shopee", "5.5", "e", seller_name="Thrift Jaya Makmur", contact_handles=["wa:62822"]),
    ])  # fmt: skip
    with db.session() as s:
        by = _by_account(compute_networks(s))
    assert by["tokopedia:a"] is by["lazada:b"]
    assert {lk.kind for lk in by["tokopedia:a"].links} == {"name", "city"}
    assert by["blibli:c"] is not by["tokopedia:a"]
    assert by["tokopedia:d"] is not by["shopee:e"]


def test_a_shared_photo_alone_is_supply_not_identity(db: Database) -> None:
    photo = "c3c3c3c3c3c3c3c3"
    _store(db, [_record("tokopedia", "1", "w", seller_name="Grosir Bal Besar", seller_city="Batam",
                        description="Melayani partai besar dan reseller")], day=0)  # fmt: skip
    _store(db, [
        _record("shopee", "2.2", "r1", seller_name="Lemari Ayu", seller_city="Bandung"),
        _record("lazada", "3", "r2", seller_name="Closet Budi", seller_city="Depok"),
    ], day=5)  # fmt: skip
    for key in ("tokopedia:1", "shopee:2.2", "lazada:3"):
        _phash(db, key, photo)
    _phash(db, "lazada:3", "c3c3c3c3c3c3c3c2")  # one bit off: still the same photo
    with db.session() as s:
        by = _by_account(compute_networks(s))
    wholesaler = by["tokopedia:w"]
    assert len(wholesaler.accounts) == 1 and by["shopee:r1"] is not by["lazada:r2"]
    assert sorted(lk.b for lk in wholesaler.supplies) == ["lazada:r2", "shopee:r1"]
    assert by["shopee:r1"].supplied_by[0].a == "tokopedia:w"
    signals = {x["kind"]: x for x in wholesaler.wholesale["signals"]}
    assert signals["supplies"]["value"] == 1.0 and signals["wording"]["value"] == 1.0


def test_a_shared_photo_joins_with_a_near_identical_name_but_not_with_a_city(db: Database) -> None:
    _store(db, [
        _record("tokopedia", "1", "a", seller_name="Monza Andi Jaya", seller_city="Batam"),
        _record("shopee", "2.2", "b", seller_name="MONZA ANDI JAYA", seller_city="Medan"),  # name + photo
        _record("lazada", "3", "c", seller_name="Closet Budi", seller_city="Batam"),  # photo + city only
        _record("blibli", "4", "d", seller_name="Monza Andi Jaya 2", seller_city="Batam"),  # another number
    ])  # fmt: skip
    for key in ("tokopedia:1", "shopee:2.2", "lazada:3"):
        _phash(db, key, "00ff00ff00ff00ff")
    with db.session() as s:
        by = _by_account(compute_networks(s))
    assert by["tokopedia:a"] is by["shopee:b"]
    assert {lk.kind for lk in by["tokopedia:a"].links} == {"image", "name"}
    assert by["lazada:c"] is not by["tokopedia:a"] and by["blibli:d"] is not by["tokopedia:a"]
    assert [lk.b for lk in by["tokopedia:a"].supplies] == ["lazada:c"]


def test_volume_keeps_floors_open_and_counts_sales_and_restocks_between_sightings(db: Database) -> None:
    _store(db, [
        _record("tokopedia", "1", "a", sold_text="100+ terjual", raw={"stock": "50"}),
        _record("shopee", "2.2", "a2", sold_text="40", raw={"stock": "5"}, contact_handles=["wa:62877"]),
        _record("tokopedia", "3", "a", sold_text=None),  # no sold field
    ])  # fmt: skip
    _store(db, [
        _record("tokopedia", "1", "a", sold_text="250+ terjual", raw={"stock": "10"}),
        _record("shopee", "2.2", "a2", sold_text="60", raw={"stock": "80"}, contact_handles=["wa:62877"]),
    ], day=7)  # fmt: skip
    with db.session() as s:
        (net, other) = sorted(compute_networks(s), key=lambda n: -len(n.listings))
    v = net.volume
    assert v["units"] == 250 and v["units_low"] == 250 and v["units_high"] is None  # a floor: open above
    assert v["listings_with_sold"] == 1 and v["listings_without_sold"] == 1
    assert v["window_units"] == 150 and v["rupiah"] == 250 * 4_000_000
    assert other.volume["units"] == 60 and other.volume["units_high"] == 60
    restock = {x["kind"]: x for x in other.wholesale["signals"]}["restocks"]
    assert restock["evidence"].startswith("1 restocks") and restock["value"] == 1.0


def test_edge_cases_no_handles_no_sold_field_network_of_one(db: Database, capsys: Any) -> None:
    _store(db, [_record("facebook", "9", "solo", sold_text=None, seller_name=None, seller_city=None)])
    with db.session() as s:
        (net,) = compute_networks(s)
    assert [a.key for a in net.accounts] == ["facebook:solo"] and net.links == []
    assert net.volume["units"] == 0 and net.volume["listings_without_sold"] == 1
    assert net.volume["units_high"] == 0 and net.summary()["handles"] == []
    data = net.to_dict()
    assert data["accounts"] == ["facebook:solo"] and data["volume_units"] == 0 and data["size"] == 1


def test_nothing_stored_or_nothing_suspect_is_no_network(db: Database) -> None:
    with db.session() as s:
        assert compute_networks(s) == []
    clear = {"score": 0.1, "verdict": "clear", "signals": []}
    _store(db, [_record("tokopedia", "1", "a", score=clear)])
    with db.session() as s:
        assert compute_networks(s) == []
        assert len(compute_networks(s, include_unsuspected=True)) == 1


def test_a_handle_on_very_many_accounts_is_generic_not_a_link(db: Database) -> None:
    records = [
        _record("tokopedia", str(i), f"s{i}", contact_handles=["wa:6221500600"], seller_city=f"Kota {i}",
                seller_name=f"Shop {i:03d} unik")
        for i in range(GENERIC_HANDLE_ACCOUNTS + 1)
    ]  # fmt: skip
    _store(db, records)
    with db.session() as s:
        nets = compute_networks(s)
    assert len(nets) == GENERIC_HANDLE_ACCOUNTS + 1


def test_ranking_puts_wholesale_volume_first_and_explains_it(db: Database) -> None:
    _store(db, [
        _record("tokopedia", "1", "big", sold_text="1,2 rb terjual", description="harga partai besar"),
        _record("tokopedia", "2", "small", sold_text="900", title="Kaos thrift korea satuan",
                contact_handles=["wa:62899"]),
    ])  # fmt: skip
    with db.session() as s:
        nets = compute_networks(s)
    assert [n.accounts[0].key for n in nets] == ["tokopedia:big", "tokopedia:small"]
    assert nets[0].role == "wholesale" and nets[1].role == "retail"
    assert nets[0].explanation.startswith("estimated 1,250 units sold")
    assert find_network(nets, "1") is nets[0] and find_network(nets, "tokopedia:small") is nets[1]
    assert find_network(nets, nets[1].id.lower()) is nets[1] and find_network(nets, "nope") is None


def test_normalised_names() -> None:
    assert normalise_name("Bal Rina — Official Store!") == "bal rina"
    assert normalise_name("ＢＡＬ Rina") == "bal rina"


@pytest.mark.sqlite_only
def test_cli_networks_json_and_table(tmp_path: Path, capsys: Any) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    _store(db, [
        _record("tokopedia", "1", "a", contact_handles=["wa:628111"], seller_name="=HYPERLINK(\"x\")"),
        _record("shopee", "2.2", "b", contact_handles=["wa:628111"], seller_name="[bold]Bal[/bold]"),
    ])  # fmt: skip
    assert run_cli(["intel", "networks", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (net,) = data["networks"]
    assert set(net) >= {
        "id",
        "role",
        "accounts",
        "volume_units",
        "links",
        "wholesale",
        "rank",
        "explanation",
        "platforms",
        "cities",
        "first_seen",
        "last_seen",
        "listings",
        "confirmed_violations",
    }
    assert net["accounts"] == ["shopee:b", "tokopedia:a"] or net["accounts"] == ["tokopedia:a", "shopee:b"]
    assert run_cli(["intel", "networks"]) == 0
    out = capsys.readouterr().out
    assert "1 network(s)" in out and "NET-" in out
    assert run_cli(["intel", "dossier", "NET-NOPE", "--out", str(tmp_path / "d")]) == 1
    assert "no network" in capsys.readouterr().err
    db.dispose()


# -- the sandbox truth ----------------------------------------------------------------------------


def test_sandbox_truth_has_roles_supply_and_growing_volume() -> None:
    from sandbox.catalog import generate, networks_truth, sold_on, stock_on

    listings = generate(7, 1500, supply=True)
    plain = generate(7, 1500)
    # roles and supply come from their own random stream: the listings are the same but for resellers' photos
    assert [(x.key, x.title, x.description) for x in listings] == [
        (x.key, x.title, x.description) for x in plain
    ]
    truth = networks_truth(listings, 0)
    trade = [n for n in truth if n["illegal"]]
    roles = {n["role"] for n in trade}
    assert roles == {"wholesale", "retail"}
    assert all(":" in a for n in truth for a in n["accounts"])
    later = {n["id"]: n["volume_units"] for n in networks_truth(listings, 30)}
    assert all(later[n["id"]] >= n["volume_units"] for n in truth)
    wholesale = {n["id"] for n in trade if n["role"] == "wholesale"}
    photos = {x.image_seed for x in listings if x.merchant in wholesale}
    reposted = [x for x in listings if x.role == "retail" and x.supplier and x.image_seed in photos]
    assert reposted and all(x.supplier in wholesale for x in reposted)
    assert not [x for x in plain if x.role == "retail" and x.image_seed in photos]
    w = next(x for x in listings if x.role == "wholesale")
    stocks = [stock_on(w, d) for d in range(0, 15)]
    assert any(b > a for a, b in itertools.pairwise(stocks))  # restocked
    assert sold_on(w, 14) > sold_on(w, 0)


def test_compare_counts_pairs_and_top_overlap() -> None:
    truth = [
        {"id": "m1", "role": "wholesale", "accounts": ["t:1", "s:1"], "volume_units": 900, "illegal": True},
        {"id": "m2", "role": "wholesale", "accounts": ["t:2"], "volume_units": 500, "illegal": True},
        {"id": "m3", "role": "retail", "accounts": ["t:3", "l:3"], "volume_units": 50, "illegal": True},
        {"id": "m4", "role": "retail", "accounts": ["t:4"], "volume_units": 10, "illegal": False},
    ]
    inferred = [{"accounts": ["t:1", "s:1"]}, {"accounts": ["t:3", "t:2"]}, {"accounts": ["l:3", "t:4"]}]
    figures = compare(inferred, truth, top=2)
    g = figures["grouping"]
    assert (g["pairs_inferred"], g["pairs_true"]) == (2, 2)
    assert g["precision"] == 0.5 and g["recall"] == 0.5 and g["outsider_accounts_in_networks"] == 1
    assert figures["top"]["overlap"] == 1 and figures["top"]["truth"] == ["m1", "m2"]


# -- the dossier ----------------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_dossier_pdf_xlsx_signed_custody_logged_and_verified(tmp_path: Path, capsys: Any) -> None:
    from openpyxl import load_workbook
    from pypdf import PdfReader
    from test_evidence_support import captured_store

    from crawler.exports.manifest import verify_batch_dir

    settings, db, capture_ids = captured_store(tmp_path, 2)
    hostile = '=HYPERLINK("http://evil")'
    _store(db, [
        _record("tokopedia", "1000", "s1", contact_handles=["wa:628111"], seller_name=hostile,
                title="<script>alert(1)</script> Bal korea isi 300 pcs", sold_text="1 rb+ terjual"),
        _record("shopee", "5.5", "s2", contact_handles=["wa:628111"], seller_name="Bal Rina", sold_text="120",
                description="harga partai besar"),
        _record("tokopedia", "1001", "s1", sold_text=None, seller_name=hostile),
    ])  # fmt: skip
    out = tmp_path / "rujukan"
    assert run_cli(["intel", "dossier", "1", "--out", str(out), "--by", "Siti (PKTN)"]) == 0
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["dossier.pdf", "dossier.xlsx", "manifest.json", "manifest.sig", "network.json",
                     "tertib-signing.pub"]  # fmt: skip
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(folder / "dossier.pdf").pages)
    assert (
        "DOSSIER RUJUKAN" in text and "Pasal 47" in text and "Pasal 111" in text and "40 Tahun 2022" in text
    )
    assert (
        "wa:628111" in text and f"capture {capture_ids[0]}" in text and "<script>" in text
    )  # text, not markup
    wb = load_workbook(folder / "dossier.xlsx")
    assert wb.sheetnames == ["Ringkasan", "Akun", "Keterkaitan", "Listing", "Sinyal", "Linimasa"]
    names_cells = [row[1] for row in wb["Akun"].iter_rows(min_row=2, values_only=True)]
    assert "'" + hostile in names_cells  # a formula start is neutralised
    assert verify_batch_dir(folder, installation_key=settings.keys_dir / "tertib-signing.pub") == []
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "intel_dossier" and manifest["custody_anchor"]["seq"] > 0
    # evidence verify --all covers the dossier; a changed file is caught
    capsys.readouterr()
    assert run_cli(["evidence", "verify", "--all"]) == 0
    assert "dossier" in capsys.readouterr().out
    with (folder / "dossier.xlsx").open("ab") as fh:
        fh.write(b"x")
    assert run_cli(["evidence", "verify", "--all"]) != 0
    assert "dossier.xlsx: content differs" in capsys.readouterr().out
    db.dispose()
