"""``tertib serve`` (the web console on uvicorn) and ``tertib users`` (console accounts).

``serve`` binds 127.0.0.1 by default; put a TLS proxy in front (and pass ``--secure-cookies``) before
exposing it. Account changes are custody-logged with the OS user (``Settings.actor_name()``) as the actor.
Passwords come from a hidden prompt, or one line on stdin with ``--password-stdin`` (scripts, tests).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from crawler import cli_common as common
from crawler.errors import UsageError
from crawler.web import auth
from crawler.web.i18n import wib


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8080,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark the session cookie Secure (behind HTTPS).")
    ] = False,
) -> None:
    """Run the web console (FastAPI on uvicorn).

    Example: tertib serve --host 127.0.0.1 --port 8080
    """
    import uvicorn

    from crawler.web.app import create_app

    settings, db = common.settings(), common.database()
    app = create_app(settings, db, secure_cookies=secure_cookies)
    common.err_console.print(f"tertib console on http://{host}:{port}/ (Ctrl-C stops)", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False)


users_app = typer.Typer(no_args_is_help=True, help="Console accounts and roles: add, list, disable, token.")


def _password(password_stdin: bool) -> str:
    if password_stdin:
        binary = getattr(sys.stdin, "buffer", None)  # a text stream without bytes (tests) is read as text
        raw = binary.readline() if binary is not None else sys.stdin.readline()
        if not raw:
            raise UsageError("--password-stdin: no password on stdin")
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise UsageError("--password-stdin: the password is not UTF-8 text") from None
        line = line.rstrip("\r\n")
        if not line.isprintable():
            raise UsageError("--password-stdin: the password holds control characters (binary input?)")
        return line
    first = typer.prompt("Password", hide_input=True)
    second = typer.prompt("Repeat password", hide_input=True)
    if first != second:
        raise UsageError("the passwords differ")
    return str(first)


@users_app.command("add")
def add_command(
    name: Annotated[str, typer.Argument(help="Login name (shown as the actor in the custody log).")],
    role: Annotated[str, typer.Option("--role", help=" | ".join(auth.ROLES))],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from one line of stdin.")
    ] = False,
) -> None:
    """Add a console account.

    Example: tertib users add siti --role analyst
    """
    if role not in auth.ROLES:
        raise UsageError(f"unknown role {role!r}; use one of: {', '.join(auth.ROLES)}")
    password = _password(password_stdin)
    with common.database().session() as session:
        auth.add_user(session, name, role, password, actor=common.settings().actor_name())
    common.console.print(f"added {escape(name)} ({role})")


@users_app.command("list")
def list_command() -> None:
    """Console accounts with role and state.

    Example: tertib users list
    """
    tz = __import__("zoneinfo").ZoneInfo(common.settings().timezone)
    with common.database().session() as session:
        users = auth.list_users(session)
        table = Table("name", "role", "state", "api token", "created", title=f"Console users ({len(users)})")
        for u in users:
            table.add_row(
                escape(u.name),
                u.role,
                "disabled" if u.disabled else "active",
                "yes" if u.api_token_hash else "-",
                wib(u.created_at, tz),
            )
    common.console.print(table)


@users_app.command("disable")
def disable_command(name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Disable an account (ends its sessions and revokes its API token).

    Example: tertib users disable budi
    """
    with common.database().session() as session:
        auth.disable_user(session, name, actor=common.settings().actor_name())
    common.console.print(f"disabled {escape(name)}")


@users_app.command("token")
def token_command(name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Issue an API token (replaces the previous one); shown once, stored hashed.

    Example: tertib users token siti   (then: curl -H "Authorization: Bearer TOKEN" …/api/v1/candidates)
    """
    with common.database().session() as session:
        token = auth.issue_token(session, name, actor=common.settings().actor_name())
    typer.echo(token)
