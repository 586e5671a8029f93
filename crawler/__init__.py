"""tertib application core: settings, items, pipelines, terms, evidence, exports, audit, CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tertib")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"
