"""``tertib serve`` (the web console on uvicorn) and ``tertib users`` (console accounts).

``serve`` binds 127.0.0.1 by default; put a TLS proxy in front (and pass ``--secure-cookies`` and
``--trusted-proxy ADDRESS``, so sign-in limits see the real client) before exposing it. It writes an HTTP
access log (JSON lines) to ``<data dir>/logs/console-access.jsonl`` unless ``--access-log`` says
otherwise. Account changes are custody-logged with the OS user (``Settings.actor_name()``) as the actor.
Passwords come from a hidden prompt, or one line on stdin with ``--password-stdin`` (scripts, tests).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from console import auth
from console.asgi import ENV, ServeOptions, access_log_target, configure_access_log
from console.i18n import wib
from console.limiter import parse_networks
from crawler import cli_common as common
from crawler.errors import UsageError


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8080,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark the session cookie Secure (behind HTTPS).")
    ] = False,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="Reverse proxy (IP or CIDR) whose X-Forwarded-For names the client; repeat for several.",
        ),
    ] = None,
    access_log_path: Annotated[
        str,
        typer.Option(
            "--access-log",
            help="HTTP access log (JSON lines): a file, '-' for stderr, 'off'. "
            "Default <data dir>/logs/console-access.jsonl.",
        ),
    ] = "",
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, max=64, help="Worker processes (use the machine's cores)."),
    ] = 1,
) -> None:
    """Run the web console (FastAPI on uvicorn).

    Example: tertib serve --host 127.0.0.1 --port 8080 --workers 2 --trusted-proxy 127.0.0.1
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from console.app import create_app

    settings, db = common.settings(), common.database()
    try:
        parse_networks(trusted_proxy or ())
    except ValueError as exc:
        raise UsageError(f"--trusted-proxy: {exc}") from None
    options = ServeOptions(
        data_dir=str(settings.data_dir.resolve()),
        database_url=settings.database_url,
        secure_cookies=secure_cookies,
        trusted_proxies=tuple(trusted_proxy or ()),
        access_log=access_log_target(access_log_path, settings.data_dir),
    )
    sock = _listening_socket(host, port)
    common.err_console.print(f"tertib console on http://{host}:{port}/ (Ctrl-C stops)", highlight=False)
    quiet = {"log_level": "warning", "access_log": False, "proxy_headers": False}  # our own access log
    if workers == 1:
        app = create_app(settings, db, secure_cookies=secure_cookies, trusted_proxies=options.trusted_proxies)
        configure_access_log(options.access_log)
        uvicorn.Server(uvicorn.Config(app, **quiet)).run(sockets=[sock])  # type: ignore[arg-type]
        return
    db.analyze()  # once, here, not in every worker
    os.environ[ENV] = options.to_env()
    config = uvicorn.Config("console.asgi:app", factory=True, workers=workers, **quiet)  # type: ignore[arg-type]
    Multiprocess(config, sockets=[sock]).run()


def _listening_socket(host: str, port: int) -> socket.socket:
    """The listening socket (shared by ``--workers``), made as TCP explicitly.

    uvicorn's own (``socket.socket(AF_INET)``) has ``proto == 0``, and asyncio sets ``TCP_NODELAY`` only on
    connections whose socket says ``IPPROTO_TCP``: without it every response waited ~40 ms for the
    client's delayed ACK (measured: a static file 44 ms with two workers, 2 ms with one).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


users_app = typer.Typer(
    no_args_is_help=True,
    help="Console accounts and roles: add, list, disable, password, token, sessions, logout.",
)


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
    tz = ZoneInfo(common.settings().timezone)
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
    """Disable an account (ends its sessions at once and revokes its API token).

    Example: tertib users disable budi
    """
    with common.database().session() as session:
        auth.disable_user(session, name, actor=common.settings().actor_name())
    common.console.print(f"disabled {escape(name)}")


@users_app.command("password")
def password_command(
    name: Annotated[str, typer.Argument(help="Login name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from one line of stdin.")
    ] = False,
) -> None:
    """Set a new password (every session of the account ends at once).

    Example: tertib users password siti
    """
    password = _password(password_stdin)
    with common.database().session() as session:
        auth.set_password(session, name, password, actor=common.settings().actor_name())
    common.console.print(f"password changed for {escape(name)}; its sessions ended")


@users_app.command("sessions")
def sessions_command(
    name: Annotated[str | None, typer.Argument(help="Only this login name.")] = None,
) -> None:
    """Open console sessions: who, since when, last request, from where.

    Example: tertib users sessions siti
    """
    tz = ZoneInfo(common.settings().timezone)
    with common.database().session() as session:
        rows = auth.open_sessions(session, name)
        table = Table(
            "user", "signed in", "last request", "ends", "from", title=f"Open sessions ({len(rows)})"
        )
        for row, user_name in rows:
            table.add_row(
                escape(user_name),
                wib(row.created_at, tz),
                wib(row.last_seen_at, tz),
                wib(row.expires_at, tz),
                escape(row.client),
            )
    common.console.print(table)


@users_app.command("logout")
def logout_command(name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """End every console session of an account at once (a lost laptop, a shared screen).

    Example: tertib users logout siti
    """
    with common.database().session() as session:
        ended = auth.logout_everywhere(session, name, actor=common.settings().actor_name())
    common.console.print(f"ended {ended} session(s) of {escape(name)}")


@users_app.command("token")
def token_command(name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Issue an API token (replaces the previous one); shown once, stored hashed.

    Example: tertib users token siti   (then: curl -H "Authorization: Bearer TOKEN" …/api/v1/candidates)
    """
    with common.database().session() as session:
        token = auth.issue_token(session, name, actor=common.settings().actor_name())
    typer.echo(token)
