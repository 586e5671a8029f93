"""A sweep's work description (``crawler.work.SweepWork``): shards that cover a sweep exactly once, and one
shard run as an ordinary crawl (``tertib sweep --work FILE``) storing exactly its page window."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_sweep_integration import (
    ROOT,
    catalog,  # noqa: F401 - the fixture integration_sandbox uses
    child_env,
    expected_pages,
    stored,
)
from test_sweep_integration import sandbox as integration_sandbox  # noqa: F401 - a fixture

from crawler.errors import UsageError
from crawler.work import SweepWork
from sandbox.state import SandboxState

QUERIES = ("jaket", "thrift", "bal korea", "preloved", "kaos")


def test_shards_cover_the_work_exactly_once() -> None:
    work = SweepWork.of(["tokopedia", "lazada", "blibli"], QUERIES, first_page=2, last_page=3)
    for shards in (list(work.shards()), list(work.shards(queries_per_shard=2, by_platform=True))):
        cells = [(p, q) for shard in shards for p in shard.platforms for q in shard.queries]
        assert sorted(cells) == sorted((p, q) for p in work.platforms for q in work.queries)
        assert len(cells) == len(set(cells))
        assert {(s.first_page, s.last_page) for s in shards} == {(2, 3)}
    assert len(list(work.shards(queries_per_shard=2, by_platform=True))) == 3 * 3


def test_work_reads_back_from_its_json_and_refuses_nonsense() -> None:
    work = SweepWork.of(["tokopedia"], [" jaket ", "jaket", "", "kaos"], first_page=1, last_page=4)
    assert work.queries == ("jaket", "kaos")  # stripped, de-duplicated, empties dropped
    assert SweepWork.from_dict(json.loads(json.dumps(work.to_dict()))) == work
    with pytest.raises(UsageError, match="page window"):
        SweepWork.of(["tokopedia"], ["jaket"], first_page=3, last_page=2)
    with pytest.raises(UsageError, match="not a sweep work description"):
        SweepWork.from_dict({"queries": ["jaket"]})


@pytest.mark.integration
def test_a_shard_stores_exactly_its_page_window(
    integration_sandbox: tuple[str, SandboxState],  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    """Pages 2..2 of "jaket" on two page-numbered platforms: the sandbox's second page, nothing else."""
    url, state = integration_sandbox
    platforms, queries = ["tokopedia", "lazada"], ["jaket"]
    for platform in platforms:
        assert 2 in expected_pages(state, platform, "jaket", 2), (
            f"the catalog should give {platform} a page 2"
        )
    work = tmp_path / "shard.json"
    work.write_text(json.dumps(SweepWork.of(platforms, queries, first_page=2, last_page=2).to_dict()))
    data = tmp_path / "data"
    args = [sys.executable, "-m", "crawler.cli", "--data-dir", str(data), "sweep", "--sandbox", url]
    args += ["--work", str(work), "--no-progress", "--no-screenshots"]
    proc = subprocess.run(args, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = stored(data)
    assert result.run["queries"] == queries and sorted(result.run["platforms"]) == sorted(platforms)
    for platform in platforms:
        page_two = expected_pages(state, platform, "jaket", 2)[2]
        got = sorted(
            (s["rank"], s["key"])
            for s in result.sightings
            if result.listings[s["key"]]["platform"] == platform
        )
        assert [key for _rank, key in got] == [x.key for x in page_two], platform
        assert {s["page"] for s in result.sightings if s["key"] in dict(got).values()} == {2}
    assert {row["platform"] for row in result.listings.values()} == set(platforms)
