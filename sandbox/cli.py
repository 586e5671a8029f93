"""``tertib sandbox catalog|serve``: build a catalog file, run the replica marketplaces on loopback.

``tertib sandbox catalog --seed 7 --size 5000 --out catalog.jsonl`` writes a deterministic JSONL catalog
(format: ``docs/sandbox.md``). ``tertib sandbox serve --port 8800 [--catalog FILE | --seed N --size N]
[--faults none|realistic|hostile]`` serves every replica under ``http://HOST:PORT/{host-key}``; point the
spiders at it with ``--sandbox http://127.0.0.1:8800``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from crawler.cli_common import console
from sandbox.catalog import generate, load_catalog, write_catalog
from sandbox.har import record_session
from sandbox.server import serve as run
from sandbox.state import FAULT_PROFILES, SandboxState

app = typer.Typer(help="Replica marketplaces on loopback for the demo and tests.", no_args_is_help=True)


@app.command()
def catalog(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write.")],
    seed: Annotated[int, typer.Option(help="Random seed (same seed and size → identical bytes).")] = 0,
    size: Annotated[int, typer.Option(help="Number of listings.", min=1)] = 2000,
    supply: Annotated[bool, typer.Option(help="Resellers repost their wholesaler's photos.")] = False,
) -> None:
    """Write a deterministic catalog. Example: tertib sandbox catalog --seed 7 --size 5000 --out cat.jsonl"""
    listings = generate(seed, size, supply=supply)
    write_catalog(listings, out)
    labels = Counter(x.label for x in listings)
    console.print(
        f"wrote {len(listings)} listings to {out}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(labels.items()))
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
) -> None:
    """Serve the replicas. Example: tertib sandbox serve --port 8800 --seed 7 --faults realistic"""
    if faults not in FAULT_PROFILES:
        raise typer.BadParameter(f"unknown fault profile {faults!r}; known: {', '.join(FAULT_PROFILES)}")
    listings = load_catalog(catalog_file) if catalog_file else generate(seed, size, supply=supply)
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
