"""``tertib follow``: read the shops of confirmed sellers, score what they list, queue new candidates.

"Kadang sudah di-takedown, besoknya ganti istilah lagi": a seller whose listing a reviewer approved keeps
selling, often under words the lexicon does not know; a shop page shows those listings when no keyword
search does. Steps (numbered the same in :func:`run_follow`):

1. Confirmed sellers (:func:`confirmed_sellers`): the sellers of listings whose latest review decision is
   *approve* (a seller with several is a repeat offender), and sellers of other listings that share a
   WhatsApp or Instagram handle with those; only platforms whose site profile has a shop listing endpoint
   (``SiteProfile.shop_request`` and ``parse_shop``, in the platform registry) can be followed.
2. Open a ``SweepRun`` of kind ``follow`` (one query ``seller:<platform>:<id>`` per shop).
3. Crawl: :class:`spiders.follow.FollowSpider` reads up to ``--max-pages`` pages of each shop through the
   sweep's pipelines — scored, candidates' evidence captured, stored with their sightings — so new
   candidates land in the review queue like any sweep's.
4. Summary: shops read, listings seen, listings never seen before, new candidates. Discovery reads the
   titles of the latest follow round as the ``sellers`` source (``crawler.terms.discovery.gather``).

The scheduler's built-in ``follow-sellers`` job runs this daily.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crawler import cli_common as common
from crawler.errors import TertibError, UsageError

if TYPE_CHECKING:
    from crawler.registry import Registry

KIND = "follow"


@dataclass(frozen=True, slots=True)
class FollowTarget:
    platform: str
    seller_id: str
    name: str
    reason: str  # why this seller is followed, for the run record


def confirmed_sellers(
    session: Any, platforms: list[str] | None = None, registry: Registry | None = None
) -> tuple[list[FollowTarget], int]:
    """Shops to follow, and how many confirmed sellers were left out (their platform has no shop endpoint).

    ``registry``: the installation's platforms (``settings.registry``; default: the built-in ones)."""
    from sqlalchemy import select

    from crawler.registry import default_registry
    from crawler.review import latest_decisions_subquery
    from storage.models import Listing, Seller

    registry = registry or default_registry()

    latest = latest_decisions_subquery()
    approved = session.execute(
        select(Listing.id, Listing.seller_id, Listing.contact_handles)
        .join(latest, latest.c.listing_id == Listing.id)
        .where(latest.c.decision == "approve")
    ).all()
    per_seller: dict[int, int] = defaultdict(int)
    handles: set[str] = set()
    for _lid, seller_id, listing_handles in approved:
        if seller_id is not None:
            per_seller[seller_id] += 1
        handles.update(h for h in listing_handles or () if isinstance(h, str))
    sellers = {s.id: s for s in session.scalars(select(Seller).where(Seller.id.in_(list(per_seller))))}
    for seller in sellers.values():
        handles.update(h for h in seller.contact_handles or () if isinstance(h, str))
    reasons: dict[int, str] = {
        sid: ("repeat offender: " if n > 1 else "") + f"{n} approved listing{'s' if n > 1 else ''}"
        for sid, n in per_seller.items()
    }
    # sellers sharing a handle with a confirmed one (on any platform)
    if handles:
        linked = session.execute(
            select(Listing.seller_id, Listing.contact_handles).where(
                Listing.seller_id.is_not(None), Listing.seller_id.not_in(list(per_seller) or [-1])
            )
        ).all()
        for seller_id, listing_handles in linked:
            shared = sorted(set(listing_handles or ()) & handles)
            if shared and seller_id not in reasons:
                reasons[seller_id] = f"shares {shared[0]} with a confirmed seller"
        extra = [sid for sid in reasons if sid not in sellers]
        for chunk in range(0, len(extra), 500):
            for s in session.scalars(select(Seller).where(Seller.id.in_(extra[chunk : chunk + 500]))):
                sellers[s.id] = s
        for s in session.scalars(select(Seller).where(Seller.id.not_in(list(reasons) or [-1]))):
            shared = sorted(set(s.contact_handles or ()) & handles)
            if shared:
                reasons[s.id] = f"shares {shared[0]} with a confirmed seller"
                sellers[s.id] = s
    out: list[FollowTarget] = []
    skipped = 0
    for sid, reason in sorted(reasons.items()):
        seller = sellers.get(sid)
        if seller is None:
            continue
        profile = registry.find(seller.platform)
        if platforms and seller.platform not in platforms:
            continue
        if profile is None or not profile.can_follow:
            skipped += 1
            continue
        out.append(FollowTarget(seller.platform, seller.platform_seller_id, seller.name or "", reason))
    return out, skipped


def run_follow(
    *,
    platforms: list[str] | None = None,
    max_pages: int = 5,
    progress: bool = True,
    screenshots: bool = True,
    details: str = "weak",
    trigger: str = "manual",
) -> tuple[int, int, int]:
    """One follow round in this process; returns (SweepRun id, shops followed, confirmed sellers skipped)."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings as ScrapySettings

    from crawler import settings as crawl_settings
    from crawler.logs import quiet_libraries
    from crawler.sweep import active_queries
    from crawler.terms.scorer import SCORER_VERSION
    from spiders.follow import FollowSpider
    from storage import repositories as repo

    settings = common.settings()
    db = common.database()
    # 1. Who to follow.
    with db.session() as session:
        targets, skipped = confirmed_sellers(session, platforms, settings.registry)
        _queries, lexicon_version_id = active_queries(session)
        # 2. The run record.
        run_id = repo.start_run(
            session,
            platforms=sorted({t.platform for t in targets}),
            kind=KIND,
            trigger=trigger,
            lexicon_version_id=lexicon_version_id,
            scorer_version=SCORER_VERSION,
            queries=[f"seller:{t.platform}:{t.seller_id}" for t in targets],
        )
    if not targets:
        with db.session() as session:
            repo.finish_run(session, run_id, status="completed", stats={"platforms": {}, "targets": 0})
        return run_id, 0, skipped
    # 3. Crawl the shops through the sweep's pipelines.
    values = crawl_settings.build(
        settings,
        run_id=run_id,
        platforms=tuple(sorted({t.platform for t in targets})),
        progress=progress,
        screenshots=screenshots,
        details=details,
    )
    process = CrawlerProcess(ScrapySettings(values))
    quiet_libraries()
    process.crawl(FollowSpider, targets=[asdict(t) for t in targets], max_pages=max_pages, run_id=run_id)
    process.start()
    with db.session() as session:
        repo.fail_if_running(session, run_id)
    return run_id, len(targets), skipped


def follow_summary(session: Any, run_id: int) -> dict[str, int]:
    """Listings a follow round saw, how many were new to the database, how many of those are candidates."""
    from sqlalchemy import func, select

    from storage.models import Listing, Sighting, SweepRun

    run = session.get(SweepRun, run_id)
    if run is None:
        return {}
    ids = select(Sighting.listing_id).where(Sighting.sweep_run_id == run_id).distinct()
    seen = int(session.scalar(select(func.count()).select_from(ids.subquery())) or 0)
    new = select(Listing.id).where(Listing.id.in_(ids), Listing.first_seen >= run.started_at)
    new_count = int(session.scalar(select(func.count()).select_from(new.subquery())) or 0)
    new_cands = int(
        session.scalar(
            select(func.count()).where(
                Listing.id.in_(ids),
                Listing.first_seen >= run.started_at,
                Listing.verdict.in_(("candidate", "strong")),
            )
        )
        or 0
    )
    return {"listings": seen, "new_listings": new_count, "new_candidates": new_cands}


def follow_command(
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", "-p", help="Only shops on this platform (repeatable)."),
    ] = None,
    max_pages: Annotated[int, typer.Option("--max-pages", min=1, max=50, help="Shop pages per seller.")] = 5,
    sandbox: Annotated[
        str | None, typer.Option("--sandbox", help="Reach every platform at this sandbox root instead.")
    ] = None,
    details: Annotated[
        str, typer.Option("--details", help="Open listing pages scoring at least: weak, candidate or none.")
    ] = "weak",
    no_screenshots: Annotated[bool, typer.Option("--no-screenshots", help="WARC evidence only.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress display.")] = False,
) -> None:
    """Read the shops of confirmed sellers; new candidates go to the review queue.

    Example: tertib follow --max-pages 3
    """
    registry = common.settings().registry
    chosen = [registry.get(p).platform for p in platform or []]  # an unknown name: one usage error
    if details not in ("weak", "candidate", "none"):
        raise UsageError(f"--details must be weak, candidate or none, not {details!r}")
    if sandbox:
        common.set_overrides(sandbox_url=sandbox)
    run_id, followed, skipped = run_follow(
        platforms=chosen or None,
        max_pages=max_pages,
        progress=not no_progress,
        screenshots=not no_screenshots,
        details=details,
        trigger="schedule" if os.environ.get("TERTIB_JOB_RUN_ID") else "manual",
    )
    with common.database().session() as session:
        from storage.models import SweepRun

        run = session.get(SweepRun, run_id)
        summary = follow_summary(session, run_id)
        status = run.status if run is not None else "failed"
        attention = list(run.needs_attention or []) if run is not None else []
    for line in attention:
        common.console.print(f"[yellow]needs attention[/] {line}", highlight=False)
    if skipped:
        common.console.print(
            f"{skipped} confirmed seller(s) on platforms without a shop listing endpoint were not followed",
            highlight=False,
        )
    if not followed:
        common.console.print("no confirmed sellers to follow yet (approve candidates with tertib review)")
    else:
        common.console.print(
            f"followed {followed} shops: {summary.get('listings', 0)} listings, "
            f"{summary.get('new_listings', 0)} never seen before, {summary.get('new_candidates', 0)} new "
            "candidates for review (tertib review next)",
            highlight=False,
        )
    common.console.print(f"follow run #{run_id}", highlight=False)
    if status == "failed":
        raise TertibError(f"follow run #{run_id} failed: " + "; ".join(attention or ["see the log"]))
