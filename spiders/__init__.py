"""Platform knowledge: one module per platform, each exposing a :class:`~spiders.base.SiteProfile`.

``PROFILES`` maps the platform name (as in ``crawler.config.PLATFORMS``) to its profile: hosts, page
size, page limit, whether a browser/login is needed, politeness defaults, request builders and the pure
``parse_search``/``parse_detail`` functions. Spiders, the sweep, rechecks and ``tertib parse`` look
platforms up here and nowhere else.

To add a platform: write ``spiders/<name>.py`` (see :mod:`spiders.base` for the helpers and the
profile fields), import its ``PROFILE`` below, and add ``tests/test_parsers_<name>.py``.
"""

from __future__ import annotations

from crawler.errors import UsageError
from spiders import blibli, bukalapak, facebook, instagram, lazada, shopee, tiktokshop, tokopedia
from spiders.base import SiteProfile

PROFILES: dict[str, SiteProfile] = {
    module.PROFILE.platform: module.PROFILE
    for module in (tokopedia, tiktokshop, shopee, lazada, blibli, facebook, instagram, bukalapak)
}


def get_profile(platform: str) -> SiteProfile:
    """The profile for ``platform``; an unknown name is a usage error naming the known ones."""
    try:
        return PROFILES[platform.strip().lower()]
    except KeyError:
        raise UsageError(f"unknown platform {platform!r}; known: {', '.join(PROFILES)}") from None


__all__ = ["PROFILES", "SiteProfile", "get_profile"]
