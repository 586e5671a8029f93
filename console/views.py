"""Presentation helpers that write HTML themselves: signal highlighting and the dashboard's SVG chart.

Both return :class:`markupsafe.Markup`, so everything that came from a platform is escaped here, at the one
place where markup is built by hand (the templates autoescape the rest). Nothing else in the console may
produce ``Markup`` from data (``tests/test_console_security.py`` checks the sources).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape


def highlight(text: str, signals: list[dict[str, Any]]) -> Markup:
    """``text`` as HTML with each signal's span wrapped in ``<mark>`` (positive weight red, negative green).

    Spans index the flattened text (newlines as spaces), as the scorer's explanation does; a signal without
    a usable span is located by its matched words. Overlapping spans keep the first.
    """
    flat = text.replace("\n", " ")
    ranges: list[tuple[int, int, float, str]] = []
    for sig in signals:
        span = sig.get("span") or []
        weight = float(sig.get("weight", 0) or 0)
        term = str(sig.get("term", ""))
        if len(span) == 2 and 0 <= int(span[0]) < int(span[1]) <= len(flat):
            a, b = int(span[0]), int(span[1])
        else:
            needle = str(sig.get("matched") or term)
            a = flat.lower().find(needle.lower()) if needle else -1
            if a < 0:
                continue
            b = a + len(needle)
        ranges.append((a, b, weight, term))
    ranges.sort()
    out: list[str] = []
    pos = 0
    for a, b, weight, term in ranges:
        if a < pos:
            continue
        out.append(str(escape(text[pos:a])))
        cls = "sig-pos" if weight > 0 else "sig-neg"
        out.append(f'<mark class="{cls}" title="{escape(term)} {weight:+.2f}">{escape(text[a:b])}</mark>')
        pos = b
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))


def chart_svg(series: dict[str, list[tuple[datetime, int]]], width: int = 640, height: int = 220) -> Markup:
    """A small step chart (one polyline per platform) as inline SVG; presentation attributes only (CSP)."""
    if not series:
        return Markup("")
    colours = ["#b3261e", "#1f6feb", "#2e7d32", "#8e24aa", "#ef6c00", "#00838f", "#5d4037", "#455a64"]
    times = [at for pts in series.values() for at, _ in pts]
    t0, t1 = min(times), max(times)
    span = max((t1 - t0).total_seconds(), 3600.0)
    top = max(n for pts in series.values() for _, n in pts)
    pad_l, pad_b, pad_t, pad_r = 36, 22, 10, 120

    def x(at: datetime) -> float:
        return pad_l + (width - pad_l - pad_r) * (at - t0).total_seconds() / span

    def y(n: int) -> float:
        return height - pad_b - (height - pad_b - pad_t) * n / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart" role="img">',
        f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_r}" y2="{height - pad_b}" '
        'stroke="#999"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{height - pad_b}" stroke="#999"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end" font-size="10">{top}</text>',
        f'<text x="{pad_l - 4}" y="{height - pad_b}" text-anchor="end" font-size="10">0</text>',
        f'<text x="{pad_l}" y="{height - 6}" font-size="10">{t0:%Y-%m-%d}</text>',
        f'<text x="{width - pad_r}" y="{height - 6}" text-anchor="end" font-size="10">{t1:%Y-%m-%d}</text>',
    ]
    for i, (platform, pts) in enumerate(sorted(series.items())):
        colour = colours[i % len(colours)]
        coords = [f"{x(t0):.1f},{y(0):.1f}"]
        prev = 0
        for at, n in pts:
            coords.append(f"{x(at):.1f},{y(prev):.1f}")
            coords.append(f"{x(at):.1f},{y(n):.1f}")
            prev = n
        coords.append(f"{x(t1):.1f},{y(prev):.1f}")
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(coords)}"/>'
        )
        ly = pad_t + 14 * i + 8
        parts.append(f'<rect x="{width - pad_r + 8}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>')
        parts.append(
            f'<text x="{width - pad_r + 22}" y="{ly + 1}" font-size="11">{escape(platform)} ({prev})</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def json_text(value: Any) -> str:
    """A value as compact JSON *text* (escaped by the template like any other string)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True, slots=True)
class SignalGroup:
    """One term's matches in a listing, however often it matched (the scorer lists each occurrence)."""

    term: str
    role: str
    weight: float  # per occurrence
    count: int
    matched: tuple[str, ...]  # distinct original spellings


# the order a reviewer reads a relisting flag in; JSON objects have no order to rely on (PostgreSQL's jsonb
# sorts keys by length), so the table follows this list and puts unknown keys after it, sorted
RELIST_FIELDS = (
    "rule", "parent_key", "signals", "title_score", "image_distance", "shared_handles", "same_seller",
    "thresholds", "sweep_run_id", "detected_at", "queue", "why",
)  # fmt: skip


def relist_rows(evidence: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The relisting evidence as (field, value) rows in :data:`RELIST_FIELDS` order (``parent_id`` is
    shown as the link above the table, not as a row)."""
    fields = dict(evidence or {})
    fields.pop("parent_id", None)
    known = [(k, fields.pop(k)) for k in RELIST_FIELDS if k in fields]
    return known + sorted(fields.items())


def group_signals(signals: list[dict[str, Any]]) -> list[SignalGroup]:
    """Signals grouped by term, role and weight; strongest (by absolute weight) first."""
    groups: dict[tuple[str, str, float], list[str]] = {}
    for sig in signals:
        if not isinstance(sig, dict):
            continue
        key = (str(sig.get("term", "")), str(sig.get("role", "")), float(sig.get("weight", 0) or 0))
        matched = groups.setdefault(key, [])
        text = str(sig.get("matched") or "")
        matched.append(text)
    out = [
        SignalGroup(term, role, weight, len(found), tuple(dict.fromkeys(m for m in found if m)))
        for (term, role, weight), found in groups.items()
    ]
    out.sort(key=lambda g: (-abs(g.weight), g.term))
    return out


@dataclass(frozen=True, slots=True)
class PlatformHealth:
    platform: str
    counts: dict[str, float]
    attention: tuple[str, ...]

    @property
    def blocked(self) -> int:
        return int(self.counts.get("unobservable", 0) or 0) + int(self.counts.get("query_blocked", 0) or 0)

    @property
    def problems(self) -> bool:
        return bool(self.attention) or bool(self.counts.get("errors") or self.counts.get("item_errors"))


HEALTH_COLUMNS = ("requests", "listings", "candidates", "captures", "blocked", "errors", "duration")


def run_health(
    stats: dict[str, Any] | None, needs_attention: list[Any] | None
) -> tuple[list[PlatformHealth], list[str]]:
    """A sweep run's per-platform counters (``stats["platforms"]``) with each platform's "needs attention"
    messages beside it; messages naming no platform come back separately."""
    per_platform = (stats or {}).get("platforms") or {}
    messages = [m if isinstance(m, str) else json_text(m) for m in needs_attention or []]
    rows: list[PlatformHealth] = []
    claimed: set[int] = set()
    for platform, counts in per_platform.items() if isinstance(per_platform, dict) else ():
        mine = [i for i, m in enumerate(messages) if m.startswith(f"{platform}:")]
        claimed.update(mine)
        rows.append(
            PlatformHealth(
                str(platform),
                dict(counts) if isinstance(counts, dict) else {},
                tuple(messages[i][len(platform) + 1 :].strip() for i in mine),
            )
        )
    rows.sort(key=lambda r: (not r.problems, r.platform))
    return rows, [m for i, m in enumerate(messages) if i not in claimed]
