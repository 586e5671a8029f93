"""Reliability on purpose: kill -9 at seeded random points, signals, dead schedulers, full and read-only
disks.

Disks: the tests mount a small ``tmpfs`` (full disk) and a read-only bind mount of a populated data dir,
which needs root and ``CAP_SYS_ADMIN`` (checked with ``id -u`` semantics: ``os.geteuid() == 0`` and a
trial mount). Where mounts are impossible those cases skip and say so; the fault-injected writer test
(ENOSPC raised inside the evidence writer and the database commit) always runs and covers the same
promise without a mount: a failed write leaves nothing half-written.

Tamper classes are in ``tests/test_tamper.py``, the bad-input table in ``tests/test_bad_inputs.py``, input
bounds in ``tests/test_input_bounds.py`` and ``tests/test_fuzz.py``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from test_bad_inputs import assert_one_clean_line, run_cli
from test_tamper import build_store

from crawler import cli_common
from crawler.evidence.verify import verify
from sandbox.catalog import generate
from sandbox.server import SandboxServer
from sandbox.state import SandboxState
from storage.db import Database
from storage.models import JobRun, SweepRun
from storage.processes import alive, hostname

ROOT = Path(__file__).resolve().parents[1]
SEED = 19
KILL_POINTS = 3  # seeded random moments per run of the suite


def sweep_args(data: Path, url: str, terms: Path, pages: int = 5) -> list[str]:
    return [sys.executable, "-m", "crawler.cli", "--data-dir", str(data), "sweep", "--sandbox", url,
            "-p", "tokopedia", "-p", "blibli", "-p", "lazada", "--terms", str(terms),
            "--max-pages", str(pages), "--no-progress", "--no-screenshots"]  # fmt: skip


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERTIB_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="module")
def slow_sandbox() -> Iterator[str]:
    """A sandbox answering after 1 s (a slow marketplace), so a sweep runs long enough to kill."""
    state = SandboxState(generate(SEED, 600), seed=SEED, latency=1.0)
    with SandboxServer(state) as url:
        yield url


def runs(data: Path) -> list[SweepRun]:
    db = Database(f"sqlite:///{(data / 'tertib.sqlite3').resolve()}")
    try:
        with db.session() as s:
            return list(s.scalars(select(SweepRun).order_by(SweepRun.id)))
    finally:
        db.dispose()


def wait_for_run(data: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (data / "tertib.sqlite3").exists():
            with contextlib.suppress(Exception):
                if any(r.pid == proc.pid for r in runs(data)):
                    return
        if proc.poll() is not None:
            raise AssertionError(f"sweep ended early: {proc.communicate()}")
        time.sleep(0.1)
    raise AssertionError("the sweep never opened its run")


# -- kill -9 at random points -----------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_kill_9_at_seeded_random_points_leaves_true_bookkeeping(slow_sandbox: str, tmp_path: Path) -> None:
    """Each kill: the next command marks the run interrupted, evidence verifies, the next sweep runs."""
    rng = random.Random(SEED)
    data = tmp_path / "data"
    terms = tmp_path / "terms.txt"
    terms.write_text("jaket\nkaos\nbal korea\ncelana\nkemeja\nthrift\n", encoding="utf-8")
    for point in range(KILL_POINTS):
        delay = rng.uniform(0.2, 5.0)
        proc = subprocess.Popen(sweep_args(data, slow_sandbox, terms), env=child_env(), cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        wait_for_run(data, proc)
        time.sleep(delay)
        proc.kill()  # SIGKILL: no handler runs
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
        killed = runs(data)[-1]
        assert killed.status == "running" and killed.pid == proc.pid, (point, delay)
        # any command's start marks it interrupted (its process is gone)
        status = run_cli(tmp_path, ["--data-dir", str(data), "status"])
        assert status.returncode == 0, status.stderr
        marked = runs(data)[-1]
        assert marked.status == "interrupted", (point, delay, marked.status)
        assert any("process" in m for m in marked.needs_attention)
        report = run_cli(tmp_path, ["--data-dir", str(data), "evidence", "verify", "--all"])
        assert report.returncode == 0, (point, delay, report.stdout.decode()[-3000:])
    # after all that, a (short) sweep runs to the end and everything verifies
    terms.write_text("jaket\n", encoding="utf-8")
    finished = subprocess.run(sweep_args(data, slow_sandbox, terms, pages=1), env=child_env(), cwd=tmp_path,
                              capture_output=True, timeout=600, check=False)  # fmt: skip
    assert finished.returncode in (0, 3), finished.stderr.decode()[-3000:]
    assert runs(data)[-1].status in ("completed", "partial")
    assert not [r for r in runs(data) if r.status == "running"]
    report = run_cli(tmp_path, ["--data-dir", str(data), "evidence", "verify", "--all"])
    assert report.returncode == 0, report.stdout.decode()[-3000:]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "after"),
    [(signal.SIGTERM, 0.0), (signal.SIGTERM, 2.0), (signal.SIGINT, 2.0)],
    ids=["SIGTERM-during-set-up", "SIGTERM-mid-crawl", "SIGINT-mid-crawl"],
)
def test_a_signal_stops_a_sweep_within_seconds_recorded_interrupted(
    sig: signal.Signals, after: float, slow_sandbox: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    terms = tmp_path / "terms.txt"
    terms.write_text("jaket\nkaos\nbal korea\ncelana\n", encoding="utf-8")
    proc = subprocess.Popen(sweep_args(data, slow_sandbox, terms), env=child_env(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    wait_for_run(data, proc)
    time.sleep(after)
    sent = time.monotonic()
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    stopped_after = time.monotonic() - sent
    # the design bound is 4 s (crawler.sweep.STOP_GRACE); the assertion leaves room for a loaded machine
    assert stopped_after < 15, stopped_after
    assert proc.returncode == 128 + sig, err.decode()[-2000:]
    assert b"Traceback" not in err
    run = runs(data)[-1]
    assert run.status == "interrupted" and run.ended_at is not None, run.status


# -- the scheduler killed with -9 ---------------------------------------------------------------------


def _job_runs() -> list[JobRun]:
    with cli_common.database().session() as session:
        return list(session.scalars(select(JobRun).order_by(JobRun.id)))


@pytest.mark.integration
def test_scheduler_killed_with_9_never_leaves_two_runs_of_one_job(tmp_path: Path) -> None:
    from test_scheduler_service import _start_service

    proc = _start_service(tmp_path, 120)  # the job's child sleeps 2 minutes
    (running,) = [r for r in _job_runs() if r.status == "running"]
    child_pid = int((tmp_path / "child.pid").read_text())
    assert running.pid == child_pid and running.holder
    proc.kill()  # kill -9 the scheduler: its child (own session) keeps running
    proc.communicate(timeout=30)  # reaps it and closes its pipes
    os.kill(child_pid, 0)  # still alive: an orphan
    # a new scheduler settles the orphan before anything else: killed, recorded interrupted
    from test_scheduler_service import service

    svc = service()
    svc.open()  # takes the dead scheduler's service lease at once (its holder is gone), not after expiry
    try:
        assert alive(child_pid, hostname(), None) is False  # killed (a zombie until init reaps it)
        (settled,) = [r for r in _job_runs() if r.id == running.id]
        assert settled.status == "interrupted" and "was killed" in settled.stats_line
        assert not [r for r in _job_runs() if r.status == "running"]
    finally:
        svc.close()


@pytest.mark.integration
def test_a_scheduled_child_stops_when_its_scheduler_dies(tmp_path: Path) -> None:
    """``TERTIB_PARENT_PID``: the child watches its parent and stops itself (another host's children too)."""
    port_holder = tmp_path / "child.pid"
    script = (
        "import os, subprocess, sys\n"
        "env = dict(os.environ, TERTIB_PARENT_PID=str(os.getpid()))\n"
        "p = subprocess.Popen([sys.executable, '-m', 'crawler.cli', 'sandbox', 'serve', '--port', '0', "
        "'--size', '5'], env=env, start_new_session=True)\n"
        f"open({str(port_holder)!r}, 'w').write(str(p.pid))\n"
        "p.wait()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], env=child_env(), cwd=ROOT)
    deadline = time.monotonic() + 30
    while not port_holder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(port_holder.read_text())
    time.sleep(1.0)
    parent.kill()
    parent.wait(timeout=10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if alive(child, hostname(), None) is not True:  # gone, or a zombie waiting for init
            return
        time.sleep(0.2)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the orphaned child kept running after its parent died")


def test_stale_export_staging_is_cleaned(tmp_path: Path) -> None:
    from crawler.exports.service import STAGING_PREFIX, clean_stale_staging
    from storage.processes import hostname

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{STAGING_PREFIX}{hostname()}@{dead.pid}@1.00@abc"
    live = tmp_path / f"{STAGING_PREFIX}{hostname()}@{os.getpid()}@@xyz"
    other_host = tmp_path / f"{STAGING_PREFIX}elsewhere@{dead.pid}@1.00@def"
    for d in (stale, live, other_host):
        (d / "evidence").mkdir(parents=True)
    assert clean_stale_staging(tmp_path) == [stale]
    assert live.is_dir() and other_host.is_dir() and not stale.exists()


# -- full and read-only disks -----------------------------------------------------------------------


def _can_mount() -> str | None:
    """None when tmpfs and bind mounts work here, else why not."""
    if os.geteuid() != 0:
        return "not root (id -u != 0): cannot mount a tmpfs"
    probe = Path("/tmp") / f"tertib-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                              capture_output=True, check=False)  # fmt: skip
        if done.returncode != 0:
            return f"mount refused: {done.stderr.decode().strip()}"
        subprocess.run(["umount", str(probe)], check=False)
        return None
    finally:
        probe.rmdir()


MOUNT_SKIP = _can_mount()


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only_view(source: Path, target: Path) -> Iterator[Path]:
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _fill(path: Path) -> None:
    """Fill the file system to the last byte (big blocks, then small ones)."""
    for name, block in (("filler", 1 << 20), ("filler-small", 4096), ("filler-tiny", 64)):
        with contextlib.suppress(OSError), (path / name).open("wb") as handle:
            while True:
                handle.write(b"\0" * block)
                handle.flush()


@pytest.mark.skipif(MOUNT_SKIP is not None, reason=f"full-disk test needs a tmpfs: {MOUNT_SKIP}")
def test_full_disk_every_write_fails_cleanly_and_nothing_is_lost(tmp_path: Path) -> None:
    mount = tmp_path / "disk"
    with tmpfs(mount, "24m"):
        st = build_store(mount)  # data dir, captures, a batch: all on the small disk
        data = st.settings.data_dir
        st.db.dispose()
        _fill(mount)
        writes = [
            ["terms", "add", "bal import baru", "--category", "standard", "--strength", "S"],
            ["review", "approve", "tokopedia:1003", "--by", "Siti"],
            ["export", "--batch-name", "penuh", "--out", str(mount / "out")],
            ["evidence", "bundle", "--capture", str(st.captures[0]), "--out", str(mount / "b.wacz")],
            ["users", "add", "budi", "--role", "analyst", "--password-stdin"],
            ["sandbox", "catalog", "--size", "3000", "--out", str(mount / "cat.jsonl")],
        ]
        for argv in writes:
            proc = run_cli(tmp_path, ["--data-dir", str(data), *argv], stdin=b"sandi-rahasia-1\n")
            assert_one_clean_line(proc, " ".join(argv[:2]))
        assert not list(mount.rglob("*.tmp")) and not (mount / "b.wacz").exists()
        for filler in mount.glob("filler*"):
            filler.unlink()
        # nothing was lost or half-written: the store verifies exactly as before
        report = run_cli(tmp_path, ["--data-dir", str(data), "evidence", "verify", "--all"])
        assert report.returncode == 0, report.stdout.decode()[-3000:]


@pytest.mark.skipif(MOUNT_SKIP is not None, reason=f"read-only test needs a bind mount: {MOUNT_SKIP}")
def test_read_only_data_dir_still_scores_shows_status_and_verifies(tmp_path: Path) -> None:
    st = build_store(tmp_path)
    st.db.dispose()
    data = st.settings.data_dir
    with read_only_view(data, tmp_path / "ro") as ro:
        for argv in (["score"], ["status"], ["evidence", "verify", "--all"],
                     ["export", "verify", str(st.batch_dir)]):  # fmt: skip
            proc = run_cli(tmp_path, ["--data-dir", str(ro), *argv], stdin=b"bal korea isi 300 pcs\n")
            assert proc.returncode == 0, (argv, proc.stderr.decode()[-2000:])
            assert b"Traceback" not in proc.stderr
        proc = run_cli(tmp_path, ["--data-dir", str(ro), "review", "approve", "tokopedia:1003", "--by", "x"])
        line = assert_one_clean_line(proc, "review approve on a read-only data dir")
        assert "read-only" in line


def test_fault_injected_full_disk_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a mount: ENOSPC inside the WARC append, then inside the commit; the store stays whole."""
    from test_evidence_support import record_sample

    from crawler.evidence import warc
    from crawler.evidence.capture import EvidenceRecorder

    st = build_store(tmp_path, n=2, batch_of=1)
    before = verify(st.db, st.settings, all=True, record=False)
    assert before.ok
    real_append = warc.WarcFileWriter.append

    def full_append(self, members):  # type: ignore[no-untyped-def]
        real_append(self, members)  # the bytes land, then the disk fills before the commit
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(warc.WarcFileWriter, "append", full_append)
    with EvidenceRecorder(st.settings, st.db) as recorder, pytest.raises(OSError):
        record_sample(recorder, 7)
    monkeypatch.setattr(warc.WarcFileWriter, "append", real_append)
    with EvidenceRecorder(st.settings, st.db) as recorder:  # the next writer recovers the torn tail
        record_sample(recorder, 8)
    after = verify(st.db, st.settings, all=True, record=False)
    assert after.ok, [str(p) for p in after.problems]
    assert after.captures == before.captures + 1
