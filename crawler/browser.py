"""``tertib browser``: logged-in browser profiles for platforms that only show results to a logged-in user.

Some platforms (their site profile says ``needs_login``) answer anonymous browsers with a login wall.
tertib never types an analyst's credentials: ``tertib browser login PLATFORM`` opens a visible Chromium window
on the real site, the analyst logs in by hand (2FA included), closes the window, and the browser profile is
saved in ``{data_dir}/browser-profiles/<platform>``. Sweeps and rechecks then run that platform's pages in a
persistent context built from the profile (``crawler/settings.py`` → ``PLAYWRIGHT_CONTEXTS``).

Against the sandbox (``--sandbox URL``) the replica's published test account logs in automatically and
headless, so the demo and the tests exercise the same path.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Annotated

import typer

from crawler import cli_common as common
from crawler.config import CHROMIUM_ARGS, Settings
from crawler.errors import TertibError, UsageError
from crawler.proxies import ProxyPool
from spiders.browser import browser_login, on_login_wall

app = typer.Typer(
    no_args_is_help=True,
    help="Logged-in browser profiles for platforms that show results only to a logged-in user.",
)


def _check_platform(platform: str, sandbox: bool) -> None:
    profile = common.settings().registry.get(platform)
    if not profile.needs_login:
        raise UsageError(f"{platform} does not need a logged-in browser profile")
    if sandbox and profile.login is None:
        raise UsageError(f"the {platform} sandbox has no login form to log in to")


async def _login(settings: Settings, platform: str, headless: bool, wait_for_user: bool) -> str:
    from playwright.async_api import async_playwright  # third-party, heavy: `browser list` needs none

    profile = settings.registry.get(platform)
    chromium = settings.chromium_path()
    if chromium is None:
        raise TertibError("Chromium not found: install Debian's chromium or set TERTIB_CHROMIUM")
    directory = settings.browser_profile_dir(platform)
    directory.mkdir(parents=True, exist_ok=True)
    base = settings.base_url(profile.main_host)
    start = base + (profile.login.login_path if profile.login else "/")
    # the session must start from the address the sweeps will use: the platform's first healthy proxy,
    # which is also the sticky egress of its browser context in a sweep (crawler/proxies.py)
    pool = ProxyPool.for_run(settings, [platform])
    proxy: dict[str, str] | None = None
    if pool.configured:
        choice = pool.choose(platform, sticky="browser")
        proxy = dict(choice.playwright) if choice is not None else None
        if choice is not None:
            common.console.print(f"{platform}: logging in through proxy {choice.label}")
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(directory),
            executable_path=chromium,
            headless=headless,
            args=list(CHROMIUM_ARGS),
            proxy=proxy,  # type: ignore[arg-type]  # Playwright's ProxySettings is this dict
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            await page.goto(start)
            if wait_for_user:
                common.console.print(
                    f"Log in to {platform} in the Chromium window, then close it (or press Enter here)."
                )
                closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

                def on_close(_context: object) -> None:
                    if not closed.done():
                        closed.set_result(None)

                context.on("close", on_close)
                enter: asyncio.Future[str] = asyncio.get_running_loop().run_in_executor(None, input)
                waiters: list[asyncio.Future[object]] = [closed, enter]  # type: ignore[list-item]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                return str(directory)
            if not await browser_login(page, profile, settings, base + "/"):
                raise TertibError(f"automatic login to the {platform} sandbox failed")
            if on_login_wall(profile, page.url):
                raise TertibError(f"still on the {platform} login page after logging in")
        finally:
            if not wait_for_user or context.pages:
                await context.close()
    return str(directory)


@app.command("login")
def login(
    platform: Annotated[
        str, typer.Argument(help="A platform that needs a login (its site profile says so).")
    ],
    sandbox: Annotated[
        str | None, typer.Option("--sandbox", help="Log in to the sandbox replica instead.")
    ] = None,
) -> None:
    """Log in once by hand and save the browser profile that sweeps and rechecks will use.

    Example: tertib browser login PLATFORM
    """
    platform = platform.strip().lower()
    _check_platform(platform, bool(sandbox or common.settings().sandbox_url))
    if sandbox:
        common.set_overrides(sandbox_url=sandbox)
    settings = common.settings()
    has_display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not settings.sandbox_url and not has_display:
        raise TertibError(
            "logging in by hand needs a visible browser: run this on a desktop session (or under xvfb-run "
            "with a VNC viewer), or copy a saved profile into " + str(settings.browser_profile_dir(platform))
        )
    from playwright.async_api import Error as PlaywrightError

    try:
        path = asyncio.run(
            _login(
                settings,
                platform,
                headless=bool(settings.sandbox_url),
                wait_for_user=not settings.sandbox_url,
            )
        )
    except PlaywrightError as exc:  # unreachable site, closed port, browser failure: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TertibError(f"browser login to {platform} failed: {first[:200]}") from None
    common.console.print(f"saved the {platform} browser profile in {path}")


@app.command("list")
def list_profiles() -> None:
    """Show the saved browser profiles.

    Example: tertib browser list
    """
    profiles = common.settings().saved_browser_profiles()
    if not profiles:
        common.console.print("no saved browser profiles (tertib browser login PLATFORM)")
    for platform, path in profiles.items():
        common.console.print(f"{platform:<10} {path}")


@app.command("forget")
def forget(platform: Annotated[str, typer.Argument(help="Platform whose saved profile to delete.")]) -> None:
    """Delete a saved browser profile (log the session out of tertib).

    Example: tertib browser forget PLATFORM
    """
    path = common.settings().browser_profile_dir(platform.strip().lower())
    if not path.exists():
        raise TertibError(f"no saved profile for {platform}")
    shutil.rmtree(path)
    common.console.print(f"deleted {path}")
