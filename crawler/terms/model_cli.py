"""``tertib model …``: train, evaluate, list, show and activate the learned detection model.

Settings: ``data_dir`` (models live in ``<data_dir>/models/``), ``model`` (which model scores: ``auto`` /
``packaged`` / ``rules`` / a file), ``threshold_*`` (the verdict thresholds the figures are given at),
``actor`` (default for ``--by``). How training, the gate and the files work: :mod:`crawler.terms.train`
and :mod:`crawler.terms.model`; how the verdict combines rules and model: ``docs/terms.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from crawler import cli_common as common
from crawler.errors import UsageError
from crawler.terms import store
from crawler.terms.cli import scoring_lexicon
from crawler.terms.evaluate import evaluate, read_labelled
from crawler.terms.model import load_for_settings, load_packaged, models_dir, read_pointer
from crawler.terms.scorer import Scorer, Thresholds
from crawler.terms.train import activate, list_models, train_and_gate

app = typer.Typer(
    help="Detection model: train, eval, list, show, activate.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _figures_table(title: str, by_threshold: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=title)
    for col in ("threshold", "at", "precision", "recall", "F1", "TP", "FP", "FN", "TN"):
        table.add_column(col, justify="right" if col != "threshold" else "left")
    for name, c in by_threshold.items():
        table.add_row(
            name,
            f"{c['threshold']:.2f}",
            f"{c['precision']:.3f}",
            f"{c['recall']:.3f}",
            f"{c['f1']:.3f}",
            str(c["tp"]),
            str(c["fp"]),
            str(c["fn"]),
            str(c["tn"]),
        )
    return table


@app.command("eval")
def eval_command(
    file: Annotated[Path, typer.Argument(help="Labelled TSV: label<TAB>title[<TAB>description].")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout (for scripts).")] = False,
    mistakes: Annotated[int, typer.Option("--mistakes", "-n", min=0, help="Worst mistakes to show.")] = 10,
) -> None:
    """Precision, recall and F1 at each verdict threshold, a confusion table and the worst mistakes.

    Labels: illegal / legit (also 1/0, illegal_import, legit_*, unrelated; 'unclear' rows are skipped).
    Scores with the installation's lexicon and model (TERTIB_MODEL=rules for the rules alone).

    Example: tertib model eval my-labelled.tsv --json
    """
    settings = common.settings()
    examples, unclear = read_labelled(file)
    scorer = Scorer(scoring_lexicon(), Thresholds.from_settings(settings), load_for_settings(settings))
    report = evaluate(scorer, examples, mistakes=mistakes, unclear=unclear)
    data = report.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    console = common.console
    who = f"model {report.model_version}" if report.model_version else "rules only"
    console.print(
        f"{escape(str(file))}: {report.n} rows ({report.positives} illegal), {unclear} unclear skipped; "
        f"scored by {who} ({report.scorer_version})",
        highlight=False,
    )
    console.print(
        _figures_table("figures per verdict threshold (flagged = score ≥ threshold)", data["by_threshold"])
    )
    confusion = Table(title="confusion (rows: label, columns: verdict)")
    confusion.add_column("label")
    for verdict in ("strong", "candidate", "weak", "clear"):
        confusion.add_column(verdict, justify="right")
    for label, row in data["confusion"].items():
        confusion.add_row(label, *(str(row[v]) for v in ("strong", "candidate", "weak", "clear")))
    console.print(confusion)
    if data["by_family"]:
        fam = Table(title="per family at the candidate threshold")
        for col in ("family", "rows", "precision", "recall", "FP", "FN"):
            fam.add_column(col)
        for name, c in data["by_family"].items():
            rows = c["tp"] + c["fp"] + c["fn"] + c["tn"]
            prec = f"{c['precision']:.3f}" if c["tp"] + c["fp"] else "-"
            rec = f"{c['recall']:.3f}" if c["tp"] + c["fn"] else "-"
            fam.add_row(escape(name), str(rows), prec, rec, str(c["fp"]), str(c["fn"]))
        console.print(fam)
    if report.mistakes:
        console.print("[bold]worst mistakes[/] (furthest from the candidate threshold):")
    for m in report.mistakes:
        score = f"score {m['score']:.2f} (rules {m['rule_score']:.2f})"
        console.print(
            f"- {m['kind']}: {escape(m['title'][:120])}  [{score}, {m['verdict']}]", highlight=False
        )
        signals = ", ".join(
            f"{escape(s['matched'])}→{escape(s['term'])} {s['weight']:+.2f}" for s in m["signals"]
        )
        if signals:
            console.print(f"    rules: {signals}", highlight=False)
        feats = ", ".join(f"{escape(f['feature'])} {f['weight']:+.2f}" for f in m["features"])
        if feats:
            console.print(f"    model: {feats}", highlight=False)
        if m["product"]:
            p = m["product"]
            console.print(f"    product: {p['kind']}, {p['condition']}, bulk {p['bulk']}", highlight=False)


@app.command("train")
def train_command(
    seed: Annotated[int, typer.Option("--seed", help="Random seed (training is deterministic for it).")] = 0,
    force: Annotated[
        bool, typer.Option("--force", help="Activate even if held-out figures are worse (custody-logged).")
    ] = False,
    by: Annotated[
        str | None, typer.Option("--by", help="Who trains (default: settings actor / $USER).")
    ] = None,
) -> None:
    """Retrain from the packaged corpus plus every review decision; activate only if at least as good.

    Example: tertib model train --by "Siti (PKTN)"
    """
    settings = common.settings()
    actor = by or settings.actor_name()
    with common.database().session() as session:
        lexicon = store.load_lexicon(session)
        with common.err_console.status("training") as status:
            model, result = train_and_gate(
                session, settings, lexicon, actor=actor, seed=seed, force=force, progress=status.update
            )
    card = model.card
    console = common.console
    data = card["data"]
    console.print(
        f"trained {model.version}: {data['train']['rows']} training rows "
        f"({data['decisions']['approve']} approve / {data['decisions']['reject']} reject decisions, "
        f"decision weight share {data['train']['decision_weight_share']:.0%}), "
        f"{data['heldout']['rows']} held out",
        highlight=False,
    )
    console.print(
        _figures_table("cross-validation (training rows)", card["cross_validation"]["by_threshold"])
    )
    if card.get("heldout"):
        console.print(_figures_table("held-out rows", card["heldout"]["by_threshold"]))
    if result.activated and result.forced:
        console.print(f"[bold yellow]activated by --force[/] ({escape(result.reason)})", highlight=False)
    elif result.activated:
        console.print(f"[bold green]activated[/]: {escape(result.reason)}", highlight=False)
    else:
        console.print(
            f"[bold red]not activated[/], {escape(result.active_version or 'the active model')} stays: "
            f"{escape(result.reason)} (use --force to override)",
            highlight=False,
        )


@app.command("list")
def list_command() -> None:
    """Models trained in this installation, newest first; the active one marked.

    Example: tertib model list
    """
    settings = common.settings()
    cards = list_models(Path(settings.data_dir))
    table = Table(title="detection models")
    for col in ("active", "version", "created", "train rows", "decisions", "held-out P", "held-out R"):
        table.add_column(col)
    for card in cards:
        held = (card.get("heldout") or {}).get("by_threshold", {}).get("candidate", {})
        dec = (card.get("data") or {}).get("decisions", {})
        table.add_row(
            "*" if card.get("active") else "",
            escape(str(card.get("version"))),
            str(card.get("created_at", "-")),
            str((card.get("data") or {}).get("train", {}).get("rows", "-")),
            f"{dec.get('approve', 0)}/{dec.get('reject', 0)}",
            f"{held['precision']:.3f}" if held else "-",
            f"{held['recall']:.3f}" if held else "-",
        )
    pointer = read_pointer(Path(settings.data_dir))
    packaged = load_packaged()
    held = packaged.card.get("heldout", {}).get("by_threshold", {}).get("candidate", {})
    table.add_row(
        "" if pointer else "*",
        f"{escape(packaged.version)} (packaged)",
        str(packaged.card.get("created_at", "-")),
        str(packaged.card.get("data", {}).get("train", {}).get("rows", "-")),
        "0/0",
        f"{held['precision']:.3f}" if held else "-",
        f"{held['recall']:.3f}" if held else "-",
    )
    common.console.print(table)


@app.command("show")
def show_command(
    version: Annotated[
        str | None, typer.Argument(help="Model version (default: the one scoring now).")
    ] = None,
) -> None:
    """Print a model card as JSON. Example: tertib model show"""
    settings = common.settings()
    if version is None:
        model = load_for_settings(settings)
        if model is None:
            raise UsageError("TERTIB_MODEL=rules: no model is scoring")
        card = {**model.card, "sha256": model.sha256}
    else:
        path = models_dir(Path(settings.data_dir)) / f"{version}.card.json"
        if not path.is_file():
            raise UsageError(f"no model {version!r} (see `tertib model list`)")
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise UsageError(f"model card {path} is unreadable") from None
    sys.stdout.write(json.dumps(card, indent=2, ensure_ascii=False) + "\n")


@app.command("activate")
def activate_command(
    version: Annotated[str, typer.Argument(help="A version from `tertib model list`.")],
    by: Annotated[str | None, typer.Option("--by", help="Who activates (custody-logged).")] = None,
) -> None:
    """Make an earlier model of this installation active again (hash-checked, custody-logged).

    Example: tertib model activate tm-20261201-040000-1a2b3c4d --by "Siti (PKTN)"
    """
    settings = common.settings()
    with common.database().session() as session:
        model = activate(session, Path(settings.data_dir), version, actor=by or settings.actor_name())
    common.console.print(f"activated {escape(model.version)}", highlight=False)
