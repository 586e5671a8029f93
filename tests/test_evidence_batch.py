"""Batched evidence: N captures/attempts per WARC append and per transaction, custody chained in memory.

Covers ``EvidenceRecorder.record_batch``, ``storage.custody.append_many`` and the recheck ledger batch of
``crawler.run_context.RunEvidence``.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from test_evidence_support import (
    SEARCH_BODY,
    SEARCH_URL,
    T0,
    exchange,
    fixed_clock,
    fixed_ids,
    listing,
    make_db,
    make_settings,
    png,
    run_cli,
)
from warcio.archiveiterator import ArchiveIterator
from warcio.checker import Checker

from crawler.config import Settings
from crawler.evidence import warc
from crawler.evidence.capture import BatchEntry, EvidenceRecorder, Recorded
from crawler.evidence.verify import verify
from crawler.items import CheckResult, Listing, RecheckObservation, RecheckTarget, Verdict
from crawler.run_context import RunContext
from storage import custody
from storage.db import Database
from storage.models import Capture, CustodyEntry, Recheck
from storage.models import Listing as ListingRow

pytestmark = pytest.mark.both_backends


class _Cmd:
    def __init__(self, inputs: list[str]) -> None:
        self.inputs, self.verbose = inputs, False


def _entry(i: int, *, shot: bool = True) -> BatchEntry:
    item = listing(i)
    return BatchEntry(
        listing=Listing.from_dict(item),
        exchanges=[
            exchange(SEARCH_URL, SEARCH_BODY, content_type="application/json"),
            exchange(item["url"], f"<html><h1>{item['title']}</h1></html>".encode()),
        ],
        screenshot_png=png(i) if shot else None,
        metadata={"query": "bal korea", "rank": i},
        actor="analyst",
    )


def _attempt(i: int) -> BatchEntry:
    url = listing(i)["url"]
    return BatchEntry.unobservable(
        url=url,
        reason="captcha",
        exchange=exchange(url, b"<title>Security Check</title>", status=200),
        listing_key=listing(i)["listing_key"],
        actor="analyst",
    )


def _blocked(i: int) -> BatchEntry:
    """A capture whose page is a block page: the recorder turns it into an attempt."""
    item = listing(i)
    return BatchEntry(
        listing=Listing.from_dict(item),
        exchanges=[exchange(item["url"], b"busy", status=429)],
        screenshot_png=png(i),
    )


def _mixed() -> list[BatchEntry]:
    return [_entry(0), _entry(1), _attempt(2), _entry(3, shot=False), _blocked(4), _entry(5)]


def _warcs(settings: Settings) -> list[Path]:
    return sorted(settings.warc_dir.glob("*.warc.gz"))


def _checker_ok(settings: Settings) -> None:
    for path in _warcs(settings):
        assert Checker(_Cmd([str(path)])).process_all() == 0, path


def test_mixed_batch_is_one_append_and_verifies_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path)  # conftest points TERTIB_DATA_DIR at the same tmp_path / "data"
    db = make_db(settings)
    with EvidenceRecorder(settings, db) as recorder:
        recorder.record_capture(**_kwargs(_entry(9)))  # opens the file; the batch below appends to it
        assert recorder.writer._fh is not None
        warc_fd = recorder.writer._fh.fileno()
        fsyncs: list[int] = []
        real_fsync = warc.os.fsync

        def counting_fsync(fd: int) -> None:
            fsyncs.append(fd)
            real_fsync(fd)

        monkeypatch.setattr(warc.os, "fsync", counting_fsync)
        recorded = recorder.record_batch(_mixed())
        monkeypatch.setattr(warc.os, "fsync", real_fsync)  # undo() would also undo the isolated data dir
    assert fsyncs.count(warc_fd) == 1  # one WARC fsync for six entries (screenshot blobs fsync their own)
    assert [r.observable for r in recorded] == [True, True, False, True, False, True]
    ids = [r.capture_id for r in recorded]
    assert ids == sorted(ids) and len(set(ids)) == 6
    with db.session() as s:
        rows = {c.id: c for c in s.scalars(select(Capture)).all()}
        entries = s.scalars(select(CustodyEntry).order_by(CustodyEntry.seq)).all()
        assert [e.object_id for e in entries] == [str(i) for i in sorted(rows)]
        assert [e.seq for e in entries] == list(range(1, 8))
        # byte ranges are contiguous, one capture after the other, in entry order
        spans = [(rows[i].warc_offset or 0, rows[i].warc_length or 0) for i in ids]
        for (offset, length), (next_offset, _) in itertools.pairwise(spans):
            assert offset + length == next_offset
        assert rows[ids[4]].unobservable_reason == "rate_limited" and rows[ids[4]].screenshot_sha256 is None
        # the search response was stored by the first capture: later ones revisit it and name that capture
        first = min(rows)
        for cid in (ids[0], ids[1], ids[3], ids[5]):
            search = rows[cid].records[0]
            assert search["type"] == "revisit" and search["refers_to_capture"] == first
            assert "refers_to_index" not in search
    _checker_ok(settings)
    report = verify(db, settings, all=True, record=False)
    assert report.ok, [str(p) for p in report.problems]
    assert report.captures == 7
    db.dispose()
    assert run_cli(["evidence", "verify", "--all"]) == 0
    assert "OK" in capsys.readouterr().out


def test_revisit_inside_one_batch_names_the_capture_of_the_same_batch(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    with EvidenceRecorder(settings, db) as recorder:
        recorded = recorder.record_batch([_entry(0), _entry(1), _entry(0)])
    with db.session() as s:
        rows = [s.get(Capture, r.capture_id) for r in recorded]
    assert rows[0] is not None and rows[1] is not None and rows[2] is not None
    assert rows[0].records[0]["type"] == "response"
    assert rows[1].records[0]["refers_to_capture"] == recorded[0].capture_id
    # the same page and the same PNG again: page response and screenshot are revisits of capture 0
    shot = next(r for r in rows[2].records if r.get("screenshot"))
    assert shot["type"] == "revisit" and shot["refers_to_capture"] == recorded[0].capture_id
    assert verify(db, settings, all=True, record=False).ok
    _checker_ok(settings)


def _kwargs(entry: BatchEntry) -> dict[str, Any]:
    return dict(
        listing=entry.listing,
        exchanges=entry.exchanges,
        screenshot_png=entry.screenshot_png,
        metadata=entry.metadata,
        actor=entry.actor,
    )


def test_custody_chain_stays_linear_with_a_concurrent_foreign_writer(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    other = Database(settings.db_url)  # another engine: its own connections, like another process
    stop = threading.Event()
    foreign: list[int] = []

    def writer() -> None:
        n = 0
        while not stop.is_set() or n < 5:
            with other.session() as s:
                custody.append(s, actor="reviewer", action="review", object_type="listing", object_id=n)
            foreign.append(n)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with EvidenceRecorder(settings, db) as recorder:
            for b in range(6):
                recorder.record_batch([_entry(b * 10 + k) for k in range(4)] + [_attempt(b * 10 + 5)])
    finally:
        stop.set()
        thread.join()
        other.dispose()
    with db.session() as s:
        assert custody.verify(s) == []
        count = s.scalar(select(func.count(CustodyEntry.seq)))
        captures = s.scalar(select(func.count(Capture.id)))
        # each batch's entries are consecutive: the foreign writer never lands inside a batch
        seqs = s.scalars(select(CustodyEntry.seq).where(CustodyEntry.action == "capture")).all()
    assert captures == 30 and count == 30 + len(foreign)
    runs = [seqs[i : i + 5] for i in range(0, 30, 5)]
    assert all(run == list(range(run[0], run[0] + 5)) for run in runs)
    assert verify(db, settings, all=True, record=False).ok


# The fallback behind the chain's lock (storage.locks): were a head read stale, the collision is redone.
# With the lock this interleaving cannot happen (the racing writer would wait for it), so the test lifts
# it; test_custody.py::test_concurrent_writers_keep_one_linear_chain covers real concurrent writers.
@pytest.mark.sqlite_only
def test_append_many_redoes_the_batch_after_a_sequence_collision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    with db.session() as s:
        custody.append(s, actor="a", action="review", object_type="listing", object_id=1)
    stale = custody.head
    calls: list[Any] = []

    def racing_head(session: Any) -> tuple[int, str]:
        calls.append(session)
        if len(calls) == 1:  # read before another writer appended: the first attempt collides
            seq_hash = stale(session)
            with db.session() as s2:
                custody.append(s2, actor="other", action="review", object_type="listing", object_id=2)
            return seq_hash
        return stale(session)

    monkeypatch.setattr(custody, "head", racing_head)
    monkeypatch.setattr(custody, "_serialise", lambda session: None)
    specs = [custody.EntrySpec("b", "capture", "capture", n, "d" * 64) for n in range(3)]
    # a fresh session that has not written yet, so the concurrent commit above is possible on SQLite
    with db.session() as s:
        new_head = custody.append_many(s, specs)
    assert new_head[0] == 5
    monkeypatch.undo()
    assert len([c for c in calls if c is calls[0]]) == 2  # one redo from the new head
    with db.session() as s:
        assert custody.verify(s) == []
        assert [e.actor for e in custody.iter_entries(s)] == ["a", "other", "b", "b", "b"]


def test_failure_mid_batch_leaves_nothing_that_looks_valid(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    with EvidenceRecorder(settings, db) as recorder:
        recorder.record_batch([_entry(0), _entry(1)])
        path = _warcs(settings)[0]
        size = path.stat().st_size
        index = warc.index_path(path).read_text()
        seen: list[list[Recorded]] = []

        def ledger(session: Any, recorded: list[Recorded]) -> list[custody.EntrySpec]:
            seen.append(recorded)  # the captures were flushed and have ids; then the ledger fails
            raise RuntimeError("ledger row rejected")

        with pytest.raises(RuntimeError, match="ledger row rejected"):
            recorder.record_batch([_entry(2), _attempt(3), _entry(4)], ledger)
        assert len(seen[0]) == 3
        assert path.stat().st_size == size  # the appended bytes were truncated away
        assert warc.index_path(path).read_text() == index
        with db.session() as s:
            assert s.scalar(select(func.count(Capture.id))) == 2
            assert s.scalar(select(func.count(CustodyEntry.seq))) == 2
        # the recorder still works, and revisits do not point at the rolled-back batch
        after = recorder.record_batch([_entry(5), _entry(2)])
    with db.session() as s:
        rows = [s.get(Capture, r.capture_id) for r in after]
        refs = {rec.get("refers_to_capture") for row in rows if row for rec in row.records}
    assert refs <= {None, 1, after[0].capture_id}
    report = verify(db, settings, all=True, record=False)
    assert report.ok and report.captures == 4, [str(p) for p in report.problems]
    _checker_ok(settings)


def test_fixed_clock_and_ids_give_identical_bytes(tmp_path: Path, database_url) -> None:
    outputs = []
    for run in ("a", "b"):
        settings = make_settings(tmp_path / run, database_url=database_url(run))
        db = make_db(settings)
        with EvidenceRecorder(settings, db, clock=fixed_clock(), id_factory=fixed_ids()) as recorder:
            recorder.record_batch(_mixed())
            recorder.record_batch([_entry(7), _attempt(8)])
        with db.session() as s:
            rows = [(c.warc_sha256, c.records) for c in s.scalars(select(Capture).order_by(Capture.id))]
            hashes = [e.entry_hash for e in custody.iter_entries(s)]
        files = [(p.name, p.read_bytes(), warc.index_path(p).read_text()) for p in _warcs(settings)]
        outputs.append((files, rows, hashes))
        db.dispose()
    assert outputs[0] == outputs[1]
    assert len(outputs[0][1]) == 8


def test_batch_that_rotates_rebuilds_revisits_into_the_new_file(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, warc_max_bytes=6_000)
    db = make_db(settings)
    with EvidenceRecorder(settings, db) as recorder:
        recorder.record_batch([_entry(0)])
        recorder.record_batch([_entry(1), _entry(2)])  # would revisit capture 1's search response
    files = _warcs(settings)
    assert len(files) == 2
    with db.session() as s:
        rows = s.scalars(select(Capture).order_by(Capture.id)).all()
    assert rows[1].warc_file != rows[0].warc_file
    assert rows[1].records[0]["type"] == "response"  # no revisit across files
    assert rows[2].records[0]["refers_to_capture"] == rows[1].id  # within the new file: fine
    for path in files:
        with path.open("rb") as fh:
            types = [r.rec_headers.get_header("WARC-Type") for r in ArchiveIterator(fh)]
        assert types[0] == "warcinfo"
    assert verify(db, settings, all=True, record=False).ok
    _checker_ok(settings)


# -- the recheck ledger in the same batch ---------------------------------------------------------


@dataclass
class _Observation:
    target: dict[str, Any]
    result: CheckResult
    response: Any
    page_html: str | None = None
    screenshot_png: bytes | None = None


def _observed(o: _Observation) -> RecheckObservation:
    """The spider's typed observation for this test record (its target as it stands now)."""
    target = dict(o.target)
    due_at = target.pop("due_at", None)
    return RecheckObservation(
        target=RecheckTarget(**target, due_at=None if due_at is None else datetime.fromisoformat(due_at)),
        result=o.result,
        exchange=o.response,
        screenshot_png=o.screenshot_png,
    )


def _observations(db: Database, n: int) -> list[_Observation]:
    out = []
    with db.session() as s:
        for i in range(n):
            item = listing(i)
            row = ListingRow(
                listing_key=item["listing_key"],
                platform="tokopedia",
                platform_listing_id=item["listing_id"],
                url=item["url"],
                title=item["title"],
            )
            s.add(row)
            s.flush()
            verdict = [Verdict.LIVE, Verdict.REMOVED, Verdict.UNOBSERVABLE][i % 3]
            target = {
                "listing_id": row.id,
                "listing_key": item["listing_key"],
                "platform": "tokopedia",
                "url": item["url"],
                "round_days": 3,
                "due_at": T0.isoformat(),
            }
            result = CheckResult(
                "tokopedia", item["listing_id"], verdict, f"rule.{verdict.value.lower()}", "s"
            )
            out.append(_Observation(target, result, exchange(item["url"], f"<html>{i}</html>".encode())))
    return out


def test_recheck_batch_commits_captures_ledger_status_and_custody_together(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    observations = _observations(db, 7)

    async def run() -> list[int]:
        ctx = RunContext(settings, run_id=None)
        await ctx.evidence.open(screenshots=False)
        main_thread = threading.get_ident()
        writer_threads: list[int] = []
        assert ctx.evidence.recorder is not None
        original = ctx.evidence.recorder.record_batch

        def spy(entries: Any, ledger: Any = None) -> Any:
            writer_threads.append(threading.get_ident())
            return original(entries, ledger)

        ctx.evidence.recorder.record_batch = spy  # type: ignore[method-assign]
        try:
            observed = [_observed(o) for o in observations]
            pending = [(o, await ctx.evidence.recheck_entry(o), T0) for o in observed]
            ids = await ctx.evidence.record_recheck_batch(pending[:4])
            ids += await ctx.evidence.record_recheck_batch(pending[4:])
        finally:
            await ctx.evidence.close()
            ctx.close()
        assert writer_threads and all(t != main_thread for t in writer_threads)
        return ids

    ids = asyncio.run(run())
    assert len(ids) == 7
    with db.session() as s:
        rechecks = s.scalars(select(Recheck).order_by(Recheck.id)).all()
        assert [r.id for r in rechecks] == ids
        for obs, row in zip(observations, rechecks, strict=True):
            capture = s.get(Capture, row.capture_id)
            assert capture is not None and capture.listing_key == obs.target["listing_key"]
            assert capture.observable is (obs.result.verdict != Verdict.UNOBSERVABLE)
            assert row.verdict == obs.result.verdict.value and row.rule == obs.result.rule
            listing_row = s.get(ListingRow, obs.target["listing_id"])
            expected = None if obs.result.verdict == Verdict.UNOBSERVABLE else obs.result.verdict.value
            assert listing_row is not None and listing_row.last_status == expected
        entries = list(custody.iter_entries(s))
        assert custody.verify(s) == []
        # per batch: its captures, then its recheck entries (4 + 4, then 3 + 3)
        assert [e.action for e in entries] == ["capture"] * 4 + ["recheck"] * 4 + ["capture"] * 3 + [
            "recheck"
        ] * 3
        by_recheck = {int(e.object_id): e.details for e in entries if e.action == "recheck"}
        assert all(by_recheck[r.id]["capture_id"] == r.capture_id for r in rechecks)
    assert verify(db, settings, all=True, record=False).ok


def test_recheck_batch_failure_leaves_neither_ledger_nor_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    observations = _observations(db, 3)
    observations[2].target["listing_id"] = 999_999  # foreign key violation in the ledger rows

    async def run() -> None:
        ctx = RunContext(settings, run_id=None)
        await ctx.evidence.open(screenshots=False)
        try:
            observed = [_observed(o) for o in observations]
            pending = [(o, await ctx.evidence.recheck_entry(o), T0) for o in observed]
            with pytest.raises(Exception):  # noqa: B017 - the database's own integrity error
                await ctx.evidence.record_recheck_batch(pending)
        finally:
            await ctx.evidence.close()
            ctx.close()

    asyncio.run(run())
    with db.session() as s:
        assert s.scalar(select(func.count(Recheck.id))) == 0
        assert s.scalar(select(func.count(Capture.id))) == 0
        assert s.scalar(select(func.count(CustodyEntry.seq))) == 0
        assert {r.last_status for r in s.scalars(select(ListingRow))} == {None}
    for path in _warcs(settings):
        assert path.stat().st_size == warc.committed_end(path, None)
    _checker_ok(settings)


# -- sweep: captures committed before or after their listing's persist batch ----------------------


def _sweep_listing(i: int) -> Any:
    item = listing(i)
    return Listing(
        platform="tokopedia",
        listing_id=item["listing_id"],
        url=item["url"],
        title=item["title"],
        query="bal korea",
        page=1,
        rank=i + 1,
        exchanges=[exchange(item["url"], f"<html>{item['title']}</html>".encode())],
    )


def test_sweep_captures_reach_their_listings_whichever_commits_first(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    early, late, racing = _sweep_listing(0), _sweep_listing(1), _sweep_listing(2)

    async def run() -> dict[str, int]:
        ctx = RunContext(settings, run_id=None)
        await ctx.evidence.open(screenshots=False)
        try:
            # persist first: the listing row exists when the captures commit
            ctx.persistence.persist([early])
            entries = [await ctx.evidence.capture_entry(item) for item in (early, late, racing)]
            recorded = await ctx.evidence.record_sweep_batch(entries)
            assert [r.listing_key for r in recorded] == [x.listing_key for x in (early, late, racing)]
            # evidence first: the listing's persist batch comes after the capture
            ctx.persistence.persist([late])
            # stored by another path after the batch (a race)
            with ctx.db.session() as session:
                from storage import repositories as repo

                repo.upsert_listing(session, racing.to_dict())
        finally:
            await ctx.evidence.close()
            ctx.close()
        return {str(r.listing_key): r.capture_id for r in recorded}

    ids = asyncio.run(run())
    with db.session() as s:
        # every capture joins its listing on the key it carries; nothing was linked afterwards
        keys = dict(
            s.execute(
                select(Capture.id, ListingRow.listing_key).join(
                    ListingRow, ListingRow.listing_key == Capture.listing_key
                )
            ).all()
        )
    assert keys == {cid: key for key, cid in ids.items()}
    assert verify(db, settings, all=True, record=False).ok
