"""Benchmark: a distributed sweep's throughput with 1, 2 and 3 workers, and a dead worker's restart time.

Run: ``.venv/bin/python bench/distributed_throughput.py [--size 3000] [--queries 12] [--max-pages 2]
[--latency 0.25] [--workers 1,2,3] [--skip-restart]``.

1. Throughput. A throwaway PostgreSQL (``tests/servers.py``: ``initdb`` on loopback) and the sandbox (in this
   process) answering every replica request after ``--latency`` seconds serve the same catalog to each
   run. For each worker count N, N ``tertib worker`` processes start and ``tertib sweep --distributed``
   (HTTP platforms, ``--details none --no-screenshots``, 2 queries per job) runs over a fresh database;
   listings/s = sightings stored / the coordinator's wall time. The ratio against 1 worker is printed with
   the ideal N (the issue asks ≥ 0.8 × N). Every process shares this machine's cores, the database and the
   sandbox: on a 2-core machine the ratio says what the CPU leaves, not what N machines would reach.
2. Restart. One worker takes a job of a paced sweep (``--rate 4``), is killed with SIGKILL once the job
   has stored something, and the time from the kill to the job's next attempt starting on another worker
   is measured (``sweep_shards.started_at`` of the new attempt).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from servers import PostgresServer  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from sandbox.catalog import generate  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402
from sandbox.state import SandboxState  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Sighting, SweepShard  # noqa: E402

PLATFORMS = ("tokopedia", "lazada", "blibli")
QUERIES = (
    "jaket", "thrift", "bal korea", "preloved", "bekas impor", "kaos", "karungan", "hoodie", "korea",
    "original", "celana", "kemeja",
)  # fmt: skip


def env_for(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERTIB_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TERTIB_DATABASE_URL"] = url
    return env


def start_workers(data: Path, env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
    args = [sys.executable, "-m", "crawler.cli", "--data-dir", str(data), "worker"]
    return [
        subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        if proc.poll() is None:
            proc.terminate()
    for proc in workers:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def sweep(
    data: Path, env: dict[str, str], sandbox: str, terms: Path, max_pages: int, *extra: str
) -> list[str]:
    args = [sys.executable, "-m", "crawler.cli", "--data-dir", str(data), "sweep", "--distributed"]
    args += ["--sandbox", sandbox, "--terms", str(terms), "--max-pages", str(max_pages)]
    for platform in PLATFORMS:
        args += ["-p", platform]
    return [*args, "--details", "none", "--no-screenshots", "--no-progress", "--queries-per-job", "2", *extra]


def fresh_db(server: PostgresServer, name: str) -> str:
    server.create_database(name=name)
    url = str(server.url(name))
    db = Database(url)
    db.migrate()
    db.dispose()
    return url


def throughput(
    server: PostgresServer, sandbox: str, root: Path, n: int, queries: int, max_pages: int
) -> float:
    url = fresh_db(server, f"bench_{n}")
    env, data = env_for(url), root / f"data-{n}"
    terms = root / "terms.txt"
    terms.write_text("\n".join(QUERIES[:queries]) + "\n")
    workers = start_workers(data, env, n)
    try:
        started = time.monotonic()
        subprocess.run(sweep(data, env, sandbox, terms, max_pages), cwd=ROOT, env=env, check=True,
                       capture_output=True)  # fmt: skip
        seconds = time.monotonic() - started
    finally:
        stop(workers)
    db = Database(url)
    with db.session() as s:
        sightings = int(s.scalar(select(func.count(Sighting.id))) or 0)
    db.dispose()
    rate = sightings / seconds
    print(f"  {n} worker(s): {sightings} listings in {seconds:.1f} s = {rate:.1f} listings/s", flush=True)
    return rate


def restart_time(server: PostgresServer, sandbox: str, root: Path, max_pages: int) -> float:
    url = fresh_db(server, "bench_restart")
    env, data = env_for(url), root / "data-restart"
    terms = root / "terms.txt"
    workers = start_workers(data, env, 2)
    db = Database(url)
    try:
        args = sweep(data, env, sandbox, terms, max_pages, "--rate", "4")
        quiet = subprocess.DEVNULL
        coordinator = subprocess.Popen(args, cwd=ROOT, env=env, stdout=quiet, stderr=quiet)
        pids = {str(w.pid): w.pid for w in workers}
        victim, shard_id = 0, 0
        while not victim:
            with db.session() as s:
                for shard in s.scalars(select(SweepShard).where(SweepShard.status == "running")):
                    pid = (shard.worker or "").rsplit(":", 1)[-1]
                    stored = s.scalar(select(func.count(Sighting.id)))
                    if pid in pids and stored:
                        victim, shard_id = pids[pid], shard.id
                        break
            time.sleep(0.2)
        os.kill(victim, signal.SIGKILL)
        killed = datetime.now(UTC)
        while True:
            with db.session() as s:
                shard = s.get(SweepShard, shard_id)
                assert shard is not None
                if shard.attempts > 1 and shard.started_at and shard.started_at > killed:
                    restarted = shard.started_at
                    break
            time.sleep(0.2)
        coordinator.wait(timeout=900)
    finally:
        stop(workers)
        db.dispose()
    seconds = (restarted - killed).total_seconds()
    print(
        f"  worker killed (SIGKILL) -> its job restarted on another worker after {seconds:.1f} s", flush=True
    )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=3000)
    parser.add_argument("--queries", type=int, default=12)
    parser.add_argument("--max-pages", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--skip-restart", action="store_true")
    args = parser.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    server = PostgresServer().start()
    try:
        state = SandboxState(generate(7, args.size), seed=7, latency=args.latency)
        with SandboxServer(state) as sandbox, tempfile.TemporaryDirectory(prefix="tertib-bench-") as tmp:
            root = Path(tmp)
            shape = f"{args.queries} queries x {args.max_pages} pages x {len(PLATFORMS)} platforms"
            pace = f"answers after {args.latency * 1000:.0f} ms"
            print(f"distributed sweep: {args.size} listings, {shape}, {pace}")
            rates = {n: throughput(server, sandbox, root, n, args.queries, args.max_pages) for n in counts}
            base = rates.get(1)
            if base:
                for n, rate in rates.items():
                    ideal = f"(ideal {n}, asked >= {0.8 * n:.1f})"
                    print(f"  ratio {n} worker(s) / 1 worker: {rate / base:.2f} {ideal}")
            if not args.skip_restart:
                restart_time(server, sandbox, root, args.max_pages)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
