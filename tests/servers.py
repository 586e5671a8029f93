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


class CephS3Server:
    """A one-machine Ceph cluster serving S3 on loopback: one monitor, one memstore OSD, one radosgw.

    Debian's ``ceph-mon``, ``ceph-osd`` and ``radosgw`` (installed by ``scripts/bootstrap.sh``), with
    cephx off and msgr2 in ``crc`` mode (the secure mode's handshake failed on loopback), pools of size
    one and 8 placement groups. Objects live in the OSD's memory (memstore), everything else in a
    temporary directory. radosgw supports versioning and Object Lock (COMPLIANCE and GOVERNANCE), which
    is what the evidence tests need. Starting takes ~15 s (most of it radosgw creating its pools).
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tertib-ceph-"))
        self.conf = self.root / "ceph.conf"
        self.access_key = "TERTIB" + secrets.token_hex(7).upper()
        self.secret_key = secrets.token_hex(20)
        self.port = 0
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def _spawn(self, name: str, *args: str) -> None:
        log = (self.root / "log" / f"{name}.out").open("wb")
        self._procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.root))

    def start(self) -> CephS3Server:
        for tool in (
            "ceph-mon",
            "ceph-osd",
            "radosgw",
            "radosgw-admin",
            "ceph",
            "monmaptool",
            "ceph-authtool",
        ):
            if shutil.which(tool) is None:
                raise RuntimeError(
                    f"{tool} not found: run scripts/bootstrap.sh (installs Debian's ceph packages)"
                )
        import uuid

        fsid = str(uuid.uuid4())
        mon_port, self.port = free_port(), free_port()
        d = self.root
        for sub in ("run", "log", "mon/mon.a", "osd/osd.0", "rgw"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"""[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
mon initial members = a
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms cluster mode = crc
ms mon service mode = crc
ms service mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = {d}/run
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
pid file = {d}/run/$name.pid
keyring = {d}/keyring
mon data = {d}/mon/$name
osd data = {d}/osd/$name
osd objectstore = memstore
memstore device bytes = 2147483648
rgw data = {d}/rgw
rgw enable ops log = false
"""
        )
        try:
            self._bootstrap(fsid, mon_port)
        except BaseException:
            self.stop()
            raise
        return self

    def _bootstrap(self, fsid: str, mon_port: int) -> None:
        d = self.root
        conf = ["-c", str(self.conf)]
        self._run("ceph-authtool", "--create-keyring", str(d / "keyring"), "--gen-key", "-n", "mon.",
                  "--cap", "mon", "allow *")  # fmt: skip
        self._run("monmaptool", "--create", "--add", "a", f"v2:127.0.0.1:{mon_port}", "--fsid", fsid,
                  str(d / "monmap"))  # fmt: skip
        self._run("ceph-mon", *conf, "--mkfs", "-i", "a", "--monmap", str(d / "monmap"), "--keyring",
                  str(d / "keyring"))  # fmt: skip
        self._spawn("mon", "ceph-mon", *conf, "-f", "-i", "a")
        osd_id = self._run("ceph", *conf, "--connect-timeout", "60", "osd", "create").strip()
        self._run("ceph-osd", *conf, "-i", osd_id, "--mkfs")
        self._spawn("osd", "ceph-osd", *conf, "-f", "-i", osd_id)
        self._spawn("rgw", "radosgw", *conf, "-f", "-n", "client.rgw",
                    "--rgw-frontends", f"beast endpoint=127.0.0.1:{self.port}")  # fmt: skip
        self._wait_http(timeout=180)
        self._run("radosgw-admin", *conf, "user", "create", "--uid=tertib", "--display-name=tertib",
                  f"--access-key={self.access_key}", f"--secret={self.secret_key}")  # fmt: skip

    def _wait_http(self, timeout: float) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a Ceph daemon exited early; logs in {self.root / 'log'}")
            try:
                urllib.request.urlopen(self.endpoint, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # radosgw answers (403 for an anonymous request): it is up
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"radosgw did not answer within {timeout:.0f} s; logs in {self.root / 'log'}")

    def stop(self) -> None:
        # a throwaway cluster with its objects in memory: nothing to flush, so no graceful shutdown
        for proc in reversed(self._procs):
            proc.kill()
        for proc in reversed(self._procs):
            proc.wait()
        self._procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def client(self, secret: str | None = None) -> object:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret or self.secret_key,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def env(self) -> dict[str, str]:
        """The AWS_* variables a tertib process needs to use this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }
