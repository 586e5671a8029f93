"""The sandbox's replica registry: which replica modules exist, loaded from a setting.

``TERTIB_SANDBOX_REPLICAS`` (comma-separated module names; ``tertib sandbox serve --replica MODULE`` adds
one) or :data:`DEFAULT_REPLICA_MODULES`. Each module exports one ``SPEC``
(:class:`sandbox.spec.ReplicaSpec`). The order is the catalog generator's platform order: changing it
changes which catalog a seed generates.

Add a replica: write ``sandbox/platforms/<name>.py`` with ``SPEC`` and its routes, and add it here (or, for
a test, pass ``load_replicas((*DEFAULT_REPLICA_MODULES, "tests.…"))`` to the catalog and the state).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crawler.registry import import_exports
from sandbox.spec import ReplicaSpec

if TYPE_CHECKING:
    from sandbox.catalog import CatalogListing

DEFAULT_REPLICA_MODULES: tuple[str, ...] = (
    "sandbox.platforms.tokopedia",
    "sandbox.platforms.shopee",
    "sandbox.platforms.lazada",
    "sandbox.platforms.blibli",
    "sandbox.platforms.tiktokshop",
    "sandbox.platforms.facebook",
    "sandbox.platforms.instagram",
    "sandbox.platforms.bukalapak",
)
ENV = "TERTIB_SANDBOX_REPLICAS"


@dataclass(frozen=True)
class Replicas:
    specs: Mapping[str, ReplicaSpec]

    def __iter__(self) -> Iterator[ReplicaSpec]:
        return iter(self.specs.values())

    def __contains__(self, platform: object) -> bool:
        return platform in self.specs

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def get(self, platform: str) -> ReplicaSpec:
        try:
            return self.specs[platform]
        except KeyError:
            raise ValueError(f"no sandbox replica for platform {platform!r}") from None

    @functools.cached_property
    def host_platforms(self) -> dict[str, str]:
        """Host key → platform."""
        return {key: spec.platform for spec in self for key in spec.mounts}

    @functools.cached_property
    def relist_destinations(self) -> tuple[str, ...]:
        return tuple(spec.platform for spec in self if spec.relist_destination)

    def listing_path(self, listing: CatalogListing) -> tuple[str, str]:
        """(host key, path on that host) of the listing's public page, as in docs/contracts.md."""
        return self.get(listing.platform).page_path(listing)


@functools.cache
def load_replicas(modules: tuple[str, ...] = DEFAULT_REPLICA_MODULES) -> Replicas:
    loaded = import_exports(modules, "SPEC", ReplicaSpec, label="sandbox replica", key=lambda s: s.platform)
    specs = {spec.platform: spec for _name, spec in loaded}
    return Replicas(specs)


def configured_modules(extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The modules named by ``TERTIB_SANDBOX_REPLICAS`` (else the defaults), plus ``extra``."""
    named = tuple(m.strip() for m in os.environ.get(ENV, "").split(",") if m.strip())
    return tuple(dict.fromkeys((*(named or DEFAULT_REPLICA_MODULES), *extra)))


def default_replicas() -> Replicas:
    return load_replicas(configured_modules())


__all__ = ["DEFAULT_REPLICA_MODULES", "Replicas", "configured_modules", "default_replicas", "load_replicas"]
