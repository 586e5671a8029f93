"""The whole mission end to end, as `make demo` runs it, on a small catalog: every step must complete and
leave verifiable files. Runs the real CLI in a subprocess (crawls need their own reactor)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.browser]


def test_demo_runs_every_step_and_leaves_verifiable_evidence(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "demo", "--out", str(out), "--size", "1200",
         "--max-queries", "2", "--max-pages", "1"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "11 of 11 steps done" in proc.stdout
    assert "failed:" not in proc.stdout

    batch_dirs = list((out / "exports").glob("TTB-*"))
    assert len(batch_dirs) == 1
    batch = batch_dirs[0]
    for pattern in ("*.csv", "*.xlsx", "*.json", "*-surat.pdf", "*-surat.html"):
        assert list(batch.glob(pattern)), pattern
    assert (batch / "manifest.json").exists() and (batch / "manifest.sig").exists()
    assert (batch / "evidence" / "evidence.wacz").stat().st_size > 0
    manifest = json.loads((batch / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["files"]

    report = (out / "audit-report.md").read_text(encoding="utf-8")
    assert "requested" in report and (out / "audit-report.html").exists()

    # everything the demo stored verifies: WARC digests, screenshots, custody chain, manifest signature
    verify = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "--data-dir", str(out / "data"), "evidence", "verify", "--all"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]
