"""A small ninth platform, registered from the test suite alone (``tests/test_extra_platform.py``).

``spider.py`` is its site profile (what ``spiders/<name>.py`` would be) and ``replica.py`` its sandbox
replica (what ``sandbox/platforms/<name>.py`` would be). Nothing in ``crawler/``, ``storage/``,
``scheduler/`` or ``sandbox/`` names it: the registry loads it from ``TERTIB_PLATFORM_MODULES`` and the
sandbox from the replica list the test passes.
"""
