"""Due rechecks and report figures on a hand-built ledger (exact numbers)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from crawler import cli_common
from crawler.audit import due
from crawler.audit.report import build_report, chart_png, percentile, render
from crawler.registry import default_registry
from storage import custody
from storage.db import Database
from storage.models import BatchSend, Listing, Recheck, TakedownBatch, TakedownItem

pytestmark = pytest.mark.both_backends

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)
DAYS = (1, 3, 7, 30)

REGISTRY = default_registry()


def _listing(session: Session, n: int, platform: str, **extra: object) -> Listing:
    listing = Listing(
        listing_key=f"{platform}:{n}",
        platform=platform,
        platform_listing_id=str(n),
        url=f"https://example.test/{platform}/{n}",
        title=f"bal korea {n}",
        first_seen=T0 - 2 * D,
        last_seen=T0 - 2 * D,
        **extra,
    )
    session.add(listing)
    session.flush()
    return listing


def _batch(session: Session, number: str = "TTB-2026-0001") -> TakedownBatch:
    batch = TakedownBatch(number=number, name="test", created_at=T0 - D)
    session.add(batch)
    session.flush()
    return batch


def _item(session: Session, batch: TakedownBatch, listing: Listing, row_no: int) -> TakedownItem:
    item = TakedownItem(
        batch_id=batch.id, listing_id=listing.id, platform=listing.platform, row_no=row_no, url=listing.url
    )
    session.add(item)
    session.flush()
    return item


def _check(
    session: Session,
    item: TakedownItem,
    at: datetime,
    verdict: str,
    round_days: int | None = 1,
    attempt: int = 1,
) -> Recheck:
    row = Recheck(
        takedown_item_id=item.id,
        listing_id=item.listing_id,
        round_days=round_days,
        checked_at=at,
        verdict=verdict,
        rule=f"test.{verdict.lower()}",
        attempt=attempt,
    )
    session.add(row)
    session.flush()
    return row


def build_ledger(session: Session) -> dict[str, TakedownItem]:
    """Tokopedia sent at T0 (6 items), Shopee sent at T0+2h (3 items), one relisting of item t1."""
    batch = _batch(session)
    session.add(BatchSend(batch_id=batch.id, platform="tokopedia", channel="portal", sent_at=T0))
    session.add(BatchSend(batch_id=batch.id, platform="shopee", channel="portal", sent_at=T0 + 2 * H))
    items = {}
    for n in range(1, 7):
        items[f"t{n}"] = _item(session, batch, _listing(session, n, "tokopedia"), n)
    for n in range(7, 10):
        items[f"s{n}"] = _item(session, batch, _listing(session, n, "shopee"), n)
    _check(session, items["t1"], T0 + 24 * H, "REMOVED")  # 24 h: within 24 h (inclusive)
    _check(session, items["t2"], T0 + 24 * H, "LIVE")
    _check(session, items["t2"], T0 + 72 * H, "REMOVED", round_days=3)  # 72 h
    _check(session, items["t3"], T0 + 24 * H, "UNOBSERVABLE")
    _check(session, items["t3"], T0 + 26 * H, "UNOBSERVABLE", attempt=2)  # never removed
    _check(session, items["t4"], T0 + 24 * H, "HIDDEN")
    _check(session, items["t5"], T0 + 24 * H, "LIVE")
    _check(session, items["t5"], T0 + 72 * H, "LIVE", round_days=3)  # still live, up >= 72 h
    _check(session, items["t6"], T0 + 24 * H, "UNOBSERVABLE")
    _check(session, items["t6"], T0 + 30 * H, "REMOVED", attempt=2)  # 30 h
    s0 = T0 + 2 * H
    _check(session, items["s7"], s0 + 12 * H, "REMOVED", round_days=None)  # 12 h (a --batch recheck)
    _check(session, items["s8"], s0 + 24 * H, "LIVE")
    _check(session, items["s8"], s0 + 168 * H, "REMOVED", round_days=7)  # 168 h
    # s9: never checked
    parent = session.get(Listing, items["t1"].listing_id)
    assert parent is not None
    _listing(session, 100, "shopee", relist_of_id=parent.id, relist_evidence={"rule": "image+identity"})
    return items


@pytest.fixture
def ledger(db: Database) -> tuple[Database, dict[str, int]]:
    with db.session() as session:
        items = build_ledger(session)
        ids = {k: v.id for k, v in items.items()}
    return db, ids


def test_percentile_linear_interpolation() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([24.0, 30.0, 72.0], 0.5) == 30.0
    assert percentile([24.0, 30.0, 72.0], 0.9) == pytest.approx(63.6)
    assert percentile([12.0, 168.0], 0.5) == 90.0


def test_report_figures_exact(ledger: tuple[Database, dict[str, int]]) -> None:
    db, ids = ledger
    with db.session() as session:
        report = build_report(session, recheck_days=DAYS)
    groups = {g.key: g for g in report.groups}
    batch_id = report.items[0].batch_id
    toko, shopee, total = groups[f"b{batch_id}-tokopedia"], groups[f"b{batch_id}-shopee"], groups["all"]
    assert (toko.requested, toko.removed, toko.hidden, toko.live, toko.unobservable, toko.unchecked) == (
        6,
        3,
        1,
        1,
        1,
        0,
    )
    assert toko.relisted == 1 and toko.items["relisted"] == [ids["t1"]]
    assert toko.removed_within_24h == 1 and toko.items["removed_within_24h"] == [ids["t1"]]
    assert toko.median_hours_to_removal == 30.0
    assert toko.p90_hours_to_removal == 63.6
    assert toko.median_hours_up_live == 72.0
    assert toko.items["unobservable"] == [ids["t3"]]
    assert ids["t3"] not in toko.items["removed"]
    assert (shopee.requested, shopee.removed, shopee.live, shopee.unchecked) == (3, 2, 0, 1)
    assert shopee.removed_within_24h == 1
    assert shopee.median_hours_to_removal == 90.0
    assert shopee.p90_hours_to_removal == 152.4
    assert (total.requested, total.removed, total.removed_within_24h) == (9, 5, 2)
    assert total.median_hours_to_removal == 30.0
    assert total.p90_hours_to_removal == 129.6
    assert report.ready_to_rerequest == [ids["t5"]]
    assert report.item(ids["t1"]).relisted_as == ["shopee:100"]
    assert report.curves["tokopedia"][-1] == (30.0, 50.0)  # 3 of 6 removed, held to the horizon


def test_unobservable_never_counts_as_removed(db: Database) -> None:
    with db.session() as session:
        batch = _batch(session)
        session.add(BatchSend(batch_id=batch.id, platform="tokopedia", channel="portal", sent_at=T0))
        item = _item(session, batch, _listing(session, 1, "tokopedia"), 1)
        for attempt in range(1, 6):
            _check(session, item, T0 + D + attempt * H, "UNOBSERVABLE", attempt=attempt)
        report = build_report(session)
        plans = due.plan(session, T0 + D + 6 * H, days=DAYS)
    total = report.groups[-1]
    assert (total.removed, total.unobservable, total.median_hours_to_removal) == (0, 1, None)
    assert plans[0].action == "exhausted"  # five blocked tries: wait for the next round
    assert report.curves["tokopedia"][-1][1] == 0.0


def test_reinstated_item_counts_as_live(db: Database) -> None:
    with db.session() as session:
        batch = _batch(session)
        session.add(BatchSend(batch_id=batch.id, platform="tokopedia", channel="portal", sent_at=T0))
        item = _item(session, batch, _listing(session, 1, "tokopedia"), 1)
        _check(session, item, T0 + D, "REMOVED")
        _check(session, item, T0 + 3 * D, "LIVE", round_days=3)
        report = build_report(session)
        plan = due.plan(session, T0 + 7 * D, days=DAYS)[0]
    row = report.items[0]
    assert (row.status, row.reinstated, row.hours_to_removal) == ("LIVE", True, None)
    assert report.ready_to_rerequest == [row.takedown_item_id]
    assert (plan.action, plan.round_days) == ("fetch", 7)  # reinstated: rechecked again, not "satisfied"


def test_due_rounds(db: Database) -> None:
    with db.session() as session:
        batch = _batch(session)
        session.add(BatchSend(batch_id=batch.id, platform="tokopedia", channel="portal", sent_at=T0))
        fresh = _item(session, batch, _listing(session, 1, "tokopedia"), 1)
        blocked = _item(session, batch, _listing(session, 2, "tokopedia"), 2)
        removed = _item(session, batch, _listing(session, 3, "tokopedia"), 3)
        live = _item(session, batch, _listing(session, 4, "tokopedia"), 4)
        unsent = _item(session, batch, _listing(session, 5, "shopee"), 5)
        _check(session, blocked, T0 + D, "UNOBSERVABLE")
        _check(session, blocked, T0 + D + H, "UNOBSERVABLE", attempt=2)
        _check(session, removed, T0 + D, "REMOVED")
        _check(session, live, T0 + D, "LIVE")

        early = {p.takedown_item_id: p for p in due.plan(session, T0 + 23 * H, days=DAYS)}
        assert early[fresh.id].action == "waiting" and early[unsent.id].action == "not_sent"

        at_day1 = {p.takedown_item_id: p for p in due.plan(session, T0 + D + 2 * H, days=DAYS)}
        assert (at_day1[fresh.id].action, at_day1[fresh.id].round_days) == ("fetch", 1)
        assert (at_day1[blocked.id].action, at_day1[blocked.id].attempt) == ("fetch", 3)
        assert at_day1[removed.id].action == "done" and at_day1[live.id].action == "done"

        targets = due.due_targets(session, T0 + D + 2 * H, days=DAYS)
        assert sorted(t.takedown_item_id or 0 for t in targets) == [fresh.id, blocked.id]
        t = next(t for t in targets if t.takedown_item_id == blocked.id)
        assert (t.listing_key, t.round_days, t.due_at, t.attempt) == ("tokopedia:2", 1, T0 + D, 3)
        assert t.url == "https://example.test/tokopedia/2"

        # day 8: round 7 is the latest reached; rounds 3 was missed, not fetched
        at_day8 = {p.takedown_item_id: p for p in due.plan(session, T0 + 8 * D, days=DAYS)}
        assert (at_day8[fresh.id].action, at_day8[fresh.id].round_days) == ("fetch", 7)
        assert (at_day8[blocked.id].action, at_day8[blocked.id].attempt) == ("fetch", 1)
        assert (at_day8[live.id].action, at_day8[live.id].round_days) == ("fetch", 7)
        assert at_day8[removed.id].action == "satisfy"

        written = due.record_satisfied(session, T0 + 8 * D, days=DAYS, actor="auditor")
        assert written == 1
        carried = session.scalars(
            select(Recheck).where(Recheck.takedown_item_id == removed.id, Recheck.round_days == 7)
        ).one()
        assert (carried.verdict, carried.rule, carried.attempt) == ("REMOVED", due.RULE_REMOVED_EARLIER, 0)
        after = {p.takedown_item_id: p for p in due.plan(session, T0 + 8 * D, days=DAYS)}
        assert after[removed.id].action == "done"
        assert due.record_satisfied(session, T0 + 8 * D, days=DAYS, actor="auditor") == 0
        assert custody.verify(session) == []
        # the carried row does not move the time to removal
        report = build_report(session)
        row = next(i for i in report.items if i.takedown_item_id == removed.id)
        assert row.hours_to_removal == 24.0


def test_batch_targets_all_items_now(ledger: tuple[Database, dict[str, int]]) -> None:
    db, ids = ledger
    with db.session() as session:
        batch_id = session.scalars(select(TakedownBatch.id)).one()
        targets = due.batch_targets(session, batch_id, T0 + 3 * D + H, days=DAYS)
        by_item = {t.takedown_item_id: t for t in targets}
        assert len(targets) == 9
        assert by_item[ids["t5"]].round_days == 3 and by_item[ids["t5"]].attempt == 2
        assert by_item[ids["t1"]].round_days == 3 and by_item[ids["t1"]].attempt == 1
        before = due.batch_targets(session, batch_id, T0 + H, days=DAYS)
        assert all(t.round_days is None and t.due_at is None for t in before)
        with pytest.raises(due.NotFound):
            due.batch_targets(session, 999, T0, days=DAYS)
        assert due.resolve_batch(session, "TTB-2026-0001").id == batch_id


def test_renderings_deterministic_and_linked(ledger: tuple[Database, dict[str, int]]) -> None:
    db, _ids = ledger
    tz = __import__("zoneinfo").ZoneInfo("Asia/Jakarta")
    with db.session() as session:
        first = {f: render(build_report(session), f, tz, REGISTRY) for f in ("md", "html", "json")}
        second = {f: render(build_report(session), f, tz, REGISTRY) for f in ("md", "html", "json")}
    assert first == second
    html = first["html"]
    targets = set(re.findall(r'href="#([^"]+)"', html))
    anchors = set(re.findall(r'id="([^"]+)"', html))
    assert targets and targets <= anchors, targets - anchors
    assert "data:image/png;base64," in html
    md = first["md"]
    assert set(re.findall(r"\]\(#([^)]+)\)", md)) <= set(re.findall(r'<a id="([^"]+)"></a>', md))
    data = json.loads(first["json"])
    total = data["groups"][-1]
    assert (total["requested"], total["removed"], total["p90_hours_to_removal"]) == (9, 5, 129.6)
    sent = {i["platform"]: i["sent_at"] for i in data["items"]}
    assert sent == {"tokopedia": "2026-01-01T17:00:00+07:00", "shopee": "2026-01-01T19:00:00+07:00"}  # WIB


def test_chart_png_is_an_image() -> None:
    import io

    from PIL import Image

    png = chart_png(
        {"tokopedia": [(0.0, 0.0), (1.0, 50.0), (30.0, 50.0)], "shopee": [(0.0, 0.0), (30.0, 0.0)]},
        registry=REGISTRY,
    )
    assert png == chart_png(
        {"tokopedia": [(0.0, 0.0), (1.0, 50.0), (30.0, 50.0)], "shopee": [(0.0, 0.0), (30.0, 0.0)]},
        registry=REGISTRY,
    )
    img = Image.open(io.BytesIO(png))
    assert img.size == (760, 380)
    assert (3, 172, 14) in {c for _n, c in img.getcolors(100000) or []}  # the Tokopedia line is drawn


def test_cli_report_and_errors(tmp_path: Path) -> None:
    from crawler.cli import app

    with cli_common.database().session() as session:
        build_ledger(session)
    runner = CliRunner()
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["audit", "report", "--format", "json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["groups"][-1]["requested"] == 9
    again = tmp_path / "r2.json"
    runner.invoke(app, ["audit", "report", "--format", "json", "--out", str(again)])
    assert out.read_bytes() == again.read_bytes()
    result = runner.invoke(
        app, ["audit", "report", "--platform", "shopee", "--format", "md", "--out", "x.md"]
    )
    assert result.exit_code == 0 and "3 requested, 2 removed" in result.output.replace("\n", " ")
    result = runner.invoke(app, ["audit", "report", "--batch", "TTB-1999-0009", "--out", "y.md"])
    assert result.exit_code != 0
    result = runner.invoke(app, ["audit", "report", "--format", "pdf", "--out", "y.pdf"])
    assert result.exit_code != 0
    result = runner.invoke(app, ["audit", "rerequest", "--batch", "TTB-2026-0001", "--dry-run"])
    assert result.exit_code == 0 and "tokopedia:5" in result.output
    result = runner.invoke(app, ["audit", "due", "--now", "2026-01-08T10:00:00+00:00"])
    assert result.exit_code == 0 and "satisfy" in result.output
    result = runner.invoke(app, ["recheck", "--now", "yesterday"])
    assert result.exit_code != 0


def test_rounds_are_checked_just_before_their_deadline() -> None:
    from datetime import UTC, datetime, timedelta

    from crawler.audit.due import DEADLINE_LEAD, reached_round

    sent = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    days = (1, 3, 7, 30)
    assert reached_round(sent, sent + timedelta(hours=23), days) is None
    # the T+1 check runs inside the last minutes before 24 h, so "removed within 24 h" is observable
    assert reached_round(sent, sent + timedelta(days=1) - DEADLINE_LEAD, days) == 1
    assert reached_round(sent, sent + timedelta(days=3) - DEADLINE_LEAD - timedelta(seconds=1), days) == 1
    assert reached_round(sent, sent + timedelta(days=7), days) == 7
