"""`tertib browser`: saved logged-in profiles (sandbox account logs in headless; real sites need a person)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crawler.cli import app, main
from sandbox.catalog import generate
from sandbox.server import SandboxServer
from sandbox.state import SandboxState

runner = CliRunner()


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with SandboxServer(SandboxState(generate(3, 300), seed=3)) as url:
        yield url


@pytest.mark.browser
def test_sandbox_login_saves_a_profile_the_sweep_will_use(tmp_path: Path, sandbox_url: str) -> None:
    data = tmp_path / "data"
    result = runner.invoke(
        app, ["--data-dir", str(data), "browser", "login", "facebook", "--sandbox", sandbox_url]
    )
    assert result.exit_code == 0, result.output
    profile = data / "browser-profiles" / "facebook"
    assert profile.is_dir() and any(profile.iterdir())
    listed = runner.invoke(app, ["--data-dir", str(data), "browser", "list"])
    assert "facebook" in listed.output

    from crawler import cli_common
    from crawler.settings import build

    cli_common.set_overrides(data_dir=data, sandbox_url=sandbox_url)
    contexts = build(cli_common.settings(), platforms=("facebook",))["PLAYWRIGHT_CONTEXTS"]
    assert contexts == {"facebook": {"user_data_dir": str(profile)}}

    forgot = runner.invoke(app, ["--data-dir", str(data), "browser", "forget", "facebook"])
    assert forgot.exit_code == 0 and not profile.exists()


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_platforms_without_login_and_missing_display_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    code, err = _main(["--data-dir", data, "browser", "login", "tokopedia"], capsys)
    assert code == 2 and "does not need a logged-in browser profile" in err
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, err = _main(["--data-dir", data, "browser", "login", "instagram"], capsys)
    assert code == 1 and "needs a visible browser" in err and err.count("\n") == 1
