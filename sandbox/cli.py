"""``tertib sandbox catalog|serve``: build a catalog file, run the replica marketplaces on loopback.

``tertib sandbox catalog --seed 7 --size 5000 --out catalog.jsonl`` writes a deterministic JSONL catalog
(format: ``docs/sandbox.md``). ``tertib sandbox serve --port 8800 [--catalog FILE | --seed N --size N]
[--faults none|realistic|hostile]`` serves every replica under ``http://HOST:PORT/{host-key}``; point the
spiders at it with ``--sandbox http://127.0.0.1:8800``. ``--drift-terms "a,b,c"`` (both verbs) puts those
words into a generated catalog instead of the built-in drift words, in varied positions and phrasings.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from crawler.cli_common import console
from crawler.errors import UsageError
from sandbox.catalog import generate, load_catalog, parse_drift_terms, write_catalog
from sandbox.har import record_session
from sandbox.server import serve as run
from sandbox.state import FAULT_PROFILES, SandboxState

app = typer.Typer(help="Replica marketplaces on loopback for the demo and tests.", no_args_is_help=True)

DriftOption = Annotated[
    str | None,
    typer.Option(
        "--drift-terms",
        help="Comma-separated new seller words to place in the generated catalog instead of the built-in "
        "ones (title only, description only, both, or as a listing's only trade word).",
    ),
]


@app.command()
def catalog(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write.")],
    seed: Annotated[int, typer.Option(help="Random seed (same seed and size → identical bytes).")] = 0,
    size: Annotated[int, typer.Option(help="Number of listings.", min=1, max=2_000_000)] = 2000,
    drift_terms: DriftOption = None,
    supply: Annotated[bool, typer.Option(help="Resellers repost their wholesaler's photos.")] = False,
) -> None:
    """Write a deterministic catalog. Example: tertib sandbox catalog --seed 7 --size 5000 --out cat.jsonl"""
    listings = generate(
        seed, size, drift_terms=parse_drift_terms(drift_terms) if drift_terms else None, supply=supply
    )
    try:
        write_catalog(listings, out)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    labels = Counter(x.label for x in listings)
    drift = Counter(x.extra["drift_term"] for x in listings if "drift_term" in x.extra)
    console.print(
        f"wrote {len(listings)} listings to {out}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(labels.items())),
        highlight=False,
    )
    console.print(
        "drift terms: " + (", ".join(f"{k} {v}" for k, v in sorted(drift.items())) or "none"), highlight=False
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8800,
    catalog_file: Annotated[Path | None, typer.Option("--catalog", help="JSONL catalog to serve.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the generated catalog, takedowns and faults.")] = 0,
    size: Annotated[int, typer.Option(help="Generated catalog size when no --catalog.", min=1)] = 2000,
    faults: Annotated[str, typer.Option(help="Fault profile: none, realistic or hostile.")] = "none",
    supply: Annotated[bool, typer.Option(help="Resellers repost their wholesaler's photos.")] = False,
    latency: Annotated[
        float,
        typer.Option(
            help="Seconds before each replica answer (a marketplace's response time).", min=0, max=60
        ),
    ] = 0.0,
    drift_terms: DriftOption = None,
) -> None:
    """Serve the replicas. Example: tertib sandbox serve --port 8800 --seed 7 --faults realistic"""
    if faults not in FAULT_PROFILES:
        raise typer.BadParameter(f"unknown fault profile {faults!r}; known: {', '.join(FAULT_PROFILES)}")
    if catalog_file and drift_terms:
        raise UsageError("--drift-terms applies to a generated catalog; a --catalog file has its own words")
    drift = parse_drift_terms(drift_terms) if drift_terms else None
    listings = (
        load_catalog(catalog_file) if catalog_file else generate(seed, size, drift_terms=drift, supply=supply)
    )
    state = SandboxState(listings, seed=seed, faults=faults, latency=latency)
    console.print(f"sandbox: {len(listings)} listings on http://{host}:{port} (control: /_sandbox)")
    run(state, host, port)


@app.command()
def har(
    url: Annotated[str, typer.Option("--url", help="Root URL of a running sandbox.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HAR file to write.")],
    query: Annotated[str, typer.Option("--query", "-q", help="What the session searches for.")] = "thrift",
) -> None:
    """Browse every replica in Chromium and save the session as a HAR (practice for tertib calibrate).

    Example: tertib sandbox har --url http://127.0.0.1:8800 --out session.har
    """
    record_session(url, out, query=query)
    console.print(f"wrote {out}: try tertib calibrate {out}")
