"""One settings object for the whole installation.

Precedence, highest first: environment variables ``TERTIB_*`` → ``tertib.toml`` (the file named by
``TERTIB_CONFIG``, else ``./tertib.toml``) → the defaults below.

Settings that matter:

- ``TERTIB_DATA_DIR`` (``data_dir``): where the database, WARCs, blobs and keys live (``./tertib-data``).
- ``TERTIB_DATABASE_URL`` (``database_url``): SQLAlchemy URL; default SQLite in the data dir (WAL, FKs on).
- ``TERTIB_CHROMIUM`` (``chromium``): path to Debian's Chromium; default: auto-detect.
- ``TERTIB_SANDBOX_URL`` (``sandbox_url``): when set, every platform is reached under this root
  (``{sandbox_url}/{platform-key}``) instead of its real base URL.
- ``TERTIB_BASE_URL_<KEY>`` (``[base_urls] <key> = ...``): override a single platform host.
- ``TERTIB_PLATFORM_MODULES`` (``platform_modules``): comma-separated modules that each export one site
  profile (the platform registry, :mod:`crawler.registry`; default: the built-in platforms).
- ``TERTIB_THRESHOLD_STRONG|CANDIDATE|WEAK``: scorer verdict thresholds.
- ``TERTIB_MODEL`` (``model``): which learned model scores beside the rules: ``auto`` (the installation's
  active model, else the one packaged with tertib), ``packaged``, ``rules`` (rules alone), or a model file.
- ``TERTIB_RECHECK_DAYS``: comma-separated recheck rounds after the send time (``1,3,7,30``).
- ``TERTIB_DISCOVERY_BACKGROUND_*``: discovery's background crawl (queries, platforms, pages, details, age).
- ``TERTIB_EVIDENCE_URL`` (``evidence_url``): ``s3://bucket/prefix`` keeps screenshots and closed WARC
  segments in S3 (endpoint, region, credentials from ``AWS_*``); empty (default): the data dir.
  ``TERTIB_EVIDENCE_OBJECT_LOCK`` (``auto``/``required``/``off``) and ``TERTIB_EVIDENCE_RETENTION_DAYS``
  (1825) set COMPLIANCE retention on buckets with Object Lock.
- ``TERTIB_PROXIES`` (``proxies = [...]``): proxies for every platform, comma-separated
  (``http://``, ``https://``, ``socks5://``, with ``user:password@``); ``TERTIB_PROXIES_<PLATFORM>``
  (``[proxies_by_platform] <platform> = [...]``) for one platform; ``TERTIB_PROXIES_FILE``: a file of one
  proxy per line (``URL`` or ``PLATFORM URL``, ``#`` comments). ``TERTIB_PROXY_ROTATION``: ``request``
  (default) or ``sticky``; ``TERTIB_PROXY_COOLDOWN`` seconds, ``TERTIB_PROXY_MAX_FAILURES``. See
  ``crawler/proxies.py``.

Add a setting by adding a field to :class:`Settings` with a default; ``load_settings`` maps
``TERTIB_<FIELD>`` and the same key in the TOML file onto it automatically.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.errors import ConfigError
from crawler.registry import DEFAULT_PLATFORM_MODULES, Registry, load_registry

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
# every headless Chromium tertib starts (crawls, screenshots, browser logins): stack-notes.md
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def check_http_url(url: str, what: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host; else a :class:`ConfigError` naming it
    (``--sandbox ftp://…`` or ``not-a-url`` must fail at once, not hang a crawl)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigError(f"{what} {url!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} {url!r} must be an http:// or https:// URL with a host")
    if port == 0:
        raise ConfigError(f"{what} {url!r} has port 0")
    return url.strip()


def sandbox_base_urls(root: str, hosts: Iterable[str]) -> dict[str, str]:
    root = root.rstrip("/")
    return {key: f"{root}/{key}" for key in hosts}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("tertib-data")
    database_url: str = ""
    chromium: str = ""
    sandbox_url: str = ""
    # the platform registry (crawler.registry): modules exporting one SiteProfile each
    platform_modules: tuple[str, ...] = DEFAULT_PLATFORM_MODULES
    # host key -> base URL; a key missing here is the sandbox's ``{sandbox_url}/{key}`` or the real URL
    base_urls: Mapping[str, str] = field(default_factory=dict)
    threshold_strong: float = 0.85
    threshold_candidate: float = 0.6
    threshold_weak: float = 0.3
    model: str = "auto"  # crawler/terms/model.py: auto / packaged / rules / a model file
    recheck_days: tuple[int, ...] = (1, 3, 7, 30)
    timezone: str = "Asia/Jakarta"
    warc_max_bytes: int = 1_000_000_000
    # evidence store (storage/evidence_store.py): "" = local disk; s3://bucket/prefix = S3 (AWS_* settings)
    evidence_url: str = ""
    evidence_object_lock: str = "auto"  # auto / required / off
    evidence_retention_days: int = 1825
    actor: str = ""
    log_level: str = "WARNING"
    # takedown letters (crawler/exports/): the requesting unit and the contact line for corrections/appeals
    export_unit: str = ""
    export_contact: str = ""
    # scheduler service (scheduler/): missed-run grace, job timeout, leases, polling, shutdown, workers
    scheduler_misfire_grace: int = 21600
    scheduler_job_timeout: float = 14400.0
    scheduler_lease_seconds: float = 60.0
    scheduler_poll: float = 30.0
    scheduler_stop_timeout: float = 120.0
    scheduler_workers: int = 2
    scheduler_python: str = ""
    # web console (console/): session idle and absolute timeouts; sign-in attempts before back-off per
    # account or device and per client address, the first back-off and its cap (seconds)
    console_idle_minutes: int = 30
    console_session_hours: int = 12
    console_login_free: int = 5
    console_client_free: int = 20
    console_login_backoff: float = 15.0
    console_login_backoff_max: float = 900.0
    # emerging-term discovery (crawler/terms/): the background crawl of ordinary clothing listings that
    # candidates are contrasted with — generic queries, platforms (HTTP search), pages per query, listing
    # pages opened per query and platform (descriptions), and the age after which it is crawled again
    discovery_background_queries: str = (
        "kemeja,kaos,jaket,hoodie,celana,dress,sweater,rok,blazer,cardigan,baju,outer"
    )
    discovery_background_platforms: str = ""  # empty: every registered platform with a plain-HTTP search
    discovery_background_pages: int = 2
    discovery_background_details: int = 24
    discovery_background_max_age_days: float = 7.0
    discovery_background_min_docs: int = 150
    # after discovery, the best proposals not yet probed are searched once on these platforms (empty: every
    # registered plain-HTTP platform whose search reports refused keywords): a refusal is a sign of the trade
    discovery_probe_platforms: str = ""
    discovery_probe_top: int = 25
    # 1: a sweep's discovery follow-up crawls the background when it is missing or stale and probes new
    # proposals (subprocesses); 0: it never crawls (offline installs; the test suite, except discovery's own)
    discovery_crawls: int = 1
    # egress proxies (crawler/proxies.py): none configured = direct, as before
    proxies: tuple[str, ...] = ()
    proxies_by_platform: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    proxies_file: str = ""
    proxy_rotation: str = "request"
    proxy_cooldown: float = 60.0
    proxy_max_failures: int = 3

    # -- derived paths -------------------------------------------------------------------------
    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'tertib.sqlite3').resolve()}"

    @property
    def warc_dir(self) -> Path:
        return self.data_dir / "warc"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def browser_profiles_dir(self) -> Path:
        return self.data_dir / "browser-profiles"

    def browser_profile_dir(self, platform: str) -> Path:
        """Where ``tertib browser login PLATFORM`` saves the platform's logged-in browser profile."""
        return self.browser_profiles_dir / platform

    def saved_browser_profiles(self) -> dict[str, Path]:
        """Platforms with a saved browser profile (a directory Chromium has written to)."""
        root = self.browser_profiles_dir
        if not root.is_dir():
            return {}
        return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and any(p.iterdir())}

    def chromium_path(self) -> str | None:
        """The configured Chromium, or the first one found on this machine, or None."""
        if self.chromium:
            return self.chromium if Path(self.chromium).exists() else None
        for candidate in CHROMIUM_CANDIDATES:
            if Path(candidate).exists():
                return candidate
        found = shutil.which("chromium")
        return found

    @property
    def registry(self) -> Registry:
        """The platforms of this installation (``platform_modules``; loaded once per module list)."""
        return load_registry(self.platform_modules)

    def base_url(self, key: str) -> str:
        url = self.base_urls.get(key)
        if url is None:
            real = self.registry.real_base_urls
            if key not in real:
                raise ConfigError(f"unknown host key {key!r}; known: {', '.join(sorted(real))}")
            url = f"{self.sandbox_url.rstrip('/')}/{key}" if self.sandbox_url else real[key]
        return url.rstrip("/")

    def with_sandbox(self, root: str) -> Settings:
        hosts = self.registry.real_base_urls
        return dataclasses.replace(self, sandbox_url=root, base_urls=sandbox_base_urls(root, hosts))

    def actor_name(self) -> str:
        return self.actor or os.environ.get("USER") or "tertib"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    default = _FIELDS[name].default
    try:
        if name == "data_dir":
            return Path(value).expanduser()
        if name == "recheck_days":
            if isinstance(value, str):
                value = [v for v in value.replace(" ", "").split(",") if v]
            days = tuple(int(v) for v in value)
            if not days or any(d <= 0 for d in days):
                raise ValueError
            return days
        if name == "platform_modules":
            if isinstance(value, str):
                value = [v for v in value.replace(" ", "").split(",") if v]
            modules = tuple(str(v) for v in value)
            if not modules:
                raise ValueError
            return modules
        if name == "sandbox_url":
            return check_http_url(str(value), "sandbox URL") if value else ""
        if name == "base_urls":
            if not isinstance(value, Mapping):
                raise ValueError
            return {str(k): str(v) for k, v in value.items()}
        if name == "proxies":
            return _proxy_list(value)
        if name == "proxies_by_platform":
            if not isinstance(value, Mapping):
                raise ValueError
            return {str(k).lower(): _proxy_list(v) for k, v in value.items()}
        if isinstance(default, float):
            return float(value)
        if isinstance(default, int) and not isinstance(default, bool):
            return int(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r} has an unusable value: {value!r}") from None


def _proxy_list(value: Any) -> tuple[str, ...]:
    """``"a, b"``, ``"a b"`` or ``["a", "b"]`` → ``("a", "b")`` (each validated in crawler.proxies)."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list | tuple):
        raise ValueError
    return tuple(str(v).strip() for v in value if str(v).strip())


def load_settings(
    env: Mapping[str, str] | None = None, config_file: Path | None = None, **overrides: Any
) -> Settings:
    """Build settings from defaults, then the TOML file, then the environment, then ``overrides``."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}

    path = config_file or Path(env.get("TERTIB_CONFIG", "tertib.toml"))
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path} is not UTF-8 text (binary?)") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} is not a TOML table")
        section = data.get("tertib", data)
        if not isinstance(section, dict):
            raise ConfigError(f"[tertib] in {path} must be a table")
        for key, value in section.items():
            if key not in _FIELDS:
                raise ConfigError(f"unknown setting {key!r} in {path}")
            values[key] = _coerce(key, value)
    elif "TERTIB_CONFIG" in env:
        raise ConfigError(f"config file {path} does not exist")

    for name in _FIELDS:
        env_name = f"TERTIB_{name.upper()}"
        if env_name in env and name not in ("base_urls", "proxies_by_platform"):
            values[name] = _coerce(name, env[env_name])
    modules = overrides.get("platform_modules") or values.get("platform_modules") or DEFAULT_PLATFORM_MODULES
    registry = load_registry(_coerce("platform_modules", modules))
    by_platform = dict(values.get("proxies_by_platform", {}))
    for platform in registry.names:  # TERTIB_PROXIES_<PLATFORM>=…: one platform's pool
        env_name = f"TERTIB_PROXIES_{platform.upper()}"
        if env_name in env:
            by_platform[platform] = _proxy_list(env[env_name])
    if by_platform:
        values["proxies_by_platform"] = by_platform

    real = registry.real_base_urls
    sandbox = str(overrides.get("sandbox_url") or values.get("sandbox_url") or "")
    base = sandbox_base_urls(sandbox, real) if sandbox else {**real, **values.get("base_urls", {})}
    for key in real:
        env_name = "TERTIB_BASE_URL_" + key.upper().replace("-", "_")
        if env_name in env:
            base[key] = env[env_name]
    values["base_urls"] = base

    for key, value in overrides.items():
        if value is None or key == "base_urls":
            continue
        if key not in _FIELDS:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _coerce(key, value)
    settings = Settings(**values)
    if not (0 <= settings.threshold_weak <= settings.threshold_candidate <= settings.threshold_strong <= 1):
        raise ConfigError("thresholds must satisfy 0 <= weak <= candidate <= strong <= 1")
    return settings
