"""A browser session on the sandbox, saved as a HAR file — what an analyst's "Save all as HAR" gives.

:func:`record_session` drives Debian's Chromium through Playwright with ``record_har_path`` (content
embedded, as Chromium's DevTools export does) over every replica the way a person would: Shopee's search
page (which signs and fetches its own API), Facebook and Instagram after logging in with the sandbox's
published test account (search page, scroll, a listing or post), Lazada's and Blibli's JSON answers,
Tokopedia's GraphQL search and product layout (fetched from a Tokopedia page, as its web app does), a
TikTok Shop product page. ``tertib calibrate`` reads the file back (``docs/calibration.md``); the tests
record one against the sandbox, and ``scripts/refresh_shapes.py`` records one to refresh the key inventory.

``tertib sandbox har --url URL --out session.har`` runs it against a sandbox that is already serving.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crawler.config import CHROMIUM_ARGS, Settings, load_settings
from crawler.errors import TertibError
from spiders import blibli, facebook, instagram, lazada, shopee, tokopedia
from spiders.browser import browser_login

DEFAULT_PLATFORMS = ("tokopedia", "tiktokshop", "shopee", "lazada", "blibli", "facebook", "instagram")


async def _fetch_json(page: Any, url: str, method: str = "GET", body: str | None = None) -> Any:
    """A fetch from inside the page (recorded in the HAR like the site's own XHR); the parsed answer."""
    script = """async ([url, method, body]) => {
        const r = await fetch(url, {method, body, headers: {"content-type": "application/json"}});
        return await r.text();
    }"""
    text = await page.evaluate(script, [url, method, body])
    try:
        return json.loads(text)
    except ValueError:
        return None


async def _tokopedia(page: Any, settings: Settings, query: str) -> None:
    search = tokopedia.search_request(settings, query, 1, unique_id="0" * 32)
    # a page on the sandbox origin first, so the GraphQL fetch is same-origin like the web app's
    await page.goto(settings.base_url("lazada") + "/")
    answer = await _fetch_json(page, search.url, "POST", search.body)
    found = tokopedia.parse_search(answer or {}, url=search.url)
    for listing in found.listings[:1]:
        detail = tokopedia.detail_request(settings, listing.url)
        await _fetch_json(page, detail.url, "POST", detail.body)
        tts = listing.extra_ids.get("tiktokshop_product_id")
        if tts:
            await page.goto(f"{settings.base_url('tiktokshop')}/view/product/{tts}")


async def _tiktokshop(page: Any, settings: Settings, query: str) -> None:
    search = tokopedia.search_request(settings, query, 1, unique_id="1" * 32)
    await page.goto(settings.base_url("lazada") + "/")
    answer = await _fetch_json(page, search.url, "POST", search.body)
    for listing in tokopedia.parse_search(answer or {}, url=search.url).listings:
        tts = listing.extra_ids.get("tiktokshop_product_id")
        if tts:
            await page.goto(f"{settings.base_url('tiktokshop')}/view/product/{tts}")
            return


async def _shopee(page: Any, settings: Settings, query: str) -> None:
    async with page.expect_response(lambda r: shopee.SEARCH_API_PATH in r.url, timeout=20_000) as info:
        await page.goto(shopee.search_page_url(settings, query, 1))
    response = await info.value
    found = shopee.parse_search(await response.body(), url=response.url)
    await page.wait_for_timeout(2_500)  # the replica, like the site, sends fast clients to a traffic check
    for listing in found.listings[:1]:
        await page.goto(shopee.detail_request(settings, listing.url).url)


async def _lazada(page: Any, settings: Settings, query: str) -> None:
    await page.goto(lazada.search_url(settings, query, 1))
    answer = json.loads(await page.evaluate("document.body.innerText"))
    for listing in lazada.parse_search(answer, url=lazada.search_url(settings, query, 1)).listings[:1]:
        await page.goto(lazada.detail_request(settings, listing.url).url)


async def _blibli(page: Any, settings: Settings, query: str) -> None:
    url = blibli.search_url(settings, query, 1)
    await page.goto(url)
    answer = json.loads(await page.evaluate("document.body.innerText"))
    for listing in blibli.parse_search(answer, url=url).listings[:1]:
        await page.goto(blibli.detail_request(settings, listing.listing_id).url)


async def _scroll_for(page: Any, marker: str) -> None:
    """Scroll like a reader until the page fetches its next batch (``marker`` in the URL), or give up."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        try:
            async with page.expect_response(lambda r: marker in r.url, timeout=4_000):
                await page.mouse.wheel(0, 20_000)
            return
        except PlaywrightTimeout:
            continue  # fewer results than a batch, or the page is still rendering


async def _login(page: Any, settings: Settings, platform: str) -> None:
    profile = settings.registry.get(platform)
    login_path = profile.login.login_path if profile.login else "/"
    await page.goto(settings.base_url(profile.main_host) + login_path)
    await browser_login(page, profile, settings, "")


async def _facebook(page: Any, settings: Settings, query: str) -> None:
    await _login(page, settings, "facebook")
    await page.goto(facebook.search_url(settings, query))
    await _scroll_for(page, "/api/graphql/")
    found = facebook.parse_search(await page.content(), url=page.url)
    for listing in found.listings[:1]:
        await page.goto(listing.url)


async def _instagram(page: Any, settings: Settings, query: str) -> None:
    await _login(page, settings, "instagram")
    await page.goto(instagram.search_request(settings, query).url)
    await _scroll_for(page, "/api/v1/tags/")
    found = instagram.parse_search(await page.content(), url=page.url)
    for listing in found.listings[:1]:
        await page.goto(listing.url)


_VISITS = {
    "tokopedia": _tokopedia,
    "tiktokshop": _tiktokshop,
    "shopee": _shopee,
    "lazada": _lazada,
    "blibli": _blibli,
    "facebook": _facebook,
    "instagram": _instagram,
}


async def arecord_session(
    root_url: str,
    out: Path,
    *,
    platforms: Iterable[str] = DEFAULT_PLATFORMS,
    query: str = "thrift",
    chromium: str | None = None,
) -> Path:
    """Browse the sandbox at ``root_url`` in Chromium and save the session as a HAR file at ``out``."""
    from playwright.async_api import async_playwright

    settings = load_settings(env={}).with_sandbox(root_url.rstrip("/"))
    executable = chromium or settings.chromium_path()
    if executable is None:
        raise TertibError("Chromium not found: install Debian's chromium or set TERTIB_CHROMIUM")
    out.parent.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            context = await browser.new_context(record_har_path=str(out), record_har_content="embed")
            try:
                for platform in platforms:
                    page = await context.new_page()
                    try:
                        await _VISITS[platform](page, settings, query)
                    finally:
                        await page.close()
            finally:
                await context.close()  # writes the HAR
        finally:
            await browser.close()
    return out


def record_session(root_url: str, out: Path, **kwargs: Any) -> Path:
    return asyncio.run(arecord_session(root_url, out, **kwargs))
