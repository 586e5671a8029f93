"""Platform knowledge: one module per platform, each exposing a :class:`~spiders.base.SiteProfile`.

Which modules are platforms is a setting (``Settings.platform_modules``, default
``crawler.registry.DEFAULT_PLATFORM_MODULES``); the spiders, the sweep, rechecks and ``tertib parse`` look
platforms up in ``settings.registry`` and nowhere else. :mod:`spiders.sweep` and :mod:`spiders.recheck`
drive any profile.

To add a platform: write ``spiders/<name>.py`` (see :mod:`spiders.base` for the helpers and the profile
fields), register the module, and add ``tests/test_parsers_<name>.py``.
"""
