"""Throwaway servers for the test suite and benchmarks: PostgreSQL (``initdb`` in a temporary directory).

Each server binds a random free port on 127.0.0.1, keeps every file (data, socket, log) in its own
temporary directory and is stopped and removed by :meth:`stop`. Nothing is installed or configured
system-wide: ``scripts/bootstrap.sh`` installs Debian's ``postgresql`` package, and this module only runs
its binaries.

PostgreSQL refuses to run as root. When the suite runs as root (CI, containers), the server runs as the
``postgres`` system user that Debian's package creates (else ``nobody``) through ``setpriv``, which only
switches the user and group of one child process (no PAM session, no login shell, unlike ``su``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bindir() -> Path:
    """The newest Debian PostgreSQL server binaries, else ``initdb`` on PATH."""
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb) not found: "
        "run scripts/bootstrap.sh (it installs Debian's postgresql)"
    )


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(
        "running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL"
    )


class PostgresServer:
    """A PostgreSQL cluster of our own: superuser ``tertib`` with a random password, scram over TCP.

    ``url(dbname)`` gives a SQLAlchemy URL; :meth:`create_database` clones the template database, which is
    how each test gets a fresh, migrated database in milliseconds.
    """

    USER = "tertib"

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="tertib-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.password = secrets.token_hex(16)
        self.port = 0
        self._prefix: list[str] = []
        self._counter = 0
        self._version = 0
        if os.geteuid() == 0:
            user = _unprivileged_user()
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._prefix = [
                "setpriv",
                f"--reuid={user.pw_uid}",
                f"--regid={user.pw_gid}",
                "--clear-groups",
                "--",
            ]

    # -- life cycle -------------------------------------------------------------------------------
    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._prefix, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C.UTF-8", "TZ": "UTC"},
        )

    def start(self) -> PostgresServer:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._prefix:
            user = _unprivileged_user()
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        done = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        # Durability is not what a test measures: no fsync, no full-page writes.
        options = (
            "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            f"-c unix_socket_directories={self.root} -c max_connections=300 -c shared_buffers=64MB "
            "-c TimeZone=UTC"
        )
        for _attempt in range(5):
            self.port = free_port()
            started = self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                f"{options} -p {self.port}",
                "start",
            )
            if started.returncode == 0:
                return self
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            if "Address already in use" not in log:
                break
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr.strip()} {log[-2000:]}")

    def stop(self) -> None:
        if self.port:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.port = 0
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases --------------------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres", *, password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"host=127.0.0.1 port={self.port} user={self.USER} password={pw} dbname={dbname}"

    def url(self, dbname: str, *, password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql+psycopg://{self.USER}:{pw}@127.0.0.1:{self.port}/{dbname}"

    @property
    def version(self) -> int:
        if not self._version:
            with psycopg.connect(self.dsn(), autocommit=True) as conn:
                self._version = conn.info.server_version
        return self._version

    def admin(self, statement: sql.Composable | str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(statement if isinstance(statement, sql.Composable) else sql.SQL(statement))  # type: ignore[arg-type]

    def create_database(self, template: str | None = None, name: str | None = None) -> str:
        """A new database (a copy of ``template`` when given); returns its name."""
        self._counter += 1
        name = name or f"t{os.getpid()}_{self._counter}"
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            # FILE_COPY (PostgreSQL 15+) copies the files after a checkpoint: ~60 ms against ~130 ms for the
            # default WAL_LOG, which writes every page through the WAL
            strategy = " STRATEGY FILE_COPY" if self.version >= 150000 else ""
            stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}" + strategy).format(
                sql.Identifier(name), sql.Identifier(template)
            )
        for attempt in range(20):
            try:
                self.admin(stmt)
                return name
            except psycopg.errors.ObjectInUse:
                # the template still has a connection closing (another test's pool): wait for it
                if attempt == 19:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    def drop_database(self, name: str) -> None:
        self.admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
