"""The platform registry: every platform tertib knows, loaded from a setting (as Scrapy loads
``SPIDER_MODULES``).

``Settings.platform_modules`` (``TERTIB_PLATFORM_MODULES``, comma-separated; default
:data:`DEFAULT_PLATFORM_MODULES`) names modules that each export one ``PROFILE``
(:class:`spiders.base.SiteProfile`): display name, operator of record, base URLs, colour, id scheme,
search and recheck capabilities, parsers. Everything outside ``spiders/`` and ``sandbox/`` asks
``settings.registry`` about platforms and never names one itself.

Add a platform: write its module (``spiders/<name>.py``, see :mod:`spiders.base`) and add it to
:data:`DEFAULT_PLATFORM_MODULES` — or, for a deployment or a test, append it to ``TERTIB_PLATFORM_MODULES``.
This is the only file outside ``spiders/`` and ``sandbox/`` that names platforms.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from crawler.errors import ConfigError, UsageError
from spiders.base import Colour, SiteProfile

DEFAULT_PLATFORM_MODULES: tuple[str, ...] = (
    "spiders.tokopedia",
    "spiders.tiktokshop",
    "spiders.shopee",
    "spiders.lazada",
    "spiders.blibli",
    "spiders.facebook",
    "spiders.instagram",
    "spiders.bukalapak",
)
UNKNOWN_COLOUR: Colour = (120, 120, 120)  # a stored platform whose module is no longer registered

E = TypeVar("E")


def import_exports(
    modules: Iterable[str], attribute: str, kind: type[E], *, label: str, key: Callable[[E], str]
) -> list[tuple[str, E]]:
    """(module name, export) for each of ``modules``, whose ``attribute`` must be a ``kind``, one per ``key``.

    The loader of settings-named modules (platform profiles here, sandbox replica specs in
    :mod:`sandbox.replicas`): a module that cannot be imported, lacks the export or repeats a key is a
    configuration error naming it (``label`` says what was registered: "platform", "sandbox replica").
    """
    found: list[tuple[str, E]] = []
    seen: set[str] = set()
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"{label} module {name!r} cannot be imported: {exc}") from None
        value = getattr(module, attribute, None)
        if not isinstance(value, kind):
            raise ConfigError(
                f"{label} module {name!r} has no {attribute} (a {kind.__module__}.{kind.__qualname__})"
            )
        if key(value) in seen:
            raise ConfigError(f"{label} {key(value)!r} is registered twice ({name})")
        seen.add(key(value))
        found.append((name, value))
    return found


@dataclass(frozen=True)
class Registry:
    """The loaded profiles, in registry order (the order of ``platform_modules``)."""

    profiles: Mapping[str, SiteProfile]

    def __iter__(self) -> Iterator[SiteProfile]:
        return iter(self.profiles.values())

    def __contains__(self, platform: object) -> bool:
        return platform in self.profiles

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.profiles)

    @property
    def search_names(self) -> tuple[str, ...]:
        """Platforms with a keyword search (the default of ``tertib sweep``)."""
        return tuple(name for name, profile in self.profiles.items() if profile.sweepable)

    def get(self, platform: str) -> SiteProfile:
        """The profile for ``platform``; an unknown name is a usage error naming the known ones."""
        try:
            return self.profiles[platform.strip().lower()]
        except KeyError:
            raise UsageError(f"unknown platform {platform!r}; known: {', '.join(self.profiles)}") from None

    def find(self, platform: str) -> SiteProfile | None:
        return self.profiles.get(platform)

    def searchable(self, platform: str) -> SiteProfile:
        """The profile of a platform to sweep; unknown or search-less platforms are usage errors."""
        profile = self.profiles.get(platform.strip().lower())
        if profile is None:
            raise UsageError(f"unknown platform {platform!r}; known: {', '.join(self.search_names)}")
        if not profile.sweepable:
            raise UsageError(f"{profile.platform} has no keyword search ({profile.no_search_reason})")
        return profile

    @property
    def real_base_urls(self) -> dict[str, str]:
        """Host key → real base URL, over every platform."""
        return {key: url for profile in self for key, url in profile.base_urls.items()}

    def display_name(self, platform: str) -> str:
        """How people read the platform's name; a platform no longer registered keeps its stored key."""
        profile = self.profiles.get(platform)
        return profile.display_name if profile else platform.title()

    def colour(self, platform: str) -> Colour:
        profile = self.profiles.get(platform)
        return profile.colour if profile else UNKNOWN_COLOUR


@functools.cache
def load_registry(modules: tuple[str, ...] = DEFAULT_PLATFORM_MODULES) -> Registry:
    """Import ``modules`` and collect their ``PROFILE``s (cached per module list: profiles are immutable).

    A module that cannot be imported, exports no ``SiteProfile``, repeats a platform name or claims a host
    key another platform already has is a configuration error that names it.
    """
    profiles: dict[str, SiteProfile] = {}
    hosts: dict[str, str] = {}
    for name, profile in import_exports(
        modules, "PROFILE", SiteProfile, label="platform", key=lambda p: p.platform
    ):
        if not profile.base_urls:
            raise ConfigError(f"platform {profile.platform!r} ({name}) has no base URL")
        for key in profile.base_urls:
            if key in hosts:
                raise ConfigError(f"host key {key!r} of {profile.platform} is already {hosts[key]}'s")
            hosts[key] = profile.platform
        profiles[profile.platform] = profile
    if not profiles:
        raise ConfigError("no platform modules configured (TERTIB_PLATFORM_MODULES)")
    return Registry(profiles)


def default_registry() -> Registry:
    """The registry of the built-in platforms (tools and tests that have no settings)."""
    return load_registry(DEFAULT_PLATFORM_MODULES)


__all__ = ["DEFAULT_PLATFORM_MODULES", "Registry", "default_registry", "import_exports", "load_registry"]
