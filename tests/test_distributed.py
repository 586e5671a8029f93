"""Distributed sweeps (``tertib sweep --distributed`` + ``tertib worker``) against the sandbox and the suite's
PostgreSQL: three workers store exactly what a single-process SQLite sweep of the same catalog stores
(listings, latest scores, candidates, sightings, one capture per candidate); with one worker killed with
SIGKILL mid-sweep its job is retried by another, the result is the same and ``evidence verify`` passes.

The workers and the coordinator are real subprocesses (``python -m crawler.cli``), as on separate machines;
they share one data dir here only because they share this machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from test_sweep_integration import ROOT, child_env

from crawler.distributed import conninfo
from crawler.errors import UsageError
from crawler.work import SweepWork
from sandbox.catalog import generate
from sandbox.server import SandboxServer
from sandbox.state import SandboxState
from storage.db import Database
from storage.models import Capture, Listing, Score, Sighting, SweepRun, SweepShard

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

SEED, SIZE = 5, 1500
PLATFORMS = ["tokopedia", "lazada", "blibli"]
QUERIES = ["jaket", "thrift", "bal korea", "kaos"]
PAGES = 2
CANDIDATES = ("candidate", "strong")


def cli(data: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "crawler.cli", "--data-dir", str(data), *args]


def sweep_args(data: Path, url: str, terms: Path, *extra: str) -> list[str]:
    args = cli(data, "sweep", "--sandbox", url, "--terms", str(terms), "--max-pages", str(PAGES))
    for platform in PLATFORMS:
        args += ["-p", platform]
    return [*args, "--details", "none", "--no-screenshots", "--no-progress", *extra]


def snapshot(db: Database) -> dict[str, Any]:
    """What the sweep stored, by listing key (ids differ between databases)."""
    with db.session() as s:
        runs = s.scalars(select(SweepRun).where(SweepRun.kind == "sweep")).all()
        assert len(runs) == 1
        keys = dict(s.execute(select(Listing.id, Listing.listing_key)).all())
        listings = {
            row.listing_key: (row.title, row.verdict, round(row.score_value or 0.0, 6))
            for row in s.scalars(select(Listing))
        }
        latest: dict[str, tuple[float, str]] = {}
        for score in s.scalars(select(Score).order_by(Score.id)):
            latest[keys[score.listing_id]] = (round(score.value, 6), score.verdict)
        sightings = Counter(
            (keys[x.listing_id], x.query, x.page, x.rank) for x in s.scalars(select(Sighting))
        )
        captures = Counter(
            c.listing_key for c in s.scalars(select(Capture).where(Capture.observable.is_(True)))
        )
        run = runs[0]
        return {
            "run": (run.status, run.id),
            "stats": dict(run.stats or {}),
            "listings": listings,
            "scores": latest,
            "candidates": {k for k, v in listings.items() if v[1] in CANDIDATES},
            "sightings": sightings,
            "captures": captures,
        }


def assert_same(single: dict[str, Any], dist: dict[str, Any]) -> None:
    assert dist["listings"] == single["listings"]
    assert dist["scores"] == single["scores"]
    assert dist["candidates"] == single["candidates"] and single["candidates"]
    assert dist["sightings"] == single["sightings"]
    assert max(dist["sightings"].values()) == 1  # nothing stored twice
    assert dist["captures"] == single["captures"]  # one capture per candidate, as a single sweep
    assert set(dist["captures"]) == dist["candidates"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    state = SandboxState(generate(SEED, SIZE), seed=SEED)
    with SandboxServer(state) as url:
        yield url


@pytest.fixture(scope="module")
def single(sandbox: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The reference: one process, SQLite."""
    root = tmp_path_factory.mktemp("single")
    terms = root / "terms.txt"
    terms.write_text("\n".join(QUERIES) + "\n")
    proc = subprocess.run(
        sweep_args(root / "data", sandbox, terms), cwd=ROOT, env=child_env(), capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    db = Database(f"sqlite:///{root / 'data' / 'tertib.sqlite3'}")
    try:
        return snapshot(db)
    finally:
        db.dispose()


class Cluster:
    """Workers (``tertib worker``) and the coordinator on one PostgreSQL database, as separate processes."""

    def __init__(self, url: str, data: Path) -> None:
        self.url = url
        self.data = data
        self.env = {**child_env(), "TERTIB_DATABASE_URL": url}
        self.workers: list[subprocess.Popen[str]] = []
        self.logs: list[Any] = []

    def start_workers(self, count: int) -> None:
        for n in range(count):
            log = (self.data.parent / f"worker-{n}.log").open("w")
            self.logs.append(log)
            self.workers.append(
                subprocess.Popen(
                    cli(self.data, "worker"),
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=log,
                    text=True,
                )
            )

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self.logs:
            log.close()

    def sweep(self, sandbox: str, *extra: str) -> subprocess.Popen[str]:
        terms = self.data.parent / "terms.txt"
        terms.write_text("\n".join(QUERIES) + "\n")
        args = sweep_args(self.data, sandbox, terms, "--distributed", *extra)
        return subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    request.getfixturevalue("pg_server")
    made = Cluster(_pg_url(request), tmp_path / "data")
    yield made
    made.stop()


def _pg_url(request: pytest.FixtureRequest) -> str:
    from conftest import TEMPLATE_DB

    server = request.getfixturevalue("pg_server")
    name = server.create_database(template=TEMPLATE_DB)
    request.addfinalizer(lambda: server.drop_database(name))
    return str(server.url(name))


def finish(proc: subprocess.Popen[str], timeout: float = 400) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    return out


def test_three_workers_store_what_one_process_stores(
    cluster: Cluster, sandbox: str, single: dict[str, Any]
) -> None:
    cluster.start_workers(3)
    out = finish(cluster.sweep(sandbox, "--queries-per-job", "2", "--pages-per-job", "0"))
    db = Database(cluster.url)
    try:
        dist = snapshot(db)
        with db.session() as s:
            shards = s.scalars(select(SweepShard)).all()
            workers = {x.worker for x in shards}
    finally:
        db.dispose()
    assert f"sweep run #{dist['run'][1]}" in out
    assert len(shards) == len(PLATFORMS) * len(QUERIES) // 2 and {x.status for x in shards} == {"done"}
    assert len(workers) > 1, "the jobs should spread over the workers"
    assert dist["run"][0] == single["run"][0]
    assert_same(single, dist)
    platforms = dist["stats"]["platforms"]
    assert {p: platforms[p]["listings"] for p in PLATFORMS} == {
        p: single["stats"]["platforms"][p]["listings"] for p in PLATFORMS
    }


def test_a_worker_killed_mid_sweep_has_its_job_retried(
    cluster: Cluster, sandbox: str, single: dict[str, Any]
) -> None:
    """SIGKILL to the worker holding a job: another worker retries it, nothing is lost or stored twice,
    and every custody entry and capture still verifies."""
    cluster.start_workers(3)
    # a slow shared rate keeps jobs running long enough to kill one in the middle
    coordinator = cluster.sweep(sandbox, "--queries-per-job", "2", "--rate", "6")
    db = Database(cluster.url)
    try:
        victim = _a_worker_in_the_middle_of_a_job(db, cluster)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        finish(coordinator, timeout=600)
        elapsed = time.monotonic() - killed_at
        dist = snapshot(db)
        with db.session() as s:
            retried = s.scalars(select(SweepShard).where(SweepShard.attempts > 1)).all()
            assert s.scalar(select(func.count(SweepShard.id)).where(SweepShard.status != "done")) == 0
    finally:
        db.dispose()
    assert retried, "the killed worker's job was not retried"
    assert all(str(victim) not in (x.worker or "") for x in retried)
    assert elapsed < 300
    assert_same(single, dist)
    verify = subprocess.run(
        cli(cluster.data, "evidence", "verify", "--all"), cwd=ROOT, env=cluster.env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    # custody: each attempt wrote its own chain (the killed one's too), every one anchored in the global chain
    from storage.models import CustodyChainEntry, CustodyEntry

    db = Database(cluster.url)
    try:
        with db.session() as s:
            chains = set(s.scalars(select(CustodyChainEntry.chain).distinct()))
            anchored = set(s.scalars(select(CustodyEntry.object_id).where(CustodyEntry.action == "anchor")))
            global_captures = s.scalar(select(func.count()).where(CustodyEntry.action == "capture"))
    finally:
        db.dispose()
    assert chains and chains <= anchored
    assert global_captures == 0  # no worker appended evidence to the shared chain


def _a_worker_in_the_middle_of_a_job(db: Database, cluster: Cluster) -> int:
    """The pid of a worker that holds a running job which has already stored something."""
    pids = {str(p.pid): p.pid for p in cluster.workers}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with db.session() as s:
            for shard in s.scalars(select(SweepShard).where(SweepShard.status == "running")):
                pid = (shard.worker or "").rsplit(":", 1)[-1]
                stored = s.scalar(
                    select(func.count(Sighting.id)).where(Sighting.sweep_run_id == shard.sweep_run_id)
                )
                if pid in pids and stored:
                    return pids[pid]
        time.sleep(0.2)
    raise AssertionError("no worker took a job")


def test_distributed_needs_postgresql_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="need PostgreSQL"):
        conninfo(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    proc = subprocess.run(
        cli(tmp_path / "data", "worker"), cwd=ROOT, env=child_env(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0 and "need PostgreSQL" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("problem", ["unreachable", "wrong password"])
def test_a_worker_with_a_bad_database_is_one_line(
    problem: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from servers import free_port

    if problem == "unreachable":
        url = f"postgresql+psycopg://tertib:x@127.0.0.1:{free_port()}/tertib"
    else:
        server = request.getfixturevalue("pg_server")
        url = server.url("postgres", password="wrong")
    env = {**child_env(), "TERTIB_DATABASE_URL": url}
    proc = subprocess.run(
        cli(tmp_path / "data", "worker"), cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "x@" not in proc.stderr and "wrong" not in proc.stderr  # no password in the message


def test_jobs_cover_the_work_once_per_page_window() -> None:
    work = SweepWork.of(PLATFORMS, QUERIES, first_page=1, last_page=3)
    parts = list(work.shards(queries_per_shard=3, by_platform=True, pages_per_shard=2))
    cells = [(p, q, page) for w in parts for p in w.platforms for q in w.queries
             for page in range(w.first_page, w.last_page + 1)]  # fmt: skip
    assert len(cells) == len(set(cells)) == len(PLATFORMS) * len(QUERIES) * 3
    assert {(w.first_page, w.last_page) for w in parts} == {(1, 2), (3, 3)}


def test_a_superseded_attempt_cannot_commit(request: pytest.FixtureRequest) -> None:
    """Fencing: once a newer attempt took the shard, every commit of the old one is refused, nothing of it
    is stored, and the newer attempt commits as usual."""
    from storage import fencing
    from storage import repositories as repo

    db = Database(_pg_url(request))
    try:
        with db.session() as s:
            run_id = repo.start_run(s, platforms=["tokopedia"], queries=["jaket"])
            shard = SweepShard(sweep_run_id=run_id, shard_no=0, work={})
            s.add(shard)
            s.flush()
            shard_id = shard.id
        with db.session() as s:
            old = fencing.claim(s, shard_id, worker="a:1", job_id=None)
        assert old == 1
        listener = fencing.guard_commits(shard_id, 1, exit_on_loss=False)
        try:
            with db.session() as s:  # still the current attempt: commits
                repo.record_finding(
                    s, platform="tokopedia", kind="k", query="a", detail={}, sweep_run_id=run_id
                )
            with db.session() as s:  # the job is retried elsewhere (the guard checks the new token too)
                fencing.unguard(listener)
                assert fencing.claim(s, shard_id, worker="b:2", job_id=None) == 2
            listener = fencing.guard_commits(shard_id, 1, exit_on_loss=False)
            with pytest.raises(fencing.FencedOut, match="superseded"), db.session() as s:
                repo.record_finding(
                    s, platform="tokopedia", kind="k", query="b", detail={}, sweep_run_id=run_id
                )
        finally:
            fencing.unguard(listener)
        with db.session() as s:
            from storage.models import Finding

            assert sorted(f.query for f in s.scalars(select(Finding))) == ["a"]
            done = s.get(SweepShard, shard_id)
            assert done is not None and done.fence == 2 and done.attempts == 2 and done.worker == "b:2"
    finally:
        db.dispose()


def test_job_chains_are_verified_against_their_anchors(request: pytest.FixtureRequest) -> None:
    """Each job attempt appends to its own custody chain (no shared lock between workers); verify checks
    every chain's links and hashes, and its head against the anchor the global chain holds."""
    from sqlalchemy import update

    from crawler.evidence.verify import VerifyReport, _index_custody
    from storage import custody
    from storage.models import CustodyChainEntry

    def problems(db: Database) -> list[str]:
        report = VerifyReport()
        with db.session() as s:
            _index_custody(s, report)
        return [str(p) for p in report.problems]

    db = Database(_pg_url(request))
    chain = "sweep-shard:7:1"
    specs = [custody.EntrySpec("w", "capture", "capture", str(n), "ab" * 32) for n in (1, 2)]
    try:
        custody.use_chain(chain)
        try:
            with db.session() as s:
                assert custody.append_many(s, specs)[0] == 2
        finally:
            custody.use_chain(None)
        with db.session() as s:
            assert custody.head(s) == (0, custody.GENESIS)  # the global chain was not touched
        assert any("not anchored" in p for p in problems(db))
        with db.session() as s:
            assert custody.anchor_chains(s, [chain], actor="t") == 1
            assert custody.anchor_chains(s, [chain], actor="t") == 0  # idempotent
        assert problems(db) == []
        custody.use_chain(chain)
        try:
            with db.session() as s:
                custody.append_many(s, specs[:1])
        finally:
            custody.use_chain(None)
        assert any("appended after its anchor" in p for p in problems(db))
        with db.session() as s:
            s.execute(update(CustodyChainEntry).where(CustodyChainEntry.seq == 1).values(object_id="99"))
        assert any("modified" in p for p in problems(db))
    finally:
        db.dispose()
