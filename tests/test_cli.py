from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.cli import COMMANDS, main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("tertib ")


def test_init_then_status_on_a_new_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["init"], capsys)
    assert code == 0
    data = tmp_path / "data"
    assert (data / "tertib.sqlite3").exists()
    key = data / "keys" / "tertib-signing.key"
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
    code, out, _ = run(["status"], capsys)
    assert code == 0
    assert str(data.resolve()) in out
    assert "listings" in out and "custody_entries" in out
    assert "chromium" in out


def test_status_counts_a_populated_data_dir(capsys: pytest.CaptureFixture[str]) -> None:
    from crawler import cli_common
    from storage import repositories as repo

    with cli_common.database().session() as s:
        for i in range(3):
            repo.upsert_listing(
                s,
                {
                    "listing_key": f"blibli:{i}",
                    "platform": "blibli",
                    "listing_id": str(i),
                    "url": f"u{i}",
                    "title": "t",
                    "seller_id": "m1",
                },
            )
    code, out, _ = run(["status"], capsys)
    assert code == 0
    rows = {line.split()[1]: line.split()[3] for line in out.splitlines() if line.count("│") >= 3}
    assert rows["listings"] == "3" and rows["sellers"] == "1" and rows["sightings"] == "0"


def test_unknown_command_and_bad_option_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["frobnicate"], capsys)
    assert code == 2 and "No such command" in err
    code, _, err = run(["status", "--nope"], capsys)
    assert code == 2 and "No such option" in err


def test_bad_setting_is_one_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "TERTIB_THRESHOLD_STRONG": "lots"}
    proc = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "threshold_strong" in proc.stderr


def test_every_registered_verb_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for name, *_ in COMMANDS:
        code, out, _ = run([name, "--help"], capsys)
        assert code == 0, name
        assert "Usage" in out, name


def test_every_registered_verb_is_built() -> None:
    """No placeholder verbs: every registered area imports and exports what the table names."""
    import importlib

    for name, module, attr, _help in COMMANDS:
        assert callable(getattr(importlib.import_module(module), attr)), name
