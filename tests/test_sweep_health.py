"""A sweep that fetched nothing fails; candidates whose evidence could not be taken make it exit non-zero and
show in health; blocked listing pages are reported (their listings were scored on the search result only)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from test_pipelines import counts
from test_reliability import child_env

from crawler import extensions
from storage.db import Database
from storage.models import SweepRun


def test_candidates_without_observable_evidence_are_gaps() -> None:
    assert extensions.evidence_gaps(counts(candidates=5, captures=5)) == 0
    assert extensions.evidence_gaps(counts(candidates=5, captures=3)) == 2  # never committed
    assert extensions.evidence_gaps(counts(candidates=5, captures=5, evidence_unobservable=1)) == 1
    per = {"lazada": counts(requests=4, responses=4, listings=40, candidates=5, captures=4)}
    messages = extensions.health_checks(per, queries=1)
    assert messages == ["lazada: evidence could not be taken for 1 candidate(s)"]


def test_blocked_listing_pages_are_reported() -> None:
    per = {"blibli": counts(requests=6, responses=6, listings=40, detail_unobservable=5)}
    (message,) = extensions.health_checks(per, queries=1)
    assert message.startswith("blibli: 5 listing pages stayed blocked") and "may be missed" in message


@pytest.mark.integration
def test_a_sweep_that_fetched_nothing_fails(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    terms = tmp_path / "terms.txt"
    terms.write_text("jaket\n", encoding="utf-8")
    data = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "--data-dir", str(data), "sweep", "--sandbox", dead,
         "-p", "blibli", "--terms", str(terms), "--max-pages", "1", "--no-progress", "--no-screenshots"],
        env=child_env(), capture_output=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr.decode()[-2000:]
    assert b"Traceback" not in proc.stderr
    assert b"nothing was fetched" in proc.stderr
    db = Database(f"sqlite:///{data / 'tertib.sqlite3'}")
    with db.session() as s:
        run = s.scalars(select(SweepRun)).one()
        assert run.status == "failed" and any("nothing was fetched" in m for m in run.needs_attention)
    db.dispose()
