"""`tertib score` and `tertib terms …` through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crawler import cli_common
from crawler.cli import app

TERTIB = [sys.executable, "-m", "crawler.cli"]
ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERTIB_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        TERTIB + args, input=stdin, capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


def test_score_on_a_fresh_machine(tmp_path: Path) -> None:
    proc = run(["score"], tmp_path, "bal korea isi 300\n\nkaos polos\n")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["verdict"] for x in lines] == ["strong", "clear"]
    first = lines[0]
    assert list(first)[:4] == ["text", "score", "verdict", "signals"]
    assert first["signals"][0] == {**first["signals"][0], "term": "bal", "span": [0, 3]}
    assert not (tmp_path / "tertib-data").exists()  # scoring creates no data dir


def test_score_listing_jsonl_and_bad_json(tmp_path: Path) -> None:
    stdin = json.dumps({"title": "Jaket kulit", "description": "ex korea, bekas"}) + '\n{"price": 5}\n'
    proc = run(["score"], tmp_path, stdin)
    assert proc.returncode != 0
    assert "line 2" in proc.stderr and "Traceback" not in proc.stderr
    out = json.loads(proc.stdout.splitlines()[0])
    assert out["text"] == "Jaket kulit\nex korea, bekas" and out["verdict"] in ("candidate", "strong")


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for key in [k for k in os.environ if k.startswith("TERTIB_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TERTIB_ACTOR", "tester")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, ["--data-dir", str(tmp_path / "data"), *args], input=input)
        return result

    yield invoke
    cli_common.set_overrides()


def test_terms_lifecycle(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("terms", "list")
    assert r.exit_code == 0, r.output
    assert "balpres" in r.output and "seed" in r.output
    r = cli("terms", "add", "ukay", "-V", "ukay-ukay", "--category", "regional", "--by", "ana")
    assert r.exit_code == 0 and "added" in r.output
    # the database lexicon is now what `score` uses
    r = cli("score", input="ukay ukay korea\n")
    assert r.exit_code == 0
    assert json.loads(r.output)["signals"][0]["term"] == "ukay"
    out = tmp_path / "lex.tsv"
    assert cli("terms", "export", str(out)).exit_code == 0
    assert "ukay\tukay-ukay\tregional" in out.read_text(encoding="utf-8")
    r = cli("terms", "retire", "ukay")
    assert r.exit_code == 0 and "retired" in r.output
    r = cli("terms", "import", str(out))
    assert r.exit_code == 0 and "1 updated" in " ".join(r.output.split())
    r = cli("terms", "suggest")
    assert r.exit_code == 0 and "no proposed terms" in r.output


def test_terms_errors_are_one_line(tmp_path: Path) -> None:
    proc = run(["--data-dir", str(tmp_path / "d"), "terms", "retire", "no-such-term"], tmp_path)
    assert proc.returncode == 1
    assert "no term" in proc.stderr and "Traceback" not in proc.stderr
    proc = run(["--data-dir", str(tmp_path / "d"), "terms", "add", "x1", "--strength", "BIG"], tmp_path)
    assert proc.returncode != 0 and "strength" in proc.stderr and "Traceback" not in proc.stderr
