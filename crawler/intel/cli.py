"""``tertib intel``: dealer networks for a police or customs referral.

``tertib intel networks [--json] [--limit N] [--all]`` ranks the networks (:mod:`crawler.intel.networks`);
``tertib intel hash-images`` fetches the photos of suspect listings that have no perceptual hash yet (the
image links need them); ``tertib intel dossier NETWORK --out DIR`` writes the referral dossier
(:mod:`crawler.intel.dossier`). ``NETWORK`` is a network id (``NET-…``), its rank, or any of its accounts
(``platform:seller_id``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from crawler import cli_common as common
from crawler.errors import TertibError

if TYPE_CHECKING:
    from crawler.intel.networks import Network

app = typer.Typer(help="Dealer networks: ranking and referral dossiers.", no_args_is_help=True)


class NetworkNotFound(TertibError):
    """No network matches the reference given."""


def _compute(include_all: bool) -> list[Network]:
    from crawler.intel.networks import compute_networks

    db = common.database()
    with (
        Progress(
            SpinnerColumn(), TextColumn("{task.description}"), console=common.err_console, transient=True
        ) as progress,
        db.session() as session,
    ):
        task = progress.add_task("reading sightings", total=None)
        return compute_networks(
            session,
            include_unsuspected=include_all,
            progress=lambda n: progress.update(task, description=f"reading sightings: {n:,}"),
        )


@app.command("networks")
def networks_command(
    as_json: Annotated[bool, typer.Option("--json", help="JSON: every field, links and scores.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show the best N (0: all).", min=0)] = 20,
    include_all: Annotated[
        bool, typer.Option("--all", help="Also networks with no suspect listing (shops outside the trade).")
    ] = False,
) -> None:
    """Networks of accounts behind the listings, ranked by estimated wholesale volume.

    Example: tertib intel networks --limit 10 ; tertib intel networks --json > networks.json
    """
    networks = _compute(include_all)
    shown = networks[:limit] if limit else networks
    if as_json:
        common.console.print_json(json.dumps({"networks": [n.to_dict() for n in shown]}, ensure_ascii=False))
        return
    if not networks:
        common.console.print("no networks: no suspect listing with a seller is stored yet")
        return
    table = Table(
        "#",
        "network",
        "role",
        "accounts",
        "platforms",
        "cities",
        "listings",
        "confirmed",
        "units sold (est.)",
        "wholesale",
        title=f"{len(networks)} network(s), best first",
        title_justify="left",
    )
    for net in shown:
        s = net.summary()
        v = net.volume
        units = f"{v['units']:,.0f}" + (
            " (floor)" if v["units_high"] is None and v["listings_with_sold"] else ""
        )
        if not v["listings_with_sold"]:
            units = "no sold field"
        table.add_row(
            str(net.rank),
            net.id,
            net.role,
            escape(
                ", ".join(a.key for a in net.accounts[:3])
                + (f" +{len(net.accounts) - 3}" if len(net.accounts) > 3 else "")
            ),
            ", ".join(s["platforms"]),
            escape(", ".join(s["cities"][:3])),
            str(s["listings"]),
            str(s["confirmed_violations"]),
            units,
            f"{net.wholesale['score']:.2f}",
        )
    common.console.print(table)
    common.console.print("why: tertib intel networks --json (links with evidence, signals, explanation)")


@app.command("hash-images")
def hash_images_command(
    workers: Annotated[int, typer.Option(help="Parallel image fetches.", min=1, max=32)] = 8,
) -> None:
    """Fetch and hash the photos of suspect listings that have no perceptual hash yet (image links).

    Example: tertib intel hash-images
    """
    from sqlalchemy import select

    from crawler.audit.relist import hash_images
    from crawler.intel.networks import SUSPECT_VERDICTS
    from storage.models import Listing

    db = common.database()
    with db.session() as session:
        todo = list(
            session.scalars(
                select(Listing).where(
                    Listing.verdict.in_(SUSPECT_VERDICTS),
                    Listing.image_phash.is_(None),
                    Listing.image_url.is_not(None),
                )
            )
        )
        stats = hash_images(session, todo, workers=workers)
    common.console.print(
        f"{len(todo)} listing(s) without a hash: {stats['fetched']} hashed, {stats['failed']} failed"
    )


@app.command("dossier")
def dossier_command(
    network: Annotated[
        str, typer.Argument(help="Network id (NET-…), rank, or an account platform:seller_id.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the dossier into.")],
    by: Annotated[str | None, typer.Option("--by", help="Who prepares it (default: actor).")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Requesting unit named in the dossier.")] = None,
) -> None:
    """Referral dossier (PDF + XLSX, Bahasa Indonesia) for one network, signed and custody-logged.

    Example: tertib intel dossier 1 --out ./rujukan
    """
    from crawler.intel.dossier import write_dossier
    from crawler.intel.networks import find_network

    networks = _compute(False)
    found = find_network(networks, network)
    if found is None:
        raise NetworkNotFound(f"no network {network!r}: give an id (NET-…), a rank or platform:seller_id")
    settings = common.settings()
    result = write_dossier(common.database(), settings, found, out=out, actor=by, unit=unit)
    common.console.print(f"dossier {found.id} → {escape(str(result.out_dir))}")
    for name in result.files:
        common.console.print(f"  {escape(name)}")
    common.console.print(f"manifest sha256 {result.manifest_sha256}")
