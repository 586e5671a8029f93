"""What the crawl benchmarks share: run a measured child process, sample its memory, parse ``--latency``.

A Twisted reactor cannot restart, so each crawl a benchmark measures runs in its own subprocess
(:func:`run_child`), with the repository on ``PYTHONPATH`` and no ``TERTIB_*`` settings leaking in from the
caller's environment (:func:`child_env`). Imported by the scripts in ``bench/`` (their folder is on
``sys.path`` when run as ``python bench/<name>.py``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERTIB_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def peak_rss(proc: subprocess.Popen[bytes]) -> int:
    """Sample the process and its descendants every 100 ms until it exits; the highest RSS seen (bytes)."""
    import psutil

    peak = 0
    try:
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            except psutil.Error:
                break
            peak = max(peak, rss)
            time.sleep(0.1)
    finally:
        proc.wait()
    return peak


def run_child(args: list[str], *, cwd: Path = ROOT, profile_to: Path | None = None) -> tuple[float, int]:
    """``python [cProfile] ARGS`` to completion; (wall seconds, peak RSS bytes). Exits on failure, with
    the tail of the child's output."""
    cmd = [sys.executable]
    if profile_to is not None:
        cmd += ["-m", "cProfile", "-o", str(profile_to)]
    cmd += args
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:  # files: no pipe can fill up
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, env=child_env(), stdout=out, stderr=err)
        peak = peak_rss(proc)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            out.seek(0)
            err.seek(0)
            tail = out.read()[-2000:].decode(errors="replace") + err.read()[-3000:].decode(errors="replace")
            raise SystemExit(f"child failed ({proc.returncode}): {' '.join(args)}\n{tail}")
    return wall, peak


def add_latency_option(parser: argparse.ArgumentParser) -> None:
    """``--latency 0,0.25``: the sandbox response times to measure at (``args.latencies``, seconds)."""
    parser.add_argument(
        "--latency",
        dest="latencies",
        type=_latencies,
        default=[0.0, 0.25],
        help="sandbox response times to run at, in seconds, comma-separated (0: CPU-bound; 0.25: a fast "
        "marketplace API)",
    )


def _latencies(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("seconds, comma-separated: 0,0.25") from None
    if not values or any(not 0 <= v <= 60 for v in values):
        raise argparse.ArgumentTypeError("between 0 and 60 seconds each")
    return values
