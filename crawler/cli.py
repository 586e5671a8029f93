"""The ``tertib`` command line.

Every command area lives in its own module and is registered here by name in :data:`COMMANDS`, so
one area's changes never touch another's file. Areas load lazily: running ``tertib export`` imports the
export code and nothing of Scrapy or Playwright (:class:`LazyGroup`); ``init`` and ``status`` are the core's
own (:mod:`crawler.core_commands`), loaded the same way. Every registered area is built; a registered module
that fails to import is a packaging bug and raises (tests import every one).

Errors a user can cause (:class:`crawler.errors.TertibError`, bad settings) print one line on stderr
and exit non-zero; argument errors exit 2 (Click's convention). Tracebacks are for bugs only.

To add an area: write ``yourpkg/cli.py`` with a ``typer.Typer()`` (a verb group) or a plain function (a
single verb) and add one line to :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from typer import _click as click  # typer vendors its own click
from typer.core import TyperGroup

from crawler import __version__
from crawler import cli_common as common
from crawler.config import ConfigError
from crawler.errors import TertibError
from crawler.logs import setup_logging

# name, module, attribute (Typer app = verb group, function = single verb), one-line help
COMMANDS: list[tuple[str, str, str, str]] = [
    ("init", "crawler.core_commands", "init", "Create the data dir, migrate, signing keys, seed lexicon."),
    ("status", "crawler.core_commands", "status", "Data dir, database, Chromium, row counts, failing jobs."),
    ("demo", "crawler.demo", "demo_command", "The whole mission offline against the sandbox."),
    ("sandbox", "sandbox.cli", "app", "Replica marketplaces on loopback for the demo and tests."),
    ("terms", "crawler.terms.cli", "app", "Lexicon: list, add, retire, import, export, suggest, approve."),
    ("score", "crawler.terms.cli", "score", "Score titles or listing JSONL from stdin."),
    ("model", "crawler.terms.model_cli", "app", "Detection model: train, eval, list, show, activate."),
    ("sweep", "crawler.sweep", "sweep_command", "Search the platforms for the active terms."),
    ("worker", "crawler.distributed", "worker_command", "Crawl the jobs of distributed sweeps (PostgreSQL)."),
    ("follow", "crawler.follow", "follow_command", "Read the shops of confirmed sellers."),
    ("parse", "spiders.cli", "parse", "Parse a saved platform response into listings (JSONL)."),
    ("calibrate", "crawler.calibrate", "calibrate_command", "Test the parsers on a browser recording."),
    ("browser", "crawler.browser", "app", "Logged-in browser profiles for platforms behind a login."),
    ("evidence", "crawler.evidence.cli", "app", "Evidence: show, verify, bundle (WACZ)."),
    ("review", "crawler.review_cli", "app", "Review queue: list, approve, reject, next."),
    ("export", "crawler.exports.cli", "app", "Takedown batches and per-platform link lists."),
    ("recheck", "crawler.audit.recheck_cli", "recheck", "Recheck reported links (LIVE/REMOVED/HIDDEN/…)."),
    ("audit", "crawler.audit.cli", "app", "Compliance reports over the recheck ledger."),
    ("intel", "crawler.intel.cli", "app", "Dealer networks: ranking and referral dossiers."),
    ("schedule", "scheduler.cli", "app", "Scheduled sweeps, rechecks and verification jobs."),
    ("scheduler", "scheduler.cli", "service_app", "Run the scheduler service."),
    ("serve", "console.cli", "serve", "The web console."),
    ("users", "console.cli", "users_app", "Console accounts and roles."),
]


class LazyGroup(TyperGroup):
    """The root group: every verb is loaded from :data:`COMMANDS` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands) + [name for name, *_ in COMMANDS if name not in self.commands]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in _LAZY:
            command = self.commands[cmd_name] = _load(cmd_name)
        return command


app = typer.Typer(
    name="tertib",
    cls=LazyGroup,
    help="Find, evidence and take down online listings of illegally imported used clothing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tertib {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data directory (env TERTIB_DATA_DIR).")
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging.")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """tertib: sweeps, evidence, takedown link lists and audits for HS 6309 used-clothing listings."""
    setup_logging(verbose)
    common.set_overrides(data_dir=data_dir)


_LAZY = {name: (module, attr, help_text) for name, module, attr, help_text in COMMANDS}


def _load(name: str) -> click.Command:
    """Import one area and turn its Typer app (or single function) into the click command ``name``."""
    module_name, attr, help_text = _LAZY[name]
    target = getattr(importlib.import_module(module_name), attr)
    if isinstance(target, typer.Typer):
        command = typer.main.get_command(target)
        command.help = command.help or help_text
    else:
        holder = typer.Typer(add_completion=False, context_settings={"help_option_names": ["-h", "--help"]})
        holder.command(name, help=target.__doc__ or help_text)(target)
        command = typer.main.get_command(holder)
    command.name = name
    return command


def watch_parent() -> None:
    """A scheduled job (``TERTIB_PARENT_PID`` set by ``scheduler.jobs``) stops itself when the scheduler
    that started it dies: SIGTERM to itself, so a sweep stops as ``interrupted`` within seconds and the
    next scheduler never finds the job still running from a dead one."""
    parent = os.environ.get("TERTIB_PARENT_PID", "")
    if not parent.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="tertib-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one clear line and a non-zero exit for user errors."""
    watch_parent()
    try:
        code = app(args=argv, prog_name="tertib", standalone_mode=False)
        # as in Click's standalone mode: always leave through SystemExit (typer.Exit(n) returns n here)
        raise SystemExit(code if isinstance(code, int) else 0)
    except click.exceptions.NoArgsIsHelpError as exc:  # `tertib export` alone: its help, as before
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.UsageError as exc:  # bad arguments: one line, exit 2 (Click's convention)
        where = exc.ctx.command_path if exc.ctx is not None else "tertib"
        common.fail(f"{exc.format_message()} (see: {where} -h)", exc.exit_code)
    except click.exceptions.ClickException as exc:
        common.fail(exc.format_message(), exc.exit_code)
    except typer.Abort:
        common.fail("interrupted", 130)
    except TertibError as exc:
        common.exit_for(exc)
    except ConfigError as exc:
        common.fail(str(exc), 2)
    except KeyboardInterrupt:
        common.fail("interrupted", 130)
    except BrokenPipeError:
        sys.stderr.close()
        raise SystemExit(1) from None
    except OSError as exc:  # the environment, not a bug: full or read-only disk, permissions, a path
        common.fail(environment_error(exc))
    except Exception as exc:
        message = database_error(exc)
        if message is None:
            raise  # a bug: the traceback is for us
        common.fail(message)


def environment_error(exc: OSError) -> str:
    """One line for an operating-system error a user can fix (disk full, read-only, permissions …)."""
    import errno

    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    if exc.errno == errno.ENOSPC:
        return f"the disk is full{where}: nothing was half-written; free space and run again"
    if exc.errno == errno.EROFS:
        return f"read-only file system{where}: this command needs to write"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied{where}"
    return f"{exc.strerror or exc}{where}"


def database_error(exc: BaseException) -> str | None:
    """One line for a database the user pointed us at that is unusable; None when ``exc`` is not one."""
    try:
        from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(exc, SQLAlchemyError):
        return None
    settings_url = ""
    try:
        settings_url = common.settings().db_url
    except Exception:  # the settings themselves may be what is broken
        settings_url = "the database"
    url = _redact(settings_url)
    if isinstance(exc, NoSuchModuleError | ArgumentError):
        first = str(exc).splitlines()[0][:120]
        return f"TERTIB_DATABASE_URL {url} is not a usable SQLAlchemy URL ({first})"
    if isinstance(exc, DBAPIError):
        detail = str(exc.orig).splitlines()[0][:160] if exc.orig is not None else type(exc).__name__
        if "disk is full" in detail or "disk I/O" in detail:
            return f"the disk is full or failing under {url}: {detail}; nothing was committed"
        if "readonly" in detail or "read-only" in detail:
            return f"the database {url} is read-only: {detail}"
        return f"cannot use the database {url}: {detail}"
    return f"database error ({type(exc).__name__}) with {url}: {str(exc).splitlines()[0][:160]}"


def _redact(url: str) -> str:
    """A database URL without its password."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


if __name__ == "__main__":
    main()
