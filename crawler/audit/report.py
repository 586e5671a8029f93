"""Compliance figures computed from the stored recheck ledger, and their Markdown/HTML/JSON renderings.

Everything here reads the database only (takedown items, batch sends, rechecks, listings): the same ledger
always gives the same bytes, so an auditor can reproduce a report with the same command. No wall-clock
time appears in a report.

Definitions (one item = one :class:`storage.models.TakedownItem`):

- **status**: the verdict of the item's latest *conclusive* recheck (LIVE, REMOVED, HIDDEN; by
  ``checked_at`` then id). With no conclusive recheck: ``UNOBSERVABLE`` if it was attempted (blocked,
  captcha, login wall, timeout, 5xx), else ``UNCHECKED``. UNOBSERVABLE is never counted as removed.
  An item removed and later seen LIVE again counts as live (``reinstated`` is noted on the item).
- **time to removal**: send time (``BatchSend.sent_at`` for the item's platform) → ``checked_at`` of the
  first REMOVED recheck, for items whose status is REMOVED. It is an upper bound (the removal happened
  between the previous check and that one). **Removed within 24 h**: time to removal ≤ 24 h (inclusive).
- **median / p90**: linear interpolation between order statistics (numpy's default ``linear`` method).
- **stayed up**: removed items → time to removal; live and hidden items → send time → their latest
  conclusive check (they were up at least that long).
- **relisted**: items whose listing has relistings (``Listing.relist_of_id``), see
  :mod:`crawler.audit.relist`.
- **ready to re-request**: sent items whose status is LIVE.

Settings: ``timezone`` (``TERTIB_TIMEZONE``; times are shown in that zone, WIB by default).
Extend: add a figure in :func:`_group_stats` (it lands in JSON automatically), then a column in
``_MD_COLUMNS`` and the HTML template ``crawler/templates/audit_report.html.j2``.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.audit.due import resolve_batch
from crawler.errors import NotFound, UsageError
from crawler.items import Verdict
from crawler.registry import Registry
from storage.models import BatchSend, Listing, Recheck, TakedownBatch, TakedownItem

CONCLUSIVE = frozenset({Verdict.LIVE.value, Verdict.REMOVED.value, Verdict.HIDDEN.value})
STATUSES = ("REMOVED", "HIDDEN", "LIVE", "UNOBSERVABLE", "UNCHECKED")
DAY = timedelta(days=1)
FORMATS = ("md", "html", "json")


@dataclass(slots=True)
class ItemRow:
    """One takedown item as the ledger shows it."""

    takedown_item_id: int
    batch_id: int
    batch_number: str
    platform: str
    row_no: int
    listing_id: int
    listing_key: str
    url: str
    title: str
    sent_at: datetime | None
    status: str
    checks: int
    unobservable_attempts: int
    first_removed_at: datetime | None = None
    hours_to_removal: float | None = None
    hours_up: float | None = None
    last_checked_at: datetime | None = None
    last_rule: str = ""
    last_capture_id: int | None = None
    reinstated: bool = False
    relisted_as: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"item-{self.takedown_item_id}"


@dataclass(slots=True)
class GroupStats:
    """Figures for one batch × platform (or a total); ``items`` maps a figure to the item ids behind it."""

    key: str  # anchor-safe id, e.g. "b3-{platform}", "all-{platform}", "all"
    batch_number: str  # "" for totals
    platform: str  # "" for the grand total
    sent_at: datetime | None
    requested: int = 0
    removed: int = 0
    hidden: int = 0
    live: int = 0
    unobservable: int = 0
    unchecked: int = 0
    relisted: int = 0
    removed_within_24h: int = 0
    median_hours_to_removal: float | None = None
    p90_hours_to_removal: float | None = None
    median_hours_up_live: float | None = None
    items: dict[str, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class AuditReport:
    scope: dict[str, Any]
    groups: list[GroupStats]
    items: list[ItemRow]
    ready_to_rerequest: list[int]  # takedown item ids
    curves: dict[str, list[tuple[float, float]]]  # platform → (days since send, cumulative % removed)
    as_of: datetime | None  # the latest checked_at in scope (not the wall clock)

    def item(self, item_id: int) -> ItemRow:
        return self._by_id()[item_id]

    def _by_id(self) -> dict[int, ItemRow]:
        return {i.takedown_item_id: i for i in self.items}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (``q`` in [0, 1]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 4)


def item_status(rows: Sequence[Recheck]) -> tuple[str, Recheck | None, Recheck | None, bool]:
    """(status, latest conclusive row, first REMOVED row, reinstated) for one item's rechecks."""
    ordered = sorted(rows, key=lambda r: (r.checked_at, r.id or 0))
    conclusive = [r for r in ordered if r.verdict in CONCLUSIVE]
    first_removed = next((r for r in ordered if r.verdict == Verdict.REMOVED.value), None)
    if conclusive:
        last = conclusive[-1]
        reinstated = first_removed is not None and last.verdict != Verdict.REMOVED.value
        return last.verdict, last, first_removed, reinstated
    if ordered:
        return Verdict.UNOBSERVABLE.value, None, None, False
    return "UNCHECKED", None, None, False


def _load_items(session: Session, batch_id: int | None, platform: str | None) -> list[ItemRow]:
    query = (
        select(TakedownItem, TakedownBatch.number, Listing)
        .join(TakedownBatch, TakedownBatch.id == TakedownItem.batch_id)
        .join(Listing, Listing.id == TakedownItem.listing_id)
        .order_by(TakedownItem.batch_id, TakedownItem.platform, TakedownItem.row_no, TakedownItem.id)
    )
    if batch_id is not None:
        query = query.where(TakedownItem.batch_id == batch_id)
    if platform:
        query = query.where(TakedownItem.platform == platform)
    triples = session.execute(query).unique().all()
    sends = {(s.batch_id, s.platform): s.sent_at for s in session.scalars(select(BatchSend))}
    item_ids = [t.id for t, _n, _l in triples]
    listing_ids = sorted({t.listing_id for t, _n, _l in triples})
    rechecks: dict[int, list[Recheck]] = defaultdict(list)
    children: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(item_ids), 500):
        part = item_ids[start : start + 500]
        for row in session.scalars(select(Recheck).where(Recheck.takedown_item_id.in_(part))):
            assert row.takedown_item_id is not None
            rechecks[row.takedown_item_id].append(row)
    for start in range(0, len(listing_ids), 500):
        lpart = listing_ids[start : start + 500]
        for child_key, parent_id in session.execute(
            select(Listing.listing_key, Listing.relist_of_id)
            .where(Listing.relist_of_id.in_(lpart))
            .order_by(Listing.listing_key)
        ):
            if parent_id is not None:
                children[parent_id].append(child_key)
    out = []
    for item, number, listing in triples:
        rows = rechecks.get(item.id, [])
        status, last, first_removed, reinstated = item_status(rows)
        sent_at = sends.get((item.batch_id, item.platform))
        entry = ItemRow(
            takedown_item_id=item.id,
            batch_id=item.batch_id,
            batch_number=number,
            platform=item.platform,
            row_no=item.row_no,
            listing_id=listing.id,
            listing_key=listing.listing_key,
            url=item.url,
            title=listing.title,
            sent_at=sent_at,
            status=status,
            checks=sum(1 for r in rows if r.attempt > 0),
            unobservable_attempts=sum(1 for r in rows if r.verdict == Verdict.UNOBSERVABLE.value),
            last_checked_at=last.checked_at if last else None,
            last_rule=last.rule if last else "",
            last_capture_id=last.capture_id if last else None,
            reinstated=reinstated,
            relisted_as=children.get(listing.id, []),
        )
        if status == Verdict.REMOVED.value and first_removed is not None:
            entry.first_removed_at = first_removed.checked_at
            if sent_at is not None:
                entry.hours_to_removal = _hours(first_removed.checked_at - sent_at)
                entry.hours_up = entry.hours_to_removal
        elif last is not None and sent_at is not None:
            entry.hours_up = _hours(last.checked_at - sent_at)
        out.append(entry)
    return out


def _group_stats(key: str, batch_number: str, platform: str, rows: list[ItemRow]) -> GroupStats:
    sent = sorted({r.sent_at for r in rows if r.sent_at is not None})
    g = GroupStats(key=key, batch_number=batch_number, platform=platform, sent_at=sent[0] if sent else None)
    by: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        by["requested"].append(r.takedown_item_id)
        by[r.status.lower()].append(r.takedown_item_id)
        if r.relisted_as:
            by["relisted"].append(r.takedown_item_id)
        if r.hours_to_removal is not None and r.hours_to_removal <= 24:
            by["removed_within_24h"].append(r.takedown_item_id)
        if r.status == "LIVE" and r.sent_at is not None:
            by["ready_to_rerequest"].append(r.takedown_item_id)
    g.requested = len(by["requested"])
    g.removed = len(by["removed"])
    g.hidden = len(by["hidden"])
    g.live = len(by["live"])
    g.unobservable = len(by["unobservable"])
    g.unchecked = len(by["unchecked"])
    g.relisted = len(by["relisted"])
    g.removed_within_24h = len(by["removed_within_24h"])
    times = [r.hours_to_removal for r in rows if r.hours_to_removal is not None]
    g.median_hours_to_removal = _round(percentile(times, 0.5))
    g.p90_hours_to_removal = _round(percentile(times, 0.9))
    up = [r.hours_up for r in rows if r.status == "LIVE" and r.hours_up is not None]
    g.median_hours_up_live = _round(percentile(up, 0.5))
    by["timed_removals"] = [r.takedown_item_id for r in rows if r.hours_to_removal is not None]
    g.items = {k: v for k, v in sorted(by.items())}
    return g


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _curves(items: list[ItemRow], horizon_days: float) -> dict[str, list[tuple[float, float]]]:
    """Per platform: cumulative share (%) of sent items removed, as a step function of days since send."""
    out: dict[str, list[tuple[float, float]]] = {}
    for platform in sorted({i.platform for i in items}):
        sent = [i for i in items if i.platform == platform and i.sent_at is not None]
        if not sent:
            continue
        days = sorted(i.hours_to_removal / 24 for i in sent if i.hours_to_removal is not None)
        points = [(0.0, 0.0)]
        for n, d in enumerate(days, start=1):
            points.append((round(d, 4), round(100 * n / len(sent), 2)))
        points.append((max(horizon_days, days[-1] if days else 0.0), points[-1][1]))
        out[platform] = points
    return out


def build_report(
    session: Session,
    *,
    batch: str | None = None,
    platform: str | None = None,
    recheck_days: Sequence[int] = (1, 3, 7, 30),
) -> AuditReport:
    """All figures for one batch (number or id) or every batch, optionally one platform."""
    batch_id = None
    if batch is not None:
        batch_id = resolve_batch(session, batch).id
    items = _load_items(session, batch_id, platform)
    if not items:
        what = f"batch {batch}" if batch else "any batch"
        raise NotFound(f"no takedown items in {what}" + (f" for platform {platform}" if platform else ""))
    groups: list[GroupStats] = []
    by_group: dict[tuple[int, str], list[ItemRow]] = defaultdict(list)
    for i in items:
        by_group[(i.batch_id, i.platform)].append(i)
    for (bid, plat), rows in sorted(by_group.items()):
        groups.append(_group_stats(f"b{bid}-{plat}", rows[0].batch_number, plat, rows))
    batches = {i.batch_id for i in items}
    platforms = sorted({i.platform for i in items})
    if len(batches) > 1:
        for plat in platforms:
            rows = [i for i in items if i.platform == plat]
            groups.append(_group_stats(f"all-{plat}", "", plat, rows))
    groups.append(_group_stats("all", "", "", items))
    checked = [i.last_checked_at for i in items if i.last_checked_at is not None]
    return AuditReport(
        scope={"batch": batch, "platform": platform, "batches": sorted(i for i in batches)},
        groups=groups,
        items=items,
        ready_to_rerequest=[i.takedown_item_id for i in items if i.status == "LIVE" and i.sent_at],
        curves=_curves(items, float(max(recheck_days) if recheck_days else 30)),
        as_of=max(checked) if checked else None,
    )


# -- rendering -----------------------------------------------------------------------------------------


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(tz).replace(microsecond=0).isoformat()


def to_json_data(report: AuditReport, tz: ZoneInfo) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, datetime):
            return _local(value, tz)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return {
        "scope": report.scope,
        "as_of": _local(report.as_of, tz),
        "timezone": str(tz),
        "definitions": {
            "status": "latest conclusive recheck verdict; UNOBSERVABLE is never counted as removed",
            "hours_to_removal": "send time -> first REMOVED recheck (upper bound)",
            "percentiles": "linear interpolation",
        },
        "groups": [clean(asdict(g)) for g in report.groups],
        "items": [clean(asdict(i)) for i in report.items],
        "ready_to_rerequest": report.ready_to_rerequest,
        "removal_curves": {k: [list(p) for p in v] for k, v in report.curves.items()},
    }


def render_json(report: AuditReport, tz: ZoneInfo) -> str:
    return json.dumps(to_json_data(report, tz), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


_MD_COLUMNS = (
    ("requested", "requested"),
    ("removed", "removed"),
    ("hidden", "hidden"),
    ("live", "still live"),
    ("unobservable", "unobservable"),
    ("unchecked", "unchecked"),
    ("relisted", "relisted"),
    ("removed_within_24h", "removed ≤24 h"),
)


def _fmt_hours(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} h"


def _group_label(g: GroupStats) -> tuple[str, str]:
    return (g.batch_number or "all batches", g.platform or "all platforms")


def render_markdown(report: AuditReport, tz: ZoneInfo) -> str:
    lines = ["# Takedown audit report", ""]
    scope = report.scope
    lines.append(
        f"Scope: batch {scope['batch'] or 'all'}, platform {scope['platform'] or 'all'}; "
        f"ledger as of {_local(report.as_of, tz) or 'no rechecks yet'} ({tz})."
    )
    lines += ["", "Every count links to the items behind it (see *Items*).", ""]
    header = ["batch", "platform", *[label for _k, label in _MD_COLUMNS], "median to removal", "p90"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for g in report.groups:
        cells = list(_group_label(g))
        for key, _label in _MD_COLUMNS:
            value = getattr(g, key)
            cells.append(f"[{value}](#{g.key}-{key})" if value else "0")
        link = f"#{g.key}-timed_removals"
        cells.append(f"[{_fmt_hours(g.median_hours_to_removal)}]({link})" if g.removed else "–")
        cells.append(f"[{_fmt_hours(g.p90_hours_to_removal)}]({link})" if g.removed else "–")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Ready to re-request (still live)", ""]
    if report.ready_to_rerequest:
        for item_id in report.ready_to_rerequest:
            i = report.item(item_id)
            lines.append(f"- [{i.listing_key}](#{i.anchor}) {i.url} (batch {i.batch_number})")
    else:
        lines.append("None.")
    lines += ["", "## Items behind each figure", ""]
    for g in report.groups:
        for name, ids in g.items.items():
            if not ids:
                continue
            label = " / ".join(_group_label(g))
            lines.append(f'<a id="{g.key}-{name}"></a>**{label} — {name}** ({len(ids)}): ')
            lines.append(", ".join(f"[{report.item(i).listing_key}](#item-{i})" for i in ids))
            lines.append("")
    lines += ["## Items", ""]
    lines.append(
        "| item | batch | platform | listing | status | sent (local) | to removal | rule | relisted as |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for i in report.items:
        lines.append(
            f'| <a id="{i.anchor}"></a>{i.takedown_item_id} | {i.batch_number} | {i.platform} | '
            f"[{i.listing_key}]({i.url}) | {i.status}{' (reinstated)' if i.reinstated else ''} | "
            f"{_local(i.sent_at, tz)} | {_fmt_hours(i.hours_to_removal)} | {i.last_rule} | "
            f"{', '.join(i.relisted_as)} |"
        )
    return "\n".join(lines) + "\n"


def chart_png(
    curves: dict[str, list[tuple[float, float]]],
    *,
    width: int = 760,
    height: int = 380,
    registry: Registry,
) -> bytes:
    """A step chart of cumulative % removed vs days since send, one line per platform (Pillow only); each
    platform in its profile's fixed colour (so the PNG bytes are stable)."""
    from PIL import Image, ImageDraw, ImageFont  # third-party, heavy: only the HTML report draws

    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    left, top, right, bottom = 56, 20, width - 150, height - 44
    x_max = float(math.ceil(max([p[0] for pts in curves.values() for p in pts] + [1.0])))

    def xy(day: float, pct: float) -> tuple[float, float]:
        return (left + (right - left) * day / x_max, bottom - (bottom - top) * pct / 100)

    for grid in range(0, 101, 20):
        y = xy(0, grid)[1]
        draw.line([(left, y), (right, y)], fill=(225, 225, 225))
        draw.text((left - 34, y - 6), f"{grid}%", fill=(60, 60, 60), font=font)
    ticks = sorted({0, *range(0, int(x_max) + 1, max(1, int(x_max) // 10)), int(x_max)})
    for tick in ticks:
        x = xy(tick, 0)[0]
        draw.line([(x, bottom), (x, bottom + 4)], fill=(60, 60, 60))
        draw.text((x - 6, bottom + 8), str(tick), fill=(60, 60, 60), font=font)
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=(60, 60, 60))
    draw.text(((left + right) // 2 - 60, height - 18), "days since the request was sent", fill=(0, 0, 0))
    for n, (platform, points) in enumerate(sorted(curves.items())):
        colour = registry.colour(platform)
        path: list[tuple[float, float]] = []
        for k, (when, pct) in enumerate(points):
            if k:
                path.append(xy(when, points[k - 1][1]))  # step: flat until the next removal
            path.append(xy(when, pct))
        if len(path) > 1:
            draw.line(path, fill=colour, width=3)
        ly = top + 16 * n
        draw.rectangle([right + 14, ly + 2, right + 26, ly + 12], fill=colour)
        draw.text((right + 32, ly), f"{platform} {points[-1][1]:.0f}%", fill=(0, 0, 0), font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def render_html(report: AuditReport, tz: ZoneInfo, registry: Registry) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape  # only the HTML report renders

    templates = Path(__file__).resolve().parent.parent / "templates"
    env = Environment(loader=FileSystemLoader(templates), autoescape=select_autoescape(["j2", "html"]))
    template = env.get_template("audit_report.html.j2")
    chart = (
        base64.b64encode(chart_png(report.curves, registry=registry)).decode("ascii") if report.curves else ""
    )
    return template.render(
        report=report,
        columns=_MD_COLUMNS,
        local=lambda v: _local(v, tz),
        hours=_fmt_hours,
        label=_group_label,
        tz=str(tz),
        chart=chart,
    )


def render(report: AuditReport, fmt: str, tz: ZoneInfo, registry: Registry) -> str:
    if fmt == "json":
        return render_json(report, tz)
    if fmt == "md":
        return render_markdown(report, tz)
    if fmt == "html":
        return render_html(report, tz, registry)
    raise UsageError(f"unknown report format {fmt!r}; use one of: {', '.join(FORMATS)}")
