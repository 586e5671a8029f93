"""Small helpers every export writer shares: WIB formatting, hashing (platform names come from the registry).

Times are stored in UTC (``storage.models.UTCDateTime``); people read WIB. ``Settings.timezone``
(``TERTIB_TIMEZONE``, default ``Asia/Jakarta``) picks the zone; every writer goes through :func:`to_local`
so that one setting changes all of them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from crawler.errors import UsageError

DEFAULT_TZ = "Asia/Jakarta"


def zone(name: str = DEFAULT_TZ) -> ZoneInfo:
    return ZoneInfo(name)


def to_local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    return None if value is None else value.astimezone(tz)


def iso_local(value: datetime | None, tz: ZoneInfo) -> str:
    """ISO 8601 with the zone offset, seconds precision: ``2026-03-05T14:03:00+07:00``."""
    local = to_local(value, tz)
    return "" if local is None else local.replace(microsecond=0).isoformat()


def human_local(value: datetime | None, tz: ZoneInfo, label: str = "WIB") -> str:
    local = to_local(value, tz)
    return "" if local is None else local.strftime(f"%Y-%m-%d %H:%M:%S {label}")


def parse_time(text: str, tz: ZoneInfo) -> datetime:
    """An ISO date or date-time from the command line; without an offset it is local (WIB) time."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"not an ISO date/time: {text!r} (e.g. 2026-03-05T14:00 or 2026-03-05)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def wib_offset_label(tz: ZoneInfo) -> str:
    """``WIB`` for Asia/Jakarta; otherwise the UTC offset (``UTC+08:00``)."""
    if tz.key == DEFAULT_TZ:
        return "WIB"
    offset = datetime(2026, 1, 1, tzinfo=tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
