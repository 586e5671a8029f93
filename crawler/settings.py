"""Scrapy settings for every tertib crawl — the one place components are wired (STYLE.md §1).

Pipelines and middlewares are listed by dotted path with an integer order (gaps of 100). Each component
builds itself with ``from_crawler`` and reads its own prefixed settings:

- ``SANDBOX_GUARD_ENABLED`` — refuse any request to ``/_sandbox/*`` (the replicas' control plane).
- ``RETRY_AFTER_MAX_DELAY`` — the longest ``Retry-After`` honoured (seconds); longer ones give up.
- ``SCORE_ENABLED`` — score listings (title first, title + description after enrichment).
- ``EVIDENCE_SCREENSHOT_TABS`` — Chromium tabs taking evidence screenshots (memory vs speed).
- ``EVIDENCE_ENABLED``, ``EVIDENCE_SCREENSHOT``, ``EVIDENCE_ENRICH_MIN_VERDICT`` — fetch listing details for
  listings scoring at least this verdict, and capture WARC + screenshot evidence for candidates.
- ``PERSIST_BATCH_SIZE`` — listings per database transaction (written off the reactor thread).
- ``EVIDENCE_BATCH_SIZE``, ``RECHECK_BATCH_SIZE`` — captures (and recheck ledger rows) per WARC append and
  transaction; each batch is committed or absent.
- ``TERTIB_PROGRESS`` — a Rich progress display (the CLI turns it on).
- ``TERTIB_PROXY_POOL`` — the run's :class:`crawler.proxies.ProxyPool` (None when no proxy is configured:
  direct). ``ProxyMiddleware`` (740) gives requests their egress; the spider, the evidence pipeline's
  screenshots and ``SweepHealth`` share the same pool.

``build(settings, crawl="sweep" | "recheck", run_id=…)`` returns the dict for ``scrapy.settings.Settings``
with that crawl's pipelines (``ITEM_PIPELINES`` or ``RECHECK_ITEM_PIPELINES``); per-platform politeness
comes from each site profile as a download slot (``DOWNLOAD_SLOTS``), so platforms never share a slot even
when the sandbox serves all of them from 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

from crawler import __version__
from crawler.config import CHROMIUM_ARGS, Settings
from crawler.proxies import ProxyPool
from spiders.pages import DETAIL_SLOT

ITEM_PIPELINES = {
    "crawler.pipelines.NormalisePipeline": 100,
    "crawler.pipelines.ScorePipeline": 200,
    "crawler.pipelines.EvidencePipeline": 300,
    "crawler.pipelines.PersistPipeline": 400,
}
# a recheck crawl (crawler.recheck): evidence and the verdict ledger for each observation
RECHECK_ITEM_PIPELINES = {
    "crawler.recheck.RecheckPipeline": 300,
}
PIPELINES_BY_CRAWL = {"sweep": ITEM_PIPELINES, "recheck": RECHECK_ITEM_PIPELINES}

DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.SandboxGuardMiddleware": 50,
    # process_response runs from high to low order: 560 sees a 429/503 before Scrapy's RetryMiddleware (550)
    "crawler.middlewares.RetryAfterMiddleware": 560,
    # before Scrapy's HttpProxyMiddleware (750), which turns the proxy's credentials into a header
    "crawler.middlewares.ProxyMiddleware": 740,
}

EXTENSIONS = {
    "crawler.extensions.SweepHealth": 100,
    "crawler.extensions.SweepProgress": 200,
}


def slots_platforms(slots: dict[str, Any]) -> list[str]:
    return [name for name in slots if DETAIL_SLOT not in name]


def build(
    settings: Settings,
    *,
    crawl: str = "sweep",
    run_id: int | None = None,
    platforms: tuple[str, ...] = (),
    progress: bool = False,
    evidence: bool = True,
    screenshots: bool = True,
    details: str = "weak",
    proxies: ProxyPool | None = None,
) -> dict[str, Any]:
    """``proxies``: the run's :class:`~crawler.proxies.ProxyPool` (already checked with ``preflight``);
    by default one is built from the settings (a malformed proxy URL is a ConfigError here)."""
    if crawl not in PIPELINES_BY_CRAWL:
        raise ValueError(f"unknown crawl {crawl!r}; known: {', '.join(PIPELINES_BY_CRAWL)}")
    profiles = settings.registry.profiles
    sandbox = bool(settings.sandbox_url)
    slots: dict[str, dict[str, Any]] = {}
    for name, profile in profiles.items():
        if platforms and name not in platforms:
            continue
        # searches use the slot "<platform>", listing/detail fetches "<platform>:detail" (DETAIL_SLOT)
        if not sandbox:
            slots[name] = {"concurrency": profile.concurrency, "delay": profile.download_delay, "jitter": 0.5}
            slots[name + DETAIL_SLOT] = dict(slots[name])
        elif profile.needs_browser:
            # one tab, paced: the replicas redirect fast search clients to a traffic check like the real sites
            slots[name] = {"concurrency": 1, "delay": 0.8, "jitter": 0.0}
            slots[name + DETAIL_SLOT] = {"concurrency": 2, "delay": 0.0, "jitter": 0.0}
        else:
            # the sandbox is ours: faster, but its rate limits and faults are still exercised
            slots[name] = {"concurrency": max(profile.concurrency, 4), "delay": 0.0, "jitter": 0.0}
            slots[name + DETAIL_SLOT] = dict(slots[name])
    chromium = settings.chromium_path()
    pool = proxies if proxies is not None else ProxyPool.from_settings(settings, slots_platforms(slots))
    values: dict[str, Any] = {
        "BOT_NAME": "tertib",
        "USER_AGENT": f"tertib/{__version__} (+enforcement research; contact in tertib.toml)",
        "ROBOTSTXT_OBEY": False,  # formal enforcement sweeps of public listings; politeness is enforced below
        "LOG_ENABLED": False,  # our own handler (crawler.logs.setup_logging) is the only one
        "LOG_LEVEL": settings.log_level,
        "TELNETCONSOLE_ENABLED": False,
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        # throughput on 2 cores (stack-notes.md): few concurrent items, explicit per-domain concurrency
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        "CONCURRENT_ITEMS": 8,
        "DOWNLOAD_SLOTS": slots,
        "DOWNLOAD_TIMEOUT": 30,
        "AUTOTHROTTLE_ENABLED": not sandbox,
        "AUTOTHROTTLE_START_DELAY": 2.0,
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 3,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "RETRY_AFTER_MAX_DELAY": 5.0 if sandbox else 300.0,
        "HTTPERROR_ALLOW_ALL": True,  # parsers decide: 404/422 are meaningful on some platforms
        "REDIRECT_ENABLED": True,
        "COOKIES_ENABLED": True,
        "ITEM_PIPELINES": PIPELINES_BY_CRAWL[crawl],
        "DOWNLOADER_MIDDLEWARES": DOWNLOADER_MIDDLEWARES,
        "EXTENSIONS": EXTENSIONS,
        "SANDBOX_GUARD_ENABLED": True,
        "SCORE_ENABLED": True,
        "EVIDENCE_ENABLED": evidence,
        "EVIDENCE_SCREENSHOT": screenshots and chromium is not None,
        "EVIDENCE_ENRICH_MIN_VERDICT": details,
        "EVIDENCE_MAX_CONCURRENT": 4,  # listings at once in a browser tab or screenshot
        "EVIDENCE_DETAIL_CONCURRENCY": 16,  # HTTP detail fetches at once (each platform's detail slot paces)
        # one screenshot tab: 238-302 captures/min and peak RSS 1.4 GB over 500 captures on 2 cores; each more
        # tab adds ~0.15 GB for ~1.3x (bench/capture_throughput.py)
        "EVIDENCE_SCREENSHOT_TABS": 1,
        "PERSIST_BATCH_SIZE": 200,
        "EVIDENCE_BATCH_SIZE": 50,  # captures per WARC append + transaction (crawler.evidence.capture)
        "RECHECK_BATCH_SIZE": 100,  # recheck observations per evidence + ledger transaction
        "TERTIB_PROGRESS": progress,
        "TERTIB_RUN_ID": run_id,
        "TERTIB_SETTINGS": settings,
        "TERTIB_PROXY_POOL": pool if pool.configured else None,
        # browser pages only where a profile needs them (scrapy-playwright; Debian Chromium)
        "DOWNLOAD_HANDLERS": {
            "http": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
            "https": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
        }
        if any(profiles[p].needs_browser for p in slots if p in profiles)
        else {},
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        "PLAYWRIGHT_LAUNCH_OPTIONS": {
            "headless": True,
            "args": list(CHROMIUM_ARGS),
            **({"executable_path": chromium} if chromium else {}),
        },
        # a saved, logged-in profile (tertib browser login P) becomes that platform's persistent context
        "PLAYWRIGHT_CONTEXTS": {
            name: {"user_data_dir": str(path)}
            for name, path in settings.saved_browser_profiles().items()
            if name in slots
        },
        "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": 2,
        "PLAYWRIGHT_MAX_CONTEXTS": 4,
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": 30_000,
        "PLAYWRIGHT_RESTART_DISCONNECTED_BROWSER": True,
    }
    return values
