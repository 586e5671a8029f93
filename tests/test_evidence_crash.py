"""Crash safety: a writer killed mid-capture leaves nothing that looks valid; verify stays clean."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_evidence_support import make_db, make_settings, record_sample
from warcio.checker import Checker

from crawler.evidence import warc
from crawler.evidence.capture import EvidenceRecorder
from crawler.evidence.verify import verify
from storage.models import Capture

pytestmark = pytest.mark.both_backends

CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from test_evidence_support import make_db, make_settings, record_sample
    settings = make_settings(Path(sys.argv[1]))
    db = make_db(settings)
    recorder = EvidenceRecorder = None
    from crawler.evidence.capture import EvidenceRecorder
    recorder = EvidenceRecorder(settings, db)
    if sys.argv[3] == "pause":
        # widen the window between "bytes appended and fsynced" and "row committed" so the parent
        # kills exactly there; the random-time kill covers the rest
        import time
        append = recorder.writer.append
        calls = []
        def slow_append(members):
            appended = append(members)
            calls.append(1)
            if len(calls) > 4:
                print("appended", flush=True)
                time.sleep(30)
            return appended
        recorder.writer.append = slow_append
    for i in range(100000):
        # ~3 MB incompressible "screenshot" so a large share of time is spent writing it
        cid = record_sample(recorder, i, shot=b"\\x89PNG" + os.urandom(3_000_000))
        print("committed", cid, flush=True)
    """
)


class _Cmd:
    def __init__(self, inputs: list[str]) -> None:
        self.inputs, self.verbose = inputs, False


def _kill_mid_capture(root: Path, after: int, delay: float, mode: str = "run") -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(Path(__file__).parent), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    try:
        assert child.stdout is not None
        seen = 0
        deadline = time.monotonic() + 120
        while seen < after and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                raise AssertionError(f"child died: {child.stderr.read() if child.stderr else ''}")
            seen += line.startswith("appended" if mode == "pause" else "committed")
        time.sleep(delay)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("mode", ["run", "pause"])
def test_sigkill_mid_capture_leaves_verify_clean(tmp_path: Path, mode: str) -> None:
    settings = make_settings(tmp_path)
    make_db(settings).dispose()
    # "run": killed at a random point; "pause": killed after a capture's bytes were appended and fsynced
    # but before its row was committed (the dangerous window), so the tail is guaranteed torn
    _kill_mid_capture(
        tmp_path, after=5 if mode == "run" else 1, delay=0.013 if mode == "run" else 0.0, mode=mode
    )
    db = make_db(settings)
    # verify before any repair: committed captures are intact, the torn tail is ignored
    report = verify(db, settings, all=True, record=False)
    assert report.ok, [str(p) for p in report.problems]
    with db.session() as s:
        committed = s.scalar(select(func.count(Capture.id)))
    assert committed >= 4
    # a new recorder repairs the interrupted file; afterwards warcio's checker passes on every file
    with EvidenceRecorder(settings, db) as recorder:
        if mode == "pause":
            assert any("uncommitted bytes" in m for m in recorder.recovered), recorder.recovered
        record_sample(recorder, 999)
    for path in sorted(settings.warc_dir.glob("*.warc.gz")):
        assert Checker(_Cmd([str(path)])).process_all() == 0, path
        assert json.loads(warc.sidecar_path(path).read_text())["closed"] is True
    report = verify(db, settings, all=True)
    assert report.ok and report.captures == committed + 1


def test_torn_tail_is_truncated_to_the_last_committed_capture(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    with EvidenceRecorder(settings, db) as recorder:
        for i in range(2):
            record_sample(recorder, i)
    path = next(settings.warc_dir.glob("*.warc.gz"))
    good = path.read_bytes()
    # simulate a writer that appended half a capture and died before its row was committed
    sidecar = warc.sidecar_path(path)
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "closed": False}))
    path.write_bytes(good + warc.gzip_member(b"WARC/1.1\r\nWARC-Type: response\r\n")[:-7])
    assert verify(db, settings, all=True, record=False).ok
    with EvidenceRecorder(settings, db) as recorder:
        assert any("uncommitted bytes" in m for m in recorder.recovered)
    assert path.read_bytes() == good
    assert Checker(_Cmd([str(path)])).process_all() == 0


def test_live_writer_file_is_not_touched_by_recovery(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    first = EvidenceRecorder(settings, db)
    record_sample(first, 0)
    live = next(settings.warc_dir.glob("*.warc.gz"))
    size = live.stat().st_size
    with live.open("ab") as handle:  # bytes the live writer has appended but not committed yet
        handle.write(b"in-flight")
    second = EvidenceRecorder(settings, db)
    assert second.recovered == []
    assert live.stat().st_size == size + len(b"in-flight")
    second.close()
    first.close()  # closing truncates to its own committed end
    assert live.stat().st_size == size
