"""Measure the dealer networks against the sandbox's truth with real sweeps over several virtual days.

    .venv/bin/python scripts/measure_intel.py --seed 41 --size 1500 --days 0,7,14 [--json out.json]

1. Generate a catalog with supply relations (resellers repost their wholesaler's photos) and serve it on
   127.0.0.1 (no faults).
2. ``tertib init`` a fresh data dir, then on each virtual day: ``tertib sweep --sandbox URL`` (every
   platform, the queries below, ``--details weak --no-screenshots``: listing pages opened, as by
   default), then advance the sandbox clock.
3. ``tertib intel hash-images`` (photos of suspect listings), ``tertib intel networks --json --limit 0``.
4. Compare with ``/_sandbox/truth`` (:func:`crawler.intel.measure.compare`) and print the figures.

Seed 41 is the one the docs quote; the rules were written on seed 7 (``tests/test_intel_networks.py``)
and never tuned on 41.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.intel.measure import compare  # noqa: E402
from sandbox.catalog import generate  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402
from sandbox.state import SandboxState  # noqa: E402

QUERIES = (
    "bal",
    "balpres",
    "karungan",
    "thrift",
    "bekas",
    "import",
    "korea",
    "jepang",
    "monza",
    "cakar",
    "sortiran",
    "grade",
    "segel",
    "kg",
    "pcs",
    "bundle",
    "awul",
    "rombengan",
    "ukay",
    "gelondongan",
    "bandela",
    "jumbo",
    "lelang",
    "reject",
    "second",
    "preloved",
    "vintage",
    "kaos",
    "jaket",
    "kemeja",
)


def tertib(data_dir: Path, *args: str) -> str:
    command = [sys.executable, "-m", "crawler.cli", "--data-dir", str(data_dir), *args]
    proc = subprocess.run(command, text=True, capture_output=True, timeout=3600, env={**os.environ})
    if proc.returncode not in (0, 3):
        raise SystemExit(f"tertib {args[0]} exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return proc.stdout


def post(url: str, payload: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        data: dict[str, object] = json.load(response)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=41)
    parser.add_argument("--size", type=int, default=1500)
    parser.add_argument("--days", default="0,7,14", help="virtual days to sweep on, comma-separated")
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--details", default="weak", help="tertib sweep --details (weak: descriptions read)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", type=Path, help="keep the data dir and the truth here (for a closer look)")
    args = parser.parse_args()
    days = [int(d) for d in args.days.split(",")]
    started = time.monotonic()
    # 1. the sandbox
    listings = generate(args.seed, args.size, supply=True)
    state = SandboxState(listings, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="tertib-intel-") as tmp, SandboxServer(state) as url:
        data_dir = Path(tmp) / "data"
        terms = Path(tmp) / "queries.txt"
        terms.write_text("\n".join(QUERIES) + "\n", encoding="utf-8")
        tertib(data_dir, "init")
        # 2. sweeps on each virtual day
        for i, day in enumerate(days):
            if day > state.clock.day:
                post(f"{url}/_sandbox/clock", {"advance_days": day - state.clock.day})
            tertib(
                data_dir,
                "sweep",
                "--sandbox",
                url,
                "--terms",
                str(terms),
                "--max-pages",
                str(args.pages),
                "--details",
                args.details,
                "--no-screenshots",
                "--no-progress",
            )
            print(
                f"day {day}: sweep {i + 1}/{len(days)} done ({time.monotonic() - started:.0f} s)", flush=True
            )
        # 3. networks
        print(tertib(data_dir, "intel", "hash-images").strip(), flush=True)
        t0 = time.monotonic()
        inferred = json.loads(tertib(data_dir, "intel", "networks", "--json", "--limit", "0"))["networks"]
        compute_s = time.monotonic() - t0
        with urllib.request.urlopen(f"{url}/_sandbox/truth?listings=0", timeout=60) as response:
            truth = json.load(response)["networks"]
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copytree(data_dir, args.keep / "data", dirs_exist_ok=True)
            (args.keep / "truth.json").write_text(json.dumps(truth), encoding="utf-8")
            (args.keep / "networks.json").write_text(json.dumps(inferred), encoding="utf-8")
    # 4. compare
    figures = compare(inferred, truth)
    figures["run"] = {
        "seed": args.seed,
        "details": args.details,
        "size": args.size,
        "days": days,
        "pages": args.pages,
        "queries": len(QUERIES),
        "networks_inferred": len(inferred),
        "networks_command_s": round(compute_s, 1),
        "total_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
