"""Console under load: the review page with 20 concurrent signed-in clients, p95 latency.

Uses the 1,000,000-listing / 100,000-candidate SQLite installation of ``bench/console_pages.py`` (built
once, or reused with ``--keep DIR``), starts ``tertib serve`` on a free loopback port exactly as in
production (uvicorn, its thread pool, the real middleware and sessions), signs in ``--clients`` browsers
(one session each), and measures wall-clock latency per request from the client side:

1. one client, requests one after another (the page's own cost);
2. ``--clients`` clients at once, each looping over the review page (``--requests`` each);
3. the same load on a static file (``/static/console.css``): the server's floor on this machine, the
   baseline the review page's p95 is divided by.

Usage: ``python bench/console_load.py [--keep DIR] [--clients 20] [--requests 30] [--path /review]``
Target: review page p95 under 250 ms at 20 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from console_pages import PASSWORD, USER, prepare  # noqa: E402

from sandbox.server import free_port  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def start_server(data: Path, source: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERTIB_")}
    # every client signs in from 127.0.0.1: no back-off for the bench's own sign-ins
    env.update(
        TERTIB_DATA_DIR=str(data), TERTIB_CONSOLE_CLIENT_FREE="100000", TERTIB_CONSOLE_LOGIN_FREE="100000"
    )
    env["PYTHONPATH"] = str(source)
    # an older tree may not know these options
    extra = ["--access-log", "off", "--workers", str(workers)] if source == ROOT else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "serve", "--port", str(port), *extra],
        env=env,
        cwd=source,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/login", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read() if proc.stderr else b""
            raise SystemExit(f"tertib serve did not start: {err.decode(errors='replace')[-2000:]}")
        time.sleep(0.3)


def signed_in_cookie(url: str) -> str:
    """A signed-in browser's session cookie (one session per simulated client)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/login", data={"username": USER, "password": PASSWORD})
        if r.status_code != 303:
            raise SystemExit(f"sign-in failed: {r.status_code}")
        return f"tertib_session={client.cookies.get('tertib_session')}"


async def _client(url: str, cookie: str, path: str, requests: int, ready: asyncio.Barrier) -> list[float]:
    """One keep-alive connection doing ``requests`` GETs one after another; latencies in ms.

    A few lines of HTTP/1.1 on asyncio instead of an HTTP library in threads: the clients share one
    process on a 2-core machine, and 20 threads waiting for the GIL would add their own waits to the
    latencies measured (Python switches threads every 5 ms).
    """
    host, _, port = url.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n\r\n".encode()
    out: list[float] = []
    await ready.wait()
    try:
        for _ in range(requests):
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            out.append((time.perf_counter() - t0) * 1000)
            if status != b"200":
                raise RuntimeError(f"{path}: {status.decode()}")
    finally:
        writer.close()
    return out


def run_clients(url: str, cookies: list[str], path: str, requests: int) -> tuple[list[float], float]:
    """Every client GETs ``path`` ``requests`` times, all clients at once; (latencies in ms, wall s)."""

    async def main() -> tuple[list[float], float]:
        ready = asyncio.Barrier(len(cookies) + 1)
        tasks = [asyncio.create_task(_client(url, c, path, requests, ready)) for c in cookies]
        await ready.wait()
        t0 = time.perf_counter()
        results = await asyncio.gather(*tasks)
        return [x for r in results for x in r], time.perf_counter() - t0

    return asyncio.run(main())


def _cpu(process: psutil.Process) -> float:
    """User + system CPU seconds of a process and its children (uvicorn workers)."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def line(label: str, values: list[float], wall: float | None = None) -> str:
    rate = f"{len(values) / wall:7.1f} req/s" if wall else " " * 13
    return (
        f"{label:34} p50 {statistics.median(values):7.1f}  p95 {percentile(values, 0.95):7.1f}  "
        f"p99 {percentile(values, 0.99):7.1f} ms  {rate}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, default=None, help="Build (or reuse) the data dir here.")
    parser.add_argument("--listings", type=int, default=1_000_000)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=30, help="Requests per client and round.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--path", default="/review")
    parser.add_argument("--workers", type=int, default=2, help="tertib serve --workers (2: the cores).")
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="Serve from another source tree (before/after comparisons)."
    )
    args = parser.parse_args()

    data = args.keep or Path(tempfile.mkdtemp(prefix="tertib-console-load-"))
    if args.source.resolve() == ROOT:
        prepare(data, args.listings, args.candidates)[1].dispose()
    elif not (data / "tertib.sqlite3").is_file():
        raise SystemExit("--source needs a data dir prepared by this tree's bench (--keep DIR)")
    proc, url = start_server(data, args.source.resolve(), args.workers)
    try:
        cookies = [signed_in_cookie(url) for _ in range(args.clients)]
        run_clients(url, cookies, args.path, 2)  # warm-up: templates compiled, pools filled, caches read
        server = psutil.Process(proc.pid)  # with workers: the supervisor, whose children do the work
        one, _ = run_clients(url, cookies[:1], args.path, args.requests * 2)
        rounds: list[tuple[list[float], float, list[float], float]] = []
        cpu = 0.0
        for _ in range(args.rounds):  # the machine is shared: rounds show how much its load moves a figure
            cpu0 = _cpu(server)
            many, wall = run_clients(url, cookies, args.path, args.requests)
            cpu += _cpu(server) - cpu0
            floor, floor_wall = run_clients(url, cookies, "/static/console.css", args.requests)
            rounds.append((many, wall, floor, floor_wall))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    load = os.getloadavg()[0]
    print(
        f"{args.clients} clients x {args.requests} requests x {args.rounds} rounds, "
        f"{args.workers} worker(s), load average {load:.1f} on {os.cpu_count()} cores"
    )
    print(line(f"{args.path}, 1 client", one))
    for n, (many, wall, floor, floor_wall) in enumerate(rounds, 1):
        print(line(f"{args.path}, {args.clients} clients, round {n}", many, wall))
        print(line(f"/static/console.css, round {n}", floor, floor_wall))
    cpu_ms = cpu * 1000 / sum(len(r[0]) for r in rounds)
    print(f"server CPU per {args.path} request under load: {cpu_ms:.1f} ms (user+system)")
    p95s = sorted(percentile(r[0], 0.95) for r in rounds)
    floors = sorted(percentile(r[2], 0.95) for r in rounds)
    p95, floor95 = statistics.median(p95s), statistics.median(floors)
    verdict = "OK" if p95 < 250 else "SLOW"
    print(
        f"p95 {args.path} at {args.clients} clients, median of {args.rounds} rounds: {p95:.0f} ms "
        f"(rounds {p95s[0]:.0f}–{p95s[-1]:.0f}) = {p95 / floor95:.1f}x the static-file p95 "
        f"({floor95:.0f} ms), {p95 / statistics.median(one):.1f}x one client's median; "
        f"target < 250 ms: {verdict}"
    )


if __name__ == "__main__":
    main()
