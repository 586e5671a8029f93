"""Benchmark: links per second of the full recheck path versus a bare Scrapy spider, and peak RSS.

Run: ``.venv/bin/python bench/recheck_throughput.py [--links 10000] [--rounds 1] [--latency 0,0.25]
[--seed 5] [--profile] [--json out.json]``.

Steps (numbered the same in :func:`throughput`):

1. Catalog. A generated catalog (``sandbox.catalog.generate``) with at least ``max(10,000, --links)``
   listings on the HTTP-only platforms (Tokopedia, Lazada, Blibli, TikTok Shop) is written to JSONL and
   served by the sandbox **in a child process** (``sandbox.server.SandboxProcess``, faults ``none``), so the
   server never shares the benchmark's CPU time or GIL. The first ``--links`` of those listings, in
   catalog order (platforms interleaved), are the targets; their URLs are the sandbox's public listing URLs
   (``{root}/{key}{path}``, ``sandbox.catalog.listing_path``).
2. Per round, two crawls, each in its own subprocess (a Twisted reactor cannot restart):

   - **bare**: a minimal spider (``--child bare``) that sends exactly the detail requests the recheck
     spider sends — URL, method, headers and body from each profile's ``detail_request``, the same
     ``<platform>:detail`` download slot, ``dont_redirect`` and ``handle_httpstatus_all`` — with the same
     Scrapy settings (``crawler.settings.build``: slots, concurrency, downloader middlewares) and no item
     pipelines or extensions. It counts responses by status and does nothing else.
   - **recheck**: ``crawler.recheck.run_recheck`` (``--child recheck``) on a fresh data directory whose
     database holds one ``Listing`` row per target (``storage.repositories.upsert_listing``), screenshots
     off, WARC evidence + verdict ledger + custody on — the full path the audit CLI uses.

   Links/s = targets / crawl seconds, where crawl seconds run from ``spider_opened`` to ``spider_closed``
   (measured inside the child with a receiver connected for any sender, so the code under test is not
   changed; it includes closing the pipelines, i.e. flushing the WARC writer). Wall time of each child is
   printed too. The recheck child is sampled with psutil every 100 ms (itself + descendants) for its peak
   RSS. The ratio recheck/bare is the figure of merit (target ≥ 0.75); with ``--rounds`` > 1 each side's
   best round counts (the machine is shared). Steps 2-3 run at each ``--latency`` (set on the running
   sandbox through ``POST /_sandbox/latency``): 0 measures CPU cost (the crawl is CPU-bound), 0.25 s a
   recheck paced by a fast marketplace's response time with the same concurrency on both sides.
3. Check. The recheck database must hold one ``Recheck`` row per target — LIVE (nothing was taken down)
   except TikTok Shop's region-locked products, UNOBSERVABLE by rule ``tiktokshop.region_locked``
   (``sandbox.platforms.tiktokshop.region_locked``) — and one capture per row (an attempt for those); the
   bare spider must have seen one 200 per target. A mismatch is printed and the exit code is 1, so a fast
   but wrong run cannot pass.
4. ``--profile`` reruns the recheck child under cProfile (reactor thread) and, in the same child, profiles
   the WARC writer thread (``tertib-warc``) separately, then prints the top functions of each.

Extend: another HTTP-only platform joins by adding it to :data:`HTTP_PLATFORMS` (its site profile's
``detail_request`` and the sandbox replica do the rest).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _children import add_latency_option, run_child  # noqa: E402

HTTP_PLATFORMS = ("tokopedia", "lazada", "blibli", "tiktokshop")
MIN_CATALOG_HTTP = 10_000  # listings on HTTP_PLATFORMS in the generated catalog, whatever --links is
TARGET_RATIO = 0.75


# --------------------------------------------------------------------------------------------------
# Children (one crawl per process)
# --------------------------------------------------------------------------------------------------
def _crawl_clock() -> dict[str, float]:
    """spider_opened / spider_closed times for whatever crawler runs in this process (any sender)."""
    from pydispatch import dispatcher
    from scrapy import signals

    clock: dict[str, float] = {}

    def opened(*_args: Any, **_kwargs: Any) -> None:
        clock["open"] = time.monotonic()

    def closed(*_args: Any, **_kwargs: Any) -> None:
        clock["close"] = time.monotonic()

    # pydispatch holds receivers weakly: keep them alive as long as the clock
    clock_refs = (opened, closed)
    dispatcher.connect(opened, signal=signals.spider_opened, sender=dispatcher.Any)
    dispatcher.connect(closed, signal=signals.spider_closed, sender=dispatcher.Any)
    _KEEP.append(clock_refs)
    return clock


_KEEP: list[Any] = []


def bare_child(config: dict[str, Any], out: Path) -> None:
    """Send the recheck spider's detail requests with its settings; count statuses; nothing else."""
    import scrapy
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings as ScrapySettings

    from crawler import settings as crawl_settings
    from crawler.config import load_settings

    targets: list[dict[str, Any]] = config["targets"]
    settings = load_settings(env={}, sandbox_url=config["url"], data_dir=config["data_dir"])
    platforms = tuple(sorted({t["platform"] for t in targets}))
    # the same call run_recheck makes (screenshots off), minus pipelines and extensions
    values = crawl_settings.build(
        settings, run_id=None, platforms=platforms, progress=False, screenshots=False
    )
    values["ITEM_PIPELINES"] = {}
    values["EXTENSIONS"] = {}
    statuses: Counter[str] = Counter()

    class BareDetailSpider(scrapy.Spider):
        name = "bare-detail"

        async def start(self) -> Any:
            for target in targets:
                profile = settings.registry.profiles[target["platform"]]
                spec = profile.detail_request(settings, target["url"])
                yield scrapy.Request(
                    spec.url,
                    method=spec.method,
                    headers=spec.headers or None,
                    body=spec.body,
                    meta={
                        "platform": profile.platform,
                        "download_slot": profile.platform + ":detail",
                        "dont_redirect": True,
                        "handle_httpstatus_all": True,
                        "block_retries": 0,
                    },
                    callback=self.parse_detail,
                    errback=self.on_error,
                    dont_filter=True,
                )

        def parse_detail(self, response: Any) -> None:
            statuses[str(response.status)] += 1

        def on_error(self, failure: Any) -> None:
            statuses[failure.type.__name__] += 1

    clock = _crawl_clock()
    process = CrawlerProcess(ScrapySettings(values))
    process.crawl(BareDetailSpider)
    process.start()
    out.write_text(
        json.dumps({"seconds": clock["close"] - clock["open"], "statuses": dict(statuses)}), encoding="utf-8"
    )


def recheck_child(config: dict[str, Any], out: Path, profile_dir: Path | None) -> None:
    """``run_recheck`` on the prepared data directory, screenshots off; the crawl's seconds to ``out``."""
    from crawler import cli_common
    from crawler.recheck import RecheckTarget, run_recheck

    cli_common.set_overrides(data_dir=config["data_dir"], sandbox_url=config["url"])
    targets = [
        RecheckTarget(t["listing_id"], t["listing_key"], t["platform"], t["url"]) for t in config["targets"]
    ]
    writer_profile = _profile_writer_thread() if profile_dir is not None else None
    clock = _crawl_clock()
    started = time.monotonic()
    run_id = run_recheck(
        cli_common.settings(),
        cli_common.database(),
        targets,
        screenshots=False,
        progress=False,
        trigger="bench",
    )
    wall = time.monotonic() - started
    if writer_profile is not None and profile_dir is not None:
        writer_profile.dump_stats(str(profile_dir / "writer.prof"))
    out.write_text(
        json.dumps({"seconds": clock["close"] - clock["open"], "run_recheck_s": wall, "run_id": run_id}),
        encoding="utf-8",
    )


def _profile_writer_thread() -> Any:
    """Profile every job the evidence writer thread runs (cProfile only sees the thread that enabled it)."""
    import cProfile

    from crawler.evidence import capture

    prof = cProfile.Profile()
    original = capture.EvidenceRecorder.record_capture

    def profiled(self: Any, *args: Any, **kwargs: Any) -> Any:
        prof.enable()
        try:
            return original(self, *args, **kwargs)
        finally:
            prof.disable()

    capture.EvidenceRecorder.record_capture = profiled  # type: ignore[method-assign]
    return prof


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------
def write_catalog_file(path: Path, seed: int, links: int) -> list[Any]:
    """Generate a catalog with ≥ max(MIN_CATALOG_HTTP, links) HTTP-platform listings; write it to ``path``."""
    from sandbox.catalog import generate, write_catalog

    want = max(MIN_CATALOG_HTTP, links)
    size = math.ceil(want / 0.53 * 1.03)  # 53 % of a generated catalog is on HTTP_PLATFORMS
    while True:
        catalog = generate(seed, size)
        http = [x for x in catalog if x.platform in HTTP_PLATFORMS and x.active_from_day <= 0]
        if len(http) >= want:
            break
        size = math.ceil(size * want / max(1, len(http)) * 1.02)
    write_catalog(catalog, path)
    return http


def prepare_data_dir(data_dir: Path, url: str, listings: list[Any]) -> list[dict[str, Any]]:
    """A fresh, migrated database with one Listing row per target; the targets as run_recheck gets them."""
    from crawler.config import load_settings
    from sandbox.catalog import listing_path
    from storage import repositories as repo
    from storage.db import Database

    settings = load_settings(env={}, data_dir=data_dir, sandbox_url=url)
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    db.migrate()
    targets: list[dict[str, Any]] = []
    try:
        with db.session() as session:
            for item in listings:
                key, path = listing_path(item)
                data = {
                    "listing_key": item.key,
                    "platform": item.platform,
                    "listing_id": item.listing_id,
                    "url": f"{url}/{key}{path}",
                    "title": item.title,
                    "description": item.description,
                    "price": item.price,
                    "seller_id": item.seller_id,
                    "seller_name": item.seller_name,
                    "seller_city": item.seller_city,
                    "contact_handles": list(item.contact_handles),
                    "extra_ids": dict(item.extra),
                }
                listing_id, _created = repo.upsert_listing(session, data)
                targets.append(
                    {
                        "listing_id": listing_id,
                        "listing_key": item.key,
                        "platform": item.platform,
                        "url": data["url"],
                    }
                )
    finally:
        db.dispose()
    return targets


def expected_verdicts(targets: list[dict[str, Any]]) -> Counter[str]:
    """What the sandbox shows at day 0 with no takedowns: LIVE, except TikTok Shop's region-locked ids."""
    from sandbox.platforms.tiktokshop import region_locked

    expected: Counter[str] = Counter()
    for t in targets:
        locked = t["platform"] == "tiktokshop" and region_locked(t["listing_key"].partition(":")[2])
        expected["UNOBSERVABLE" if locked else "LIVE"] += 1
    return expected


def check_recheck(data_dir: Path, expected: Counter[str]) -> dict[str, Any]:
    """Ledger, captures and run status of the recheck child's database against ``expected`` verdicts."""
    from sqlalchemy import func, select

    from storage.db import Database
    from storage.models import Capture, Listing, Recheck, SweepRun

    db = Database(f"sqlite:///{data_dir / 'tertib.sqlite3'}")
    try:
        with db.session() as session:
            verdicts = dict(
                session.execute(select(Recheck.verdict, func.count()).group_by(Recheck.verdict)).all()
            )
            run = session.scalars(select(SweepRun).where(SweepRun.kind == "recheck")).one()
            captures = session.scalar(select(func.count()).select_from(Capture)) or 0
            warc_bytes = session.scalar(select(func.sum(Capture.warc_length))) or 0
            distinct_listings = session.scalar(select(func.count(func.distinct(Recheck.listing_id)))) or 0
            # what fired where the verdict was not LIVE: (platform, rule, signal) → count
            odd = session.execute(
                select(Listing.platform, Recheck.rule, Recheck.signal, func.count())
                .join(Listing, Listing.id == Recheck.listing_id)
                .where(Recheck.verdict != "LIVE")
                .group_by(Listing.platform, Recheck.rule, Recheck.signal)
            ).all()
    finally:
        db.dispose()
    problems = []
    n = sum(expected.values())
    if sum(verdicts.values()) != n or distinct_listings != n:
        rows = sum(verdicts.values())
        problems.append(f"{rows} recheck rows for {distinct_listings} listings, expected {n}")
    if verdicts != dict(expected):
        problems.append(f"verdicts {verdicts}, expected {dict(expected)}")
    for platform, rule, signal, count in odd:
        if rule != "tiktokshop.region_locked":
            problems.append(f"  {count} x {platform}: rule {rule}, signal {str(signal)[:160]!r}")
    if captures != sum(verdicts.values()):  # an UNOBSERVABLE round is kept as an attempt capture
        problems.append(f"{captures} captures for {sum(verdicts.values())} recheck rows")
    if run.status != "completed":
        problems.append(f"run status {run.status}")
    return {
        "verdicts": verdicts,
        "captures": captures,
        "warc_bytes": int(warc_bytes),
        "status": run.status,
        "problems": problems,
    }


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    from sandbox.server import SandboxProcess

    work = Path(tempfile.mkdtemp(prefix="tertib-bench-recheck-"))
    report: dict[str, Any] = {"links": args.links, "latency": {}, "problems": []}
    try:
        # 1. Catalog, served by a sandbox subprocess; targets in catalog order.
        started = time.monotonic()
        catalog_path = work / "catalog.jsonl"
        http = write_catalog_file(catalog_path, args.seed, args.links)
        chosen = http[: args.links]
        report["catalog_http_listings"] = len(http)
        report["per_platform"] = dict(Counter(x.platform for x in chosen))
        print(
            f"catalog: {len(http):,} listings on {', '.join(HTTP_PLATFORMS)} "
            f"({time.monotonic() - started:.0f} s); targets {args.links:,}: {report['per_platform']}",
            flush=True,
        )
        with SandboxProcess(catalog=catalog_path, seed=args.seed, faults="none") as url:
            import httpx

            for latency in args.latencies:
                httpx.post(f"{url}/_sandbox/latency", json={"seconds": latency}).raise_for_status()
                pace = f"answers after {latency * 1000:.0f} ms" if latency else "answers at once (CPU-bound)"
                print(f"\n== sandbox {pace}", flush=True)
                part = {"bare": [], "recheck": [], "latency": latency}
                measure(args, work, url, chosen, part, report)
                report["latency"][str(latency)] = part
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def child_round(mode: str, work: Path, round_no: int, config: dict[str, Any]) -> dict[str, Any]:
    """One ``--child bare|recheck`` run on ``config``: its report plus wall time, peak RSS and links/s."""
    cfg = work / f"{mode}-{round_no}.json"
    cfg.write_text(json.dumps(config), encoding="utf-8")
    out = work / f"{mode}-{round_no}.out.json"
    wall, peak = run_child([__file__, "--child", mode, str(cfg), str(out)], cwd=work)
    result = {**json.loads(out.read_text(encoding="utf-8")), "wall": wall, "rss": peak}
    result["lps"] = len(config["targets"]) / result["seconds"]
    return result


def measure(
    args: argparse.Namespace,
    work: Path,
    url: str,
    chosen: list[Any],
    part: dict[str, Any],
    report: dict[str, Any],
) -> None:
    """2.-3. The bare and recheck rounds at the sandbox's current latency; results go into ``part``."""
    known_problems = len(report["problems"])
    # 2. Rounds: bare, then recheck (each in its own subprocess).
    for round_no in range(args.rounds):
        data_dir = work / f"recheck-{round_no}"
        started = time.monotonic()
        targets = prepare_data_dir(data_dir, url, chosen)
        took = time.monotonic() - started
        print(f"round {round_no + 1}: {len(targets):,} Listing rows in {took:.0f} s")
        bare_dir = Path(tempfile.mkdtemp(prefix=f"bare-{round_no}-", dir=work))
        config = {"url": url, "targets": targets}
        bare = child_round("bare", work, round_no, {**config, "data_dir": str(bare_dir)})
        part["bare"].append(bare)
        print(
            f"  bare    {bare['seconds']:7.2f} s crawl, {bare['lps']:7.1f} links/s  {bare['statuses']}",
            flush=True,
        )
        if bare["statuses"] != {"200": len(targets)}:
            report["problems"].append(f"bare round {round_no + 1}: statuses {bare['statuses']}")

        full = child_round("recheck", work, round_no, {**config, "data_dir": str(data_dir)})
        # 3. Check the ledger.
        full.update(check_recheck(data_dir, expected_verdicts(targets)))
        part["recheck"].append(full)
        report["problems"] += [f"recheck round {round_no + 1}: {p}" for p in full.pop("problems")]
        print(
            f"  recheck {full['seconds']:7.2f} s crawl, {full['lps']:7.1f} links/s  "
            f"{full['verdicts']}, "
            f"{full['captures']:,} captures, {full['warc_bytes'] / 2**20:.1f} MB WARC, "
            f"peak RSS {full['rss'] / 2**20:.0f} MB",
            flush=True,
        )
        if args.profile and round_no == args.rounds - 1:
            profile_recheck(work, data_dir, url, chosen)
        shutil.rmtree(data_dir, ignore_errors=True)
    bare = max(part["bare"], key=lambda r: r["lps"])
    full = max(part["recheck"], key=lambda r: r["lps"])
    part["bare_lps"], part["recheck_lps"] = bare["lps"], full["lps"]
    part["ratio"] = full["lps"] / bare["lps"]
    part["recheck_peak_rss_mb"] = max(r["rss"] for r in part["recheck"]) / 2**20
    print()
    print(
        f"bare spider : {args.links:,} links in {bare['seconds']:7.2f} s crawl "
        f"({bare['wall']:5.1f} s wall) = {bare['lps']:7.1f} links/s"
    )
    print(
        f"recheck     : {args.links:,} links in {full['seconds']:7.2f} s crawl "
        f"({full['wall']:5.1f} s wall, run_recheck {full['run_recheck_s']:.1f} s) "
        f"= {full['lps']:7.1f} links/s"
    )
    print(f"peak RSS of the recheck subprocess: {part['recheck_peak_rss_mb']:.0f} MB")
    verdict = "OK" if part["ratio"] >= TARGET_RATIO else "MISSED"
    print(f"ratio recheck/bare = {part['ratio']:.2f} (target >= {TARGET_RATIO}) {verdict}")
    for problem in report["problems"][known_problems:]:
        print(f"PROBLEM: {problem}")


def profile_recheck(work: Path, data_dir: Path, url: str, chosen: list[Any]) -> None:
    """4. The recheck child again under cProfile: the reactor thread and the WARC writer thread."""
    import pstats

    prof_dir = work / "profile"
    prof_dir.mkdir(exist_ok=True)
    fresh = work / "recheck-profiled"
    targets = prepare_data_dir(fresh, url, chosen)
    cfg = work / "recheck-profiled.json"
    cfg.write_text(json.dumps({"url": url, "targets": targets, "data_dir": str(fresh)}), encoding="utf-8")
    out = work / "recheck-profiled.out.json"
    main_prof = prof_dir / "main.prof"
    run_child(
        [__file__, "--child", "recheck", str(cfg), str(out), str(prof_dir)], cwd=work, profile_to=main_prof
    )
    result = json.loads(out.read_text(encoding="utf-8"))
    print(f"\nrecheck under cProfile: {result['seconds']:.1f} s crawl")
    print("reactor thread, top 40 by cumulative time:")
    pstats.Stats(str(main_prof)).sort_stats("cumulative").print_stats(40)
    print("reactor thread, top 30 by own time:")
    pstats.Stats(str(main_prof)).sort_stats("tottime").print_stats(30)
    writer = prof_dir / "writer.prof"
    if writer.exists():
        print("WARC writer thread (EvidenceRecorder.record_capture), top 25 by cumulative time:")
        pstats.Stats(str(writer)).sort_stats("cumulative").print_stats(25)
    shutil.rmtree(fresh, ignore_errors=True)


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        mode, config_path, out = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if mode == "bare":
            bare_child(config, out)
        else:
            recheck_child(config, out, Path(sys.argv[5]) if len(sys.argv) > 5 else None)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--links", type=int, default=10_000, help="links to recheck per crawl")
    parser.add_argument(
        "--rounds", type=int, default=1, help="bare + recheck rounds; each side's best counts"
    )
    parser.add_argument("--seed", type=int, default=5)
    add_latency_option(parser)
    parser.add_argument("--profile", action="store_true", help="profile the recheck child with cProfile")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    if args.links < 1 or args.rounds < 1:
        parser.error("--links and --rounds must be at least 1")
    report = throughput(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
