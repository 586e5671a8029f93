"""Evidence capture throughput: full-page screenshot + WARC records + custody, against the sandbox.

Runs the sandbox in a child process (``sandbox.server.SandboxProcess``), then for 1, 2 and 4 concurrent
Chromium tabs captures listing pages (``{url}/tokopedia/{shop_domain}/{slug}``) with
:class:`crawler.evidence.screenshot.Screenshotter` and stores each with
:meth:`crawler.evidence.capture.EvidenceRecorder.arecord_capture` (writer thread). Prints captures per
minute, the ratio against a screenshot-only baseline measured in the same run, peak RSS of this process
plus all its children (Chromium; the sandbox excluded) sampled every 0.5 s, and PSS (which splits pages
the Chromium processes share), and the median evidence bytes per listing (its WARC byte range + its
screenshot blob when that blob was new).

A long run (``--long``, default 500 captures at the best concurrency) reports peak RSS per batch of 100 to
show whether memory grows.

    .venv/bin/python bench/capture_throughput.py [--captures 60] [--long 500] [--seed 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.config import load_settings  # noqa: E402
from crawler.evidence.capture import EvidenceRecorder  # noqa: E402
from crawler.evidence.screenshot import Screenshotter  # noqa: E402
from crawler.items import Listing  # noqa: E402
from sandbox.catalog import generate, listing_path  # noqa: E402
from sandbox.server import SandboxProcess  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Capture  # noqa: E402

EXCLUDE: set[int] = set()


class RssSampler:
    """Peak RSS of this process and every descendant (Chromium renderers, GPU, utility processes)."""

    def __init__(self, exclude: set[int]) -> None:
        self.me = psutil.Process()
        self.exclude = exclude  # the sandbox server: not part of the capture side
        self.peak = 0
        self.peak_pss = 0
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> int:
        """Sum of RSS (over-counts pages Chromium processes share) and of PSS (shared pages split)."""
        total = pss = 0
        for proc in [self.me, *self.me.children(recursive=True)]:
            if proc.pid in self.exclude:
                continue
            try:
                total += proc.memory_info().rss
                pss += getattr(proc.memory_full_info(), "pss", 0)
            except psutil.Error:
                continue
        self.peak = max(self.peak, total)
        self.peak_pss = max(self.peak_pss, pss)
        return total

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.5)

    def start(self) -> None:
        self.peak = 0
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> int:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.peak


def targets(base: str, seed: int, size: int) -> list[dict[str, Any]]:
    items = []
    for item in generate(seed, size):
        if item.platform != "tokopedia":
            continue
        key, path = listing_path(item)
        items.append(
            {
                "platform": "tokopedia",
                "listing_id": item.listing_id,
                "listing_key": item.key,
                "url": f"{base}/{key}{path}",
                "title": item.title,
                "price": item.price,
            }
        )
    return items


async def run_level(
    base_settings_dir: Path, items: list[dict[str, Any]], n: int, pages: int, *, record: bool, batch: int = 0
) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(dir=base_settings_dir))
    settings = load_settings(env={}, data_dir=data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    db.migrate()
    sampler = RssSampler(EXCLUDE)
    batch_peaks: list[int] = []
    recorder = EvidenceRecorder(settings, db) if record else None
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    done = 0
    async with Screenshotter(settings, pages=pages) as shots:
        await shots.capture(items[0]["url"])  # warm-up, not timed
        sampler.start()
        started = time.monotonic()

        async def worker() -> None:
            nonlocal done
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                item = items[i % len(items)]
                png, exchange = await shots.capture(item["url"])
                if recorder is not None:
                    await recorder.arecord_capture(
                        listing=Listing.from_dict(item),
                        exchanges=[exchange],
                        screenshot_png=png,
                        metadata={"query": "bench", "rank": i, "score": {"value": 0.9}},
                    )
                done += 1
                if batch and done % batch == 0:
                    batch_peaks.append(sampler.peak)
                    sampler.peak = sampler.sample()

        await asyncio.gather(*[worker() for _ in range(pages)])
        elapsed = time.monotonic() - started
        peak = max([await sampler.stop(), *batch_peaks])  # the sampler restarts its peak per batch
    result: dict[str, Any] = {
        "pages": pages,
        "captures": n,
        "seconds": round(elapsed, 2),
        "per_minute": round(n / elapsed * 60, 1),
        "peak_rss_mb": round(peak / 2**20),
        "peak_pss_mb": round(sampler.peak_pss / 2**20),
    }
    if batch_peaks:
        result["batch_peak_rss_mb"] = [round(p / 2**20) for p in batch_peaks]
    if recorder is not None:
        recorder.close()
        with db.session() as session:
            caps = session.query(Capture).order_by(Capture.id).all()
            seen: set[str] = set()
            sizes = []
            for cap in caps:
                size = cap.warc_length or 0
                if cap.screenshot_sha256 and cap.screenshot_sha256 not in seen:
                    seen.add(cap.screenshot_sha256)
                    size += cap.screenshot_bytes or 0
                sizes.append(size)
            result["median_evidence_bytes"] = int(statistics.median(sizes))
            result["median_warc_bytes"] = int(statistics.median(c.warc_length or 0 for c in caps))
            result["distinct_screenshots"] = len(seen)
            result["observable"] = sum(1 for c in caps if c.observable)
    db.dispose()
    shutil.rmtree(data_dir, ignore_errors=True)
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="tertib-bench-"))
    report: dict[str, Any] = {"levels": [], "baseline": [], "long": None}
    try:
        sandbox = SandboxProcess(seed=args.seed, size=args.size)
        with sandbox as base:
            assert sandbox.proc is not None
            EXCLUDE.update(p.pid for p in psutil.Process(sandbox.proc.pid).children(recursive=True))
            EXCLUDE.add(sandbox.proc.pid)
            items = targets(base, args.seed, args.size)
            print(f"sandbox {base}: {len(items)} tokopedia listing pages", flush=True)
            for pages in (1, 2, 4):
                base_line = await run_level(work, items, args.baseline, pages, record=False)
                report["baseline"].append(base_line)
                level = await run_level(work, items, args.captures, pages, record=True)
                level["ratio_vs_screenshot_only"] = round(level["per_minute"] / base_line["per_minute"], 2)
                report["levels"].append(level)
                print(json.dumps({"baseline": base_line, "evidence": level}), flush=True)
            if args.long:
                best = args.long_pages or max(report["levels"], key=lambda r: r["per_minute"])["pages"]
                report["long"] = await run_level(work, items, args.long, best, record=True, batch=100)
                print(json.dumps({"long": report["long"]}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=int, default=60, help="captures per concurrency level")
    parser.add_argument("--baseline", type=int, default=30, help="screenshot-only captures per level")
    parser.add_argument("--long", type=int, default=500, help="captures in the RSS run (0 to skip)")
    parser.add_argument(
        "--long-pages", type=int, default=0, help="tabs in the RSS run (default: the fastest level)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=2000, help="sandbox catalog size")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    print(
        "\npages  captures/min  vs screenshot-only  peak RSS MB  peak PSS MB  median evidence bytes/listing"
    )
    for level in report["levels"]:
        print(
            f"{level['pages']:>5}  {level['per_minute']:>12}  {level['ratio_vs_screenshot_only']:>18}  "
            f"{level['peak_rss_mb']:>11}  {level['peak_pss_mb']:>11}  {level['median_evidence_bytes']:>10}"
        )
    if report["long"]:
        long = report["long"]
        print(
            f"long run: {long['captures']} captures at {long['pages']} pages, {long['per_minute']}/min, "
            f"peak RSS {long['peak_rss_mb']} MB (PSS {long['peak_pss_mb']} MB), "
            f"per 100: {long.get('batch_peak_rss_mb')}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
