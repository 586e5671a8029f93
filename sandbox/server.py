"""Run the sandbox: in-process in a thread (pytest), or as a subprocess (demo, integration tests).

- ``with SandboxServer(state) as url: ...`` — uvicorn on ``127.0.0.1`` and a free port in a daemon thread;
  ``url`` is ``http://127.0.0.1:PORT`` (use it as ``--sandbox URL`` / ``TERTIB_SANDBOX_URL``).
- ``with SandboxProcess(catalog=path, seed=1) as url: ...`` — ``python -m sandbox.server`` in a child
  process, stopped (terminate, then kill) on exit.
- ``serve(state, host, port)`` — blocking, used by ``tertib sandbox serve``.

The server binds loopback only unless told otherwise; there is no authentication.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx
import uvicorn

from crawler.errors import TertibError
from sandbox.app import create_app
from sandbox.catalog import generate, load_catalog, parse_drift_terms
from sandbox.state import SandboxState


class SandboxStartError(TertibError):
    """The sandbox server did not come up."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SandboxStartError(f"sandbox process exited with code {proc.returncode}")
        try:
            if httpx.get(url + "/_sandbox/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SandboxStartError(f"sandbox at {url} did not answer within {timeout:.0f}s")


def _config(state: SandboxState, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(state), host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )


class SandboxServer:
    """In-process server in a thread: ``with SandboxServer(state) as url``."""

    def __init__(self, state: SandboxState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self._server = uvicorn.Server(_config(state, host, self.port))
        self._thread: threading.Thread | None = None

    def __enter__(self) -> str:
        self._thread = threading.Thread(target=self._server.run, name="sandbox-server", daemon=True)
        self._thread.start()
        _wait_ready(self.url, 15.0)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


class SandboxProcess:
    """``python -m sandbox.server`` in a child process: ``with SandboxProcess(catalog=p) as url``."""

    def __init__(
        self,
        *,
        catalog: str | Path | None = None,
        seed: int = 0,
        size: int = 2000,
        faults: str = "none",
        port: int = 0,
        latency: float = 0.0,
        drift_terms: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "sandbox.server", "--port", str(self.port), "--seed", str(seed)]
        self.args += ["--faults", faults, "--size", str(size), "--latency", str(latency)]
        if drift_terms:
            self.args += ["--drift-terms", drift_terms]
        if catalog is not None:
            self.args += ["--catalog", str(catalog)]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(self.args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_ready(self.url, 30.0, self.proc)
        except SandboxStartError:
            self.__exit__(None, None, None)
            raise
        return self.url

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def build_state(
    catalog: str | Path | None,
    seed: int,
    size: int,
    faults: str,
    latency: float = 0.0,
    drift_terms: str | None = None,
) -> SandboxState:
    drift = parse_drift_terms(drift_terms) if drift_terms else None
    listings = load_catalog(catalog) if catalog else generate(seed, size, drift_terms=drift)
    return SandboxState(listings, seed=seed, faults=faults, latency=latency)


def serve(state: SandboxState, host: str = "127.0.0.1", port: int = 8800) -> None:
    """Blocking: run until interrupted."""
    uvicorn.Server(_config(state, host, port)).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.server", description="Run the sandbox server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--catalog", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--faults", default="none")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each replica answer")
    parser.add_argument("--drift-terms", default=None, help="comma-separated drift words (generated catalog)")
    args = parser.parse_args(argv)
    try:
        state = build_state(args.catalog, args.seed, args.size, args.faults, args.latency, args.drift_terms)
    except TertibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    serve(state, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
