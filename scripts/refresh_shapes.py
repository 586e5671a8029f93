#!/usr/bin/env python3
"""Rebuild ``spiders/shapes.json``: the JSON key paths tertib's parsers were calibrated on.

``tertib calibrate`` lists the keys of a recorded answer that are not in this inventory ("new keys"). The
inventory is the union of

- the real captured answers in ``tests/fixtures/real/`` (each put back in the envelope the platform sends),
- a browser session recorded against the sandbox (``sandbox.har.record_session``; the replicas carry the
  shapes tertib is built for), over a few queries, and
- any ``shapes.json`` written by ``tertib calibrate --save DIR`` that a developer accepts after updating
  the parsers (``--accept DIR/shapes.json``, repeatable): the new real shape becomes the reference.

Run it after changing a parser or a replica's answers:
    .venv/bin/python scripts/refresh_shapes.py [--accept calib/shapes.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.calibrate import calibrate, key_paths, shape_key  # noqa: E402
from crawler.config import load_settings  # noqa: E402

REAL = ROOT / "tests" / "fixtures" / "real"
OUT = ROOT / "spiders" / "shapes.json"
QUERIES = ("thrift", "jaket", "balpres")  # balpres: a keyword Tokopedia refuses (the violation banner)
SEED, SIZE = 11, 2000


def _gql(name: str) -> Callable[[Any], Any]:
    return lambda body: [{"data": {name: body}}]


# (fixture, platform, kind, shape, how to put it back in the answer the platform sends)
REAL_ANSWERS: list[tuple[str, str, str, str, Callable[[Any], Any]]] = [
    ("shopee/search_items_kaos.json", "shopee", "search", "", lambda b: b),
    ("shopee/item_get_detail.json", "shopee", "detail", "", lambda b: b),
    ("blibli/search_kaos_wrapped.json", "blibli", "search", "", lambda b: b["data"]),
    ("blibli/category_sponsored_excerpt.json", "blibli", "search", "", lambda b: b),
    ("blibli/product_detail_wrapped.json", "blibli", "detail", "", lambda b: b["data"]),
    ("tokopedia/pdp_get_layout.json", "tokopedia", "detail", "", _gql("pdpGetLayout")),
    (
        "tokopedia/search_v4_iphone_rapidapi_wrapped.json",
        "tokopedia",
        "search",
        "ace_search_product_v4",
        lambda b: _gql("ace_search_product_v4")(b["results"]),
    ),
    (
        "facebook/marketplace_search_listing_node.json",
        "facebook",
        "search",
        "",
        lambda node: {
            "data": {"marketplace_search": {"feed_units": {"edges": [{"node": {"listing": node}}]}}}
        },
    ),
    ("instagram/web_profile_info_excerpt.json", "instagram", "search", "profile", lambda b: b),
    ("instagram/profile_posts_graphql_2017_excerpt.json", "instagram", "search", "profile", lambda b: b),
]


def real_shapes() -> dict[str, set[str]]:
    shapes: dict[str, set[str]] = defaultdict(set)
    for name, platform, kind, shape, envelope in REAL_ANSWERS:
        body = envelope(json.loads((REAL / name).read_text(encoding="utf-8")))
        shapes[shape_key(platform, kind, shape)] |= key_paths(body)
    return shapes


def sandbox_shapes() -> dict[str, set[str]]:
    from sandbox.catalog import generate
    from sandbox.har import record_session
    from sandbox.server import SandboxServer
    from sandbox.state import SandboxState

    shapes: dict[str, set[str]] = defaultdict(set)
    state = SandboxState(list(generate(SEED, SIZE)), seed=SEED)
    with SandboxServer(state) as url, tempfile.TemporaryDirectory() as tmp:
        for query in QUERIES:
            har = record_session(url, Path(tmp) / f"{query}.har", query=query)
            report = calibrate(har, load_settings(env={}).with_sandbox(url), shapes={})
            for answer in report.answers:
                if answer.paths:
                    shapes[shape_key(answer.platform, answer.kind, answer.shape)] |= answer.paths
    return shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accept", action="append", default=[], type=Path, help="a calibrate shapes.json")
    args = parser.parse_args()
    shapes: dict[str, set[str]] = defaultdict(set)
    for source in (real_shapes(), sandbox_shapes()):
        for key, paths in source.items():
            shapes[key] |= paths
    for accepted in args.accept:
        for key, paths in json.loads(accepted.read_text(encoding="utf-8"))["shapes"].items():
            shapes[key] |= set(paths)
    doc = {
        "about": "JSON key paths tertib's parsers were calibrated on; rebuilt by scripts/refresh_shapes.py",
        "shapes": {key: sorted(paths) for key, paths in sorted(shapes.items())},
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(shapes)} shapes, {sum(map(len, shapes.values()))} key paths")


if __name__ == "__main__":
    main()
