"""Errors a user can cause and fix. The CLI prints their message as one line and exits non-zero."""

from __future__ import annotations


class TertibError(Exception):
    """Base for user-facing errors: bad input, missing data, refused operations."""

    exit_code = 1


class UsageError(TertibError):
    """Wrong arguments or a request that makes no sense (exit code 2, like argument errors)."""

    exit_code = 2


class NotFound(TertibError):
    """A named object (term, batch, capture, schedule …) does not exist."""


class ParseError(TertibError):
    """A response or file could not be read as the expected shape."""


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names it (exit code 2)."""
