"""The sweep under faults: 429 + Retry-After, 200 block pages, 5xx, malformed bodies, a hostile sandbox.

What must hold whatever the platforms do: no crash; a block is an UNOBSERVABLE attempt (a Capture with
``observable=False`` and the reason, counted in the run's ``blocked``/``unobservable`` stats), never data;
nothing is fabricated (every stored listing is a catalog listing the sandbox search shows for that query
and page, at that rank); a platform that yields nothing is flagged in ``SweepRun.needs_attention`` and the
run is ``partial``, not ``completed``. Faults are queued exactly with ``SandboxState.force_faults`` (or drawn
from the seeded ``hostile`` profile), so the runs are reproducible.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_sweep_integration import (
    ROOT,
    SEED,
    SIZE,
    Stored,
    assert_candidates_captured,
    assert_matches_truth,
    assert_no_spider_on_control_plane,
    assert_nothing_fabricated,
    child_env,
    expected_pages,
    run_sweep,
    stored,
)

from sandbox.catalog import CatalogListing, generate
from sandbox.server import SandboxServer
from sandbox.state import SandboxState

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def catalog() -> list[CatalogListing]:
    return generate(SEED, SIZE)


@pytest.fixture()
def sandbox(catalog: list[CatalogListing]) -> Iterator[tuple[str, SandboxState]]:
    state = SandboxState(list(catalog), seed=SEED)
    with SandboxServer(state) as url:
        yield url, state


def unobservable(result: Stored, platform: str) -> list[dict[str, object]]:
    marker = f"/{platform}"
    return [c for c in result.captures if not c["observable"] and marker in str(c["url"])]


def test_recoverable_faults_still_give_the_truth(sandbox: tuple[str, SandboxState], tmp_path: Path) -> None:
    """One 429 (Retry-After), a malformed body, 5xx answers and one block page: retried, then all found."""
    url, state = sandbox
    state.force_faults("lazada", ["rate_limit_429", "malformed", "server_error"])
    state.force_faults("blibli", ["server_error", "server_error", "block_page"])
    state.force_faults("tokopedia", ["malformed"])
    platforms = ["tokopedia", "lazada", "blibli"]
    queries = ["jaket"]
    data = tmp_path / "data"
    run_sweep(data, url, platforms, queries, max_pages=1)
    result = stored(data)

    assert_matches_truth(state, result, platforms, queries, 1)
    per = result.run["stats"]["platforms"]
    assert per["lazada"]["retry_after"] >= 1, per["lazada"]  # the Retry-After was honoured, not ignored
    assert per["lazada"]["blocked"] >= 1 and per["tokopedia"]["blocked"] >= 1  # malformed = a block, retried
    assert per["blibli"]["blocked"] >= 1
    for platform in platforms:
        assert per[platform]["unobservable"] == 0, (platform, per[platform])  # recovered in the end
    assert result.run["status"] == "completed", result.run
    assert result.run["needs_attention"] == []
    assert assert_candidates_captured(result) > 0
    assert not [c for c in result.captures if not c["observable"]]  # retried blocks are not final


def test_blocked_platform_is_unobservable_and_needs_attention(
    sandbox: tuple[str, SandboxState], tmp_path: Path
) -> None:
    """Tokopedia answers every search with Akamai's block page: no listings, UNOBSERVABLE, flagged.

    Blibli runs alongside unharmed (a blocked platform must not stop the others), and its blocked keyword
    on Tokopedia cannot be a finding: the platform was never observed answering it.
    """
    url, state = sandbox
    state.force_faults("tokopedia", ["block_page"] * 12)
    queries = ["jaket", "balpres"]
    data = tmp_path / "data"
    run_sweep(data, url, ["tokopedia", "blibli"], queries, max_pages=1)
    result = stored(data)

    assert_nothing_fabricated(state, result)
    assert not [k for k, row in result.listings.items() if row["platform"] == "tokopedia"]
    assert_matches_truth(state, result, ["blibli"], queries, 1)
    per = result.run["stats"]["platforms"]["tokopedia"]
    assert per["listings"] == 0
    assert per["unobservable"] == len(queries), per  # one final attempt per query
    assert per["blocked"] == 3 * len(queries), per  # first try + 2 polite retries each
    attempts = unobservable(result, "tokopedia")
    assert len(attempts) == len(queries), attempts
    for attempt in attempts:
        assert attempt["reason"], attempt
        assert attempt["warc_file"], attempt  # the block page itself is kept as evidence of the attempt
    assert not [f for f in result.findings if f["platform"] == "tokopedia"]
    attention = result.run["needs_attention"]
    assert any(m.startswith("tokopedia:") and "no listings" in m for m in attention), attention
    assert any(m.startswith("tokopedia:") and "stayed blocked" in m for m in attention), attention
    assert not any(m.startswith("blibli:") for m in attention), attention
    assert result.run["status"] == "partial", result.run


def test_hostile_sandbox_no_crash_nothing_fabricated(
    sandbox: tuple[str, SandboxState], tmp_path: Path
) -> None:
    """The seeded ``hostile`` profile on every HTTP platform: whatever got through is true, blocks are
    recorded as UNOBSERVABLE, and the counts in the run record agree with the database."""
    url, state = sandbox
    state.set_faults("hostile")
    platforms = ["tokopedia", "lazada", "blibli"]
    queries = ["jaket", "thrift", "balpres"]
    data = tmp_path / "data"
    run_sweep(data, url, platforms, queries, max_pages=2, timeout=240)
    result = stored(data)

    assert_nothing_fabricated(state, result)
    # every sighting is at the page and rank the sandbox shows for that query
    position = {
        (platform, query, number, rank): listing.key
        for platform in platforms
        for query in queries
        for number, chunk in expected_pages(state, platform, query, 2).items()
        for rank, listing in enumerate(chunk, start=1)
    }
    for s in result.sightings:
        platform = result.listings[s["key"]]["platform"]
        assert position.get((platform, s["query"], s["page"], s["rank"])) == s["key"], s
    per = result.run["stats"]["platforms"]
    assert sum(p["blocked"] for p in per.values()) > 0, per  # hostile really was hostile
    final_blocks = sum(p["unobservable"] for p in per.values())
    attempts = [c for c in result.captures if not c["observable"]]
    # search blocks that survived the retries, plus blocked detail fetches (counted as blocked only)
    assert len(attempts) >= final_blocks, (len(attempts), final_blocks)
    assert all(a["reason"] for a in attempts)
    for platform in platforms:
        stored_here = sum(1 for s in result.sightings if result.listings[s["key"]]["platform"] == platform)
        assert per[platform]["listings"] == stored_here, (platform, per[platform], stored_here)
    assert result.run["status"] in ("completed", "partial")
    if result.run["status"] == "completed":
        assert result.run["needs_attention"] == []
    assert_candidates_captured(result)
    assert_no_spider_on_control_plane(url)


def test_shape_change_is_told_from_a_block_and_fails_strict(
    sandbox: tuple[str, SandboxState], tmp_path: Path
) -> None:
    """Tokopedia answers with a redesigned body (its result list renamed), Blibli with a block page: health
    says "shape changed" with the missing path for the one and "stayed blocked" for the other; the redesign
    is not recorded as an UNOBSERVABLE attempt (it was read), and ``--strict`` exits 3."""
    url, state = sandbox
    state.force_faults("tokopedia", ["redesign"])
    state.force_faults("blibli", ["block_page"] * 3)
    terms = tmp_path / "terms.txt"
    terms.write_text("jaket\n", encoding="utf-8")
    args = [sys.executable, "-m", "crawler.cli", "--data-dir", str(tmp_path / "data"), "sweep"]
    args += ["--sandbox", url, "-p", "tokopedia", "-p", "blibli", "-p", "lazada", "--terms", str(terms)]
    args += ["--max-pages", "1", "--no-progress", "--no-screenshots", "--strict"]
    proc = subprocess.run(args, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=150)
    assert proc.returncode == 3, proc.stdout + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "needs attention (--strict)" in last and "tokopedia: shape changed" in last, last

    result = stored(tmp_path / "data")
    attention = result.run["needs_attention"]
    assert (
        "tokopedia: shape changed — 1 of 1 answers no longer match its profile;"
        " missing: data.searchProductV5 (1)" in attention
    ), attention
    assert any(m.startswith("blibli:") and "stayed blocked" in m for m in attention), attention
    assert not any(m.startswith("blibli:") and "shape changed" in m for m in attention), attention
    assert not any(m.startswith("lazada:") for m in attention), attention
    assert result.run["stats"]["shape_changes"] == {"tokopedia": {"data.searchProductV5": 1}}
    per = result.run["stats"]["platforms"]
    assert per["tokopedia"]["shape_mismatch"] == 1 and per["tokopedia"]["unobservable"] == 0
    assert per["blibli"]["shape_mismatch"] == 0 and per["blibli"]["unobservable"] == 1
    assert not unobservable(result, "tokopedia-gql")  # a changed shape is not a blocked attempt
    assert result.run["status"] == "partial"
    assert_matches_truth(state, result, ["lazada"], ["jaket"], 1)
