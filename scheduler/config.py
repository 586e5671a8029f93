"""Scheduler settings: grace time, timeouts, leases, polling, the Python that runs job subprocesses.

Each value is read, highest first, from the CLI option of ``tertib scheduler run`` (where there is one),
then a ``scheduler_*`` field of :class:`crawler.config.Settings` (once the core settings carry it, which
also makes it settable in ``tertib.toml``), then the environment variable, then the default:

- ``TERTIB_SCHEDULER_MISFIRE_GRACE`` (seconds, 21600): a run missed by more than this is not started
  late; it is recorded as ``skipped`` ("missed"). Missed runs within it coalesce into one run.
- ``TERTIB_SCHEDULER_JOB_TIMEOUT`` (seconds, 14400): a job's subprocess is killed after this
  (``status="timeout"``).
- ``TERTIB_SCHEDULER_LEASE_SECONDS`` (60): how long a service or job lease lasts without renewal. A
  crashed holder blocks no longer than this; the holders renew every few seconds.
- ``TERTIB_SCHEDULER_POLL`` (30): how often the service re-reads the schedule definitions.
- ``TERTIB_SCHEDULER_STOP_TIMEOUT`` (120): on SIGTERM/SIGINT, how long to wait for running jobs before
  their subprocesses are killed.
- ``TERTIB_SCHEDULER_WORKERS`` (2): how many different jobs may run at the same time (one job never
  overlaps itself).
- ``TERTIB_SCHEDULER_PYTHON`` (the running interpreter): the program that runs ``-m crawler.cli …`` for
  each job, e.g. another virtualenv's python.

To add a setting: add a field with its default to :class:`SchedulerSettings`; :func:`scheduler_settings`
maps ``TERTIB_SCHEDULER_<FIELD>`` and ``Settings.scheduler_<field>`` onto it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crawler.config import ConfigError, Settings


@dataclass(frozen=True)
class SchedulerSettings:
    misfire_grace: int = 6 * 3600
    job_timeout: float = 4 * 3600.0
    lease_seconds: float = 60.0
    poll: float = 30.0
    stop_timeout: float = 120.0
    workers: int = 2
    python: str = sys.executable


_FIELDS = {f.name: f for f in dataclasses.fields(SchedulerSettings)}


def _coerce(name: str, value: Any) -> Any:
    default: Any = _FIELDS[name].default
    try:
        if isinstance(default, str):
            return str(value)
        number = type(default)(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting scheduler_{name} has an unusable value: {value!r}") from None
    if number <= 0:
        raise ConfigError(f"setting scheduler_{name} must be positive, got {value!r}")
    return number


def scheduler_settings(
    settings: Settings | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> SchedulerSettings:
    """Build :class:`SchedulerSettings` from overrides → core settings → environment → defaults."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name in _FIELDS:
        env_value = env.get(f"TERTIB_SCHEDULER_{name.upper()}")
        if env_value:
            values[name] = _coerce(name, env_value)
        core_value = getattr(settings, f"scheduler_{name}", None) if settings is not None else None
        if core_value not in (None, ""):
            values[name] = _coerce(name, core_value)
        if overrides.get(name) is not None:
            values[name] = _coerce(name, overrides[name])
    return SchedulerSettings(**values)
