"""A ninth platform added from the test suite alone: a site profile and a sandbox replica in
``tests/extra_platform/``, registered by setting (``TERTIB_PLATFORM_MODULES``) and by passing the replica to
the sandbox — no file of ``crawler/``, ``storage/``, ``scheduler/``, ``spiders/`` or ``sandbox/`` changes.

Then the whole path runs over it: ``tertib sweep`` finds exactly what the replica's search shows, candidates
get evidence, a reviewer approves them, and ``tertib export`` writes its link list and a cover letter
addressed to the operator its profile names.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from test_sweep_integration import ROOT, child_env, database, run_sweep

from crawler.config import load_settings
from crawler.errors import UsageError
from crawler.registry import DEFAULT_PLATFORM_MODULES, default_registry, load_registry
from sandbox.catalog import generate
from sandbox.replicas import DEFAULT_REPLICA_MODULES, load_replicas
from sandbox.server import SandboxServer
from sandbox.state import SandboxState
from storage.models import Capture, Listing

SPIDER = "extra_platform.spider"  # tests/ is on the path of the suite (and of its child processes below)
REPLICA = "extra_platform.replica"
PLATFORM = "pasarloak"
QUERIES = ["bal", "pakaian bekas", "thrift"]
MODULES = ",".join((*DEFAULT_PLATFORM_MODULES, SPIDER))


def test_the_registry_loads_a_platform_named_by_setting() -> None:
    settings = load_settings(env={"TERTIB_PLATFORM_MODULES": MODULES}, sandbox_url="http://127.0.0.1:1")
    profile = settings.registry.get(PLATFORM)
    assert profile.display_name == "Pasar Loak" and profile.operator.startswith("PT Pasar Loak")
    assert PLATFORM in settings.registry.search_names
    assert settings.base_url(PLATFORM) == "http://127.0.0.1:1/pasarloak"
    assert load_settings(env={"TERTIB_PLATFORM_MODULES": MODULES}).base_url(PLATFORM).endswith(".invalid")
    # the default installation does not know it
    assert PLATFORM not in default_registry()
    with pytest.raises(UsageError, match="unknown platform"):
        default_registry().searchable(PLATFORM)


def test_a_module_without_profile_or_a_clash_is_a_config_error() -> None:
    from crawler.errors import ConfigError

    with pytest.raises(ConfigError, match="no PROFILE"):
        load_registry(("extra_platform",))
    with pytest.raises(ConfigError, match="registered twice"):
        load_registry((SPIDER, SPIDER))
    with pytest.raises(ConfigError, match="cannot be imported"):
        load_registry(("extra_platform.nothing_here",))


@pytest.mark.integration
@pytest.mark.slow
def test_sweep_review_and_export_over_an_extra_platform(tmp_path: Path) -> None:
    replicas = load_replicas((*DEFAULT_REPLICA_MODULES, REPLICA))
    catalog = generate(5, 1200, replicas)
    state = SandboxState(catalog, seed=5, replicas=replicas)
    expected: dict[str, str] = {}
    for query in QUERIES:
        found, _total = state.search(PLATFORM, query, 0, 20)  # page 1 of 20
        expected.update({x.listing_id: x.title for x in found})
    assert len(expected) >= 10, "the catalog should put enough listings on the extra platform"

    data_dir = tmp_path / "data"
    env = child_env()
    env["PYTHONPATH"] = str(ROOT / "tests") + os.pathsep + env["PYTHONPATH"]
    env["TERTIB_PLATFORM_MODULES"] = MODULES
    with SandboxServer(state) as url:
        # 1. The sweep: exactly the listings the replica's search shows, with evidence for candidates.
        run_sweep(data_dir, url, [PLATFORM], QUERIES, env=env, timeout=300)
        db = database(data_dir)
        with db.session() as session:
            rows = session.scalars(select(Listing)).all()
            stored = {row.platform_listing_id: row.title for row in rows}
            assert stored == expected
            assert {row.platform for row in rows} == {PLATFORM}
            candidates = sorted(r.listing_key for r in rows if r.verdict in ("candidate", "strong"))
            assert candidates, "some listings on the extra platform should be candidates"
            captured = set(
                session.scalars(
                    select(Listing.listing_key).join(Capture, Capture.listing_key == Listing.listing_key)
                ).all()
            )
            assert set(candidates) <= captured
        db.dispose()

        # 2. A named reviewer approves them; 3. the export writes the list and a letter to its operator.
        cli = [sys.executable, "-m", "crawler.cli", "--data-dir", str(data_dir)]
        approve = subprocess.run(
            [*cli, "review", "approve", *candidates, "--by", "Penguji"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert approve.returncode == 0, approve.stderr
        out = tmp_path / "exports"
        export = subprocess.run(
            [*cli, "export", "--batch-name", "Uji platform baru", "--platform", PLATFORM, "--out", str(out)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert export.returncode == 0, export.stdout + export.stderr
    (batch_dir,) = [p for p in out.iterdir() if p.is_dir()]
    (links,) = batch_dir.glob(f"*-{PLATFORM}.csv")
    with links.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(candidates)
    (letter,) = batch_dir.glob(f"*-{PLATFORM}*.html")
    text = letter.read_text(encoding="utf-8")
    assert "PT Pasar Loak Nusantara (uji)" in text and "Pasar Loak" in text
