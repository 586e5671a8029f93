"""Screenshots of the console's main pages into ``docs/screenshots/`` with the real Debian Chromium.

Builds a throw-away installation from the console's sample data (:mod:`crawler.web.sample`: scored
candidates with screenshots, one exported, sent and rechecked batch), starts the app with uvicorn on a free
loopback port in a thread, logs in as an analyst and saves one PNG per page, so the README images always
show the current console. Re-run after changing a page:

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--lang id|en]

Settings: ``TERTIB_CHROMIUM`` (else /usr/bin/chromium). Add a page by adding it to :data:`PAGES`.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawler.config import CHROMIUM_ARGS  # noqa: E402

PAGES: list[tuple[str, str]] = [
    ("dashboard", "/"),
    ("review", "/review"),
    ("review-bulk", "/review/list"),
    ("batches", "/batches"),
    ("batch", "/batches/TTB-{year}-0001"),
    ("audit", "/audit?batch=TTB-{year}-0001"),
    ("evidence", "/evidence/1"),
    ("terms", "/terms"),
    ("sweeps", "/sweeps"),
    ("sellers", "/sellers"),
]
ARGS = list(CHROMIUM_ARGS)


def main() -> None:
    parser = argparse.ArgumentParser(description="Screenshots of the console's main pages.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--lang", choices=("id", "en"), default="id")
    args = parser.parse_args()

    import uvicorn
    from playwright.sync_api import sync_playwright

    from crawler.config import load_settings
    from crawler.web import auth, sample
    from crawler.web.app import create_app
    from storage.db import Database

    data = Path(tempfile.mkdtemp(prefix="tertib-shots-")) / "data"
    data.mkdir(parents=True)
    settings = load_settings(env={}, data_dir=data)
    db = Database(settings.db_url)
    db.migrate()
    sample.seed_sample(db, settings)
    number = sample.seed_batch(db, settings)
    year = number.split("-")[1]
    with db.session() as s:
        auth.add_user(s, "siti", "analyst", "screenshot-pass", actor="screenshots")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, db), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    args.out.mkdir(parents=True, exist_ok=True)
    chromium = os.environ.get("TERTIB_CHROMIUM") or "/usr/bin/chromium"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            page = context.new_page()
            page.goto(f"{base}/lang/{args.lang}?next=/login")
            page.fill("#username", "siti")
            page.fill("#password", "screenshot-pass")
            page.click("#login-submit")
            page.wait_for_url(f"{base}/")
            for name, path in PAGES:
                page.goto(base + path.format(year=year))
                target = args.out / f"{name}.png"
                page.screenshot(path=str(target), full_page=True)
                print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        db.dispose()


if __name__ == "__main__":
    main()
