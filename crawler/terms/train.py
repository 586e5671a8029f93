"""Training the detection model from the project's corpus and the reviewers' decisions, and the retrain gate.

``tertib model train`` (:func:`train_and_gate`), in order:

1. **Data.** The packaged corpus (``crawler/data/corpus.tsv``, built by ``scripts/build_corpus.py``; its
   ``train`` rows) plus every review decision in the database: per listing its latest decision (approve →
   illegal import, reject → legitimate), simulated decisions (the demo's robot reviewer) left out. Each
   decision weighs :data:`DECISION_WEIGHT` corpus rows, so decisions outweigh the corpus as they
   accumulate (at 1/3 of the corpus' size they weigh as much as all of it); a corpus row whose text a
   reviewer has decided is replaced by the decision. A fixed fifth of the decided listings (by a hash of
   the listing key, :func:`decision_split`) is held out with the corpus' held-out rows, never trained on.
2. **Features** (:func:`crawler.terms.features.featurize`) with the installation's active lexicon: words
   and character n-grams seen in at least :data:`MIN_DF` training texts, all rule/product features. The
   corpus rows are joined by masked copies (:mod:`crawler.terms.augment`: "b*l", "thr1ft", "ʙᴀʟ", "b a l"
   …, half a row's weight each, both labels), never validated on and never in the fold of their row.
3. **Fit.** L2-regularised logistic regression (scikit-learn, liblinear, balanced classes); ``C`` chosen by
   stratified 5-fold cross-validation on the training rows: the smallest C (the most regularised model)
   whose out-of-fold log loss is within 1 % of the best; Platt calibration fitted on the out-of-fold
   linear scores (as ``CalibratedClassifierCV(method="sigmoid", ensemble=False)`` does). Deterministic
   for a seed.
4. **Card.** Data counts, cross-validated and held-out precision/recall/F1 per threshold, date, code
   version, seed, lexicon hash.
5. **Gate.** The new model and the active one are measured on the same held-out rows; the new one is
   activated only if its F1 *and* its precision at the candidate threshold are at least the active
   model's (``--force`` activates anyway, and the custody log says so). Refused models stay on disk.
6. **Custody.** ``model_train`` (card summary, gate result) and ``model_activate`` / ``model_refused``
   entries, under the actor.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler import __version__
from crawler.errors import TertibError, UsageError
from crawler.terms.augment import augment
from crawler.terms.evaluate import Counts, Example, Report, evaluate
from crawler.terms.features import FEATURIZER_VERSION, featurize
from crawler.terms.lexicon import Lexicon
from crawler.terms.model import (
    Model,
    ModelError,
    atomic_write,
    load_active,
    models_dir,
    read_pointer,
    write_pointer,
)
from crawler.terms.normalise import normalise
from crawler.terms.scorer import SCORER_VERSION, Scorer, Thresholds
from storage import custody
from storage.models import Listing, ReviewDecision

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus.tsv"
DECISION_WEIGHT = 3.0
DECISION_HELDOUT = 0.2
MIN_DF = 2
C_GRID = (0.1, 0.3, 1.0, 3.0)
LOSS_TOLERANCE = 0.01
FOLDS = 5
DEFAULT_SEED = 0


class TrainingError(TertibError):
    """Training cannot run (no data, one class only, a broken corpus)."""


def load_corpus(path: Path = CORPUS) -> list[Example]:
    """The labelled corpus: ``split, label, family, source, title, description`` per row."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise TrainingError(f"cannot read the corpus {path}: {exc.strerror}") from None
    out: list[Example] = []
    with handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for lineno, row in enumerate(reader, start=2):
            try:
                label = {"illegal": 1, "legit": 0}[row["label"]]
                out.append(
                    Example(
                        title=row["title"],
                        description=row.get("description") or "",
                        label=label,
                        family=row["family"],
                        source=row["source"],
                        split=row["split"],
                    )
                )
            except (KeyError, TypeError):
                raise TrainingError(f"{path}:{lineno}: malformed corpus row") from None
    return out


def decision_split(listing_key: str) -> str:
    digest = hashlib.sha256(listing_key.encode("utf-8")).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < DECISION_HELDOUT else "train"


def load_decisions(session: Session) -> list[Example]:
    """Per listing its latest non-simulated decision, as a weighted example."""
    from sqlalchemy import select

    rows = session.execute(
        select(
            ReviewDecision.listing_id,
            ReviewDecision.decision,
            ReviewDecision.decided_at,
            ReviewDecision.id,
            Listing.listing_key,
            Listing.title,
            Listing.description,
        )
        .join(Listing, Listing.id == ReviewDecision.listing_id)
        .where(ReviewDecision.simulated.is_(False))
        .order_by(ReviewDecision.listing_id, ReviewDecision.decided_at, ReviewDecision.id)
    ).all()
    latest: dict[int, Any] = {}
    for row in rows:
        latest[row.listing_id] = row  # ordered: the last one per listing wins
    out = []
    for row in latest.values():
        out.append(
            Example(
                title=row.title or "",
                description=row.description or "",
                label=1 if row.decision == "approve" else 0,
                family="review-decision",
                source=f"decision:{row.listing_key}",
                split=decision_split(row.listing_key),
                weight=DECISION_WEIGHT,
                key=row.listing_key,
            )
        )
    return out


def merge(corpus: Sequence[Example], decisions: Sequence[Example]) -> list[Example]:
    """Corpus rows plus decisions; a decided text replaces the corpus row with the same text."""
    decided = {normalise(d.text).text for d in decisions}
    kept = [ex for ex in corpus if normalise(ex.text).text not in decided] if decided else list(corpus)
    return kept + list(decisions)


# -- features to matrices -----------------------------------------------------------------------------


def feature_dicts(examples: Sequence[Example], lexicon: Lexicon) -> list[dict[str, float]]:
    rules = Scorer(lexicon)
    out = []
    for ex in examples:
        norm = normalise(ex.text)
        out.append(featurize(norm.text.split(), rules.rule_result(norm)))
    return out


def vocabulary(dicts: Sequence[dict[str, float]], min_df: int = MIN_DF) -> dict[str, int]:
    df: Counter[str] = Counter()
    for d in dicts:
        df.update(d.keys())
    names = sorted(n for n, c in df.items() if c >= min_df or n[:2] in ("r:", "p:", "x:"))
    return {n: i for i, n in enumerate(names)}


def matrix(dicts: Sequence[dict[str, float]], vocab: dict[str, int]) -> Any:
    from scipy.sparse import csr_matrix

    data: list[float] = []
    cols: list[int] = []
    indptr = [0]
    for d in dicts:
        for name, value in d.items():
            j = vocab.get(name)
            if j is not None:
                cols.append(j)
                data.append(value)
        indptr.append(len(cols))
    return csr_matrix((data, cols, indptr), shape=(len(dicts), len(vocab)), dtype="float64")


# -- fitting ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Fit:
    model: Model
    c: float
    cv: dict[str, Any]
    vocab_size: int
    oof: list[float] = field(default_factory=list)
    masked_copies: int = 0


def _classifier(c: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=c, solver="liblinear", class_weight="balanced", max_iter=1000, random_state=seed
    )


def _platt(z: Sequence[float], y: Sequence[int]) -> tuple[float, float]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000)
    lr.fit(np.asarray(z).reshape(-1, 1), np.asarray(y))
    return float(lr.coef_[0][0]), float(lr.intercept_[0])


def _oof_scores(x: Any, y: Any, w: Any, c: float, seed: int, held: Any, origin: Any) -> Any:
    """Out-of-fold linear scores of the rows ``held`` indexes (generated rows always stay in training:
    template rows in both halves of a fold would flatter the figures; a masked copy of a row, whose
    ``origin`` is that row, never trains the fold that validates on the row)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    z = np.zeros(len(held))
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    everyone = np.arange(len(y))
    for _fold_train, fold_test in folds.split(np.zeros(len(held)), y[held]):
        test_idx = held[fold_test]
        train_idx = everyone[~np.isin(origin, test_idx)]
        clf = _classifier(c, seed)
        clf.fit(x[train_idx], y[train_idx], sample_weight=w[train_idx])
        z[fold_test] = clf.decision_function(x[test_idx])
    return z


def _counts_at(p: Sequence[float], y: Sequence[int], threshold: float) -> dict[str, Any]:
    counts = Counts()
    for pi, yi in zip(p, y, strict=True):
        counts.add(int(yi), pi >= threshold)
    return counts.to_dict()


def fit(
    examples: Sequence[Example],
    lexicon: Lexicon,
    *,
    seed: int = DEFAULT_SEED,
    thresholds: Thresholds | None = None,
    c_grid: Sequence[float] = C_GRID,
    progress: Callable[[str], None] | None = None,
    masked: bool = True,
) -> Fit:
    """Fit a calibrated model on ``examples`` (their ``weight`` is the sample weight) and, with ``masked``,
    masked copies of them (:func:`crawler.terms.augment.augment`); deterministic for ``seed``."""
    import numpy as np

    t = thresholds or Thresholds()
    y = np.asarray([ex.label for ex in examples])
    if len(set(y.tolist())) < 2 or min(int(y.sum()), int(len(y) - y.sum())) < FOLDS:
        raise TrainingError("training needs at least 5 examples of each label")
    copies = augment(examples, seed) if masked else []
    original = len(examples)
    examples = [*examples, *(a.example for a in copies)]
    origin = np.asarray([*range(original), *(a.origin for a in copies)])
    y = np.asarray([ex.label for ex in examples])
    w = np.asarray([ex.weight for ex in examples], dtype="float64")
    say = progress or (lambda _msg: None)
    say(f"features for {len(examples)} texts ({len(copies)} of them masked copies)")
    dicts = feature_dicts(examples, lexicon)
    vocab = vocabulary(dicts)
    x = matrix(dicts, vocab)
    held = np.asarray([i for i, ex in enumerate(examples) if ex.source not in ("generated", "augmented")])
    if len(held) < 2 * FOLDS or len(set(y[held].tolist())) < 2:
        held = np.arange(len(y))
    yh = y[held]
    tried: list[tuple[float, float, Any]] = []  # (C, out-of-fold log loss, z)
    for c in sorted(c_grid):
        say(f"cross-validating C={c}")
        z = _oof_scores(x, y, w, c, seed, held, origin)
        a, b = _platt(z, yh)
        p = np.clip(1.0 / (1.0 + np.exp(-(a * z + b))), 1e-9, 1 - 1e-9)
        loss = float(-np.mean(yh * np.log(p) + (1 - yh) * np.log(1 - p)))
        tried.append((c, loss, z))
    # the most regularised C whose log loss is within LOSS_TOLERANCE of the best: a simpler model
    # generalises better to text written by other hands, and the figures barely differ
    best_loss = min(loss for _, loss, _ in tried)
    c, _loss, z = next(item for item in tried if item[1] <= best_loss * (1 + LOSS_TOLERANCE))
    a, b = _platt(z, yh)
    oof = (1.0 / (1.0 + np.exp(-(a * z + b)))).tolist()
    y_cv = yh.tolist()
    say(f"fitting C={c} on all {len(examples)} texts")
    clf = _classifier(c, seed)
    clf.fit(x, y, sample_weight=w)
    names = sorted(vocab, key=vocab.__getitem__)
    coef = clf.coef_[0]
    weights = {names[j]: round(float(coef[j]), 6) for j in range(len(names)) if abs(coef[j]) >= 1e-6}
    cv = {
        "folds": FOLDS,
        "rows": len(y_cv),
        "note": "out-of-fold figures on the non-generated training rows",
        "C": c,
        "log_loss_by_C": {str(ci): round(li, 5) for ci, li, _ in tried},
        "by_threshold": {
            name: {"threshold": value, **_counts_at(oof, y_cv, value)}
            for name, value in (("strong", t.strong), ("candidate", t.candidate), ("weak", t.weak))
        },
    }
    model = Model(
        version="unversioned",
        weights=weights,
        intercept=round(float(clf.intercept_[0]), 6),
        calibration=(round(a, 6), round(b, 6)),
    )
    return Fit(model=model, c=c, cv=cv, vocab_size=len(vocab), oof=oof, masked_copies=len(copies))


def version_for(model: Model, when: datetime) -> str:
    digest = hashlib.sha256(
        repr((sorted(model.weights.items()), model.intercept, model.calibration)).encode()
    ).hexdigest()
    return f"tm-{when:%Y%m%d-%H%M%S}-{digest[:8]}"


def code_version() -> str:
    return f"tertib {__version__} / {SCORER_VERSION} / featurizer {FEATURIZER_VERSION}"


def describe_data(examples: Sequence[Example]) -> dict[str, Any]:
    by_source: Counter[str] = Counter(ex.source.split(":")[0] for ex in examples)
    return {
        "rows": len(examples),
        "illegal": sum(ex.label for ex in examples),
        "legit": sum(1 - ex.label for ex in examples),
        "by_source": dict(sorted(by_source.items())),
        "weight_total": round(sum(ex.weight for ex in examples), 2),
        "decision_weight_share": round(
            sum(ex.weight for ex in examples if ex.source.startswith("decision:"))
            / max(sum(ex.weight for ex in examples), 1e-9),
            4,
        ),
    }


def heldout_figures(scorer: Scorer, heldout: Sequence[Example]) -> dict[str, Any]:
    if not heldout:
        return {}
    report = evaluate(scorer, heldout, mistakes=0)
    return {
        "rows": report.n,
        "illegal": report.positives,
        "by_threshold": {
            k: {"threshold": report.thresholds[k], **c.to_dict()} for k, c in report.by_threshold.items()
        },
        "by_family": {k: c.to_dict() for k, c in sorted(report.by_family.items())},
    }


def train(
    corpus: Sequence[Example],
    decisions: Sequence[Example],
    lexicon: Lexicon,
    *,
    seed: int = DEFAULT_SEED,
    thresholds: Thresholds | None = None,
    when: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    c_grid: Sequence[float] = C_GRID,
) -> tuple[Model, list[Example]]:
    """Fit on the training rows, write the card; returns the model and the held-out rows."""
    when = when or datetime.now(UTC)
    t = thresholds or Thresholds()
    everything = merge(corpus, decisions)
    training = [ex for ex in everything if ex.split != "heldout"]
    heldout = [ex for ex in everything if ex.split == "heldout"]
    result = fit(training, lexicon, seed=seed, thresholds=t, progress=progress, c_grid=c_grid)
    model = result.model
    model.version = version_for(model, when)
    scorer = Scorer(lexicon, t, model)
    model.card = {
        "version": model.version,
        "created_at": when.isoformat(timespec="seconds"),
        "code_version": code_version(),
        "seed": seed,
        "algorithm": "logistic regression (liblinear, L2, balanced classes) + Platt calibration",
        "C": result.c,
        "features": result.vocab_size,
        "nonzero_weights": len(model.weights),
        "lexicon_hash": lexicon.content_hash(),
        "decision_weight": DECISION_WEIGHT,
        "data": {
            "train": describe_data(training),
            "masked_copies": result.masked_copies,
            "heldout": describe_data(heldout),
            "decisions": {
                "approve": sum(d.label for d in decisions),
                "reject": sum(1 - d.label for d in decisions),
                "heldout": sum(1 for d in decisions if d.split == "heldout"),
            },
        },
        "cross_validation": result.cv,
        "heldout": heldout_figures(scorer, heldout),
    }
    return model, heldout


# -- the installation's models: train, gate, activate -----------------------------------------------


@dataclass(slots=True)
class GateResult:
    activated: bool
    forced: bool
    reason: str
    new: dict[str, Any]
    active: dict[str, Any] | None
    active_version: str


def gate(new: Report, active: Report | None) -> tuple[bool, str]:
    """At least as good: F1 and precision at the candidate threshold not below the active model's."""
    if active is None:
        return True, "no active model to compare with"
    n, a = new.candidate, active.candidate
    if n.f1 + 1e-9 >= a.f1 and n.precision + 1e-9 >= a.precision:
        return (
            True,
            f"held-out F1 {n.f1:.3f} ≥ {a.f1:.3f} and precision {n.precision:.3f} ≥ {a.precision:.3f}",
        )
    return False, (
        f"held-out F1 {n.f1:.3f} vs active {a.f1:.3f}, precision {n.precision:.3f} vs {a.precision:.3f}: "
        "not at least as good"
    )


def train_and_gate(
    session: Session,
    settings: Any,
    lexicon: Lexicon,
    *,
    actor: str,
    seed: int = DEFAULT_SEED,
    force: bool = False,
    corpus_path: Path = CORPUS,
    progress: Callable[[str], None] | None = None,
    c_grid: Sequence[float] = C_GRID,
) -> tuple[Model, GateResult]:
    """Steps 1–6 of the module docstring. The caller commits the session (custody entries)."""
    thresholds = Thresholds.from_settings(settings)
    corpus = load_corpus(corpus_path)
    decisions = load_decisions(session)
    model, heldout = train(
        corpus, decisions, lexicon, seed=seed, thresholds=thresholds, progress=progress, c_grid=c_grid
    )
    data_dir = Path(settings.data_dir)
    directory = models_dir(data_dir)
    path = directory / f"{model.version}.json.gz"
    sha = model.save(path)
    model.sha256 = sha
    card = {**model.card, "sha256": sha, "file": path.name}
    import json

    atomic_write(
        directory / f"{model.version}.card.json",
        json.dumps(card, indent=2, ensure_ascii=False).encode("utf-8"),
    )
    # 5. gate: both models on the same held-out rows, with the same lexicon and thresholds
    new_report = evaluate(Scorer(lexicon, thresholds, model), heldout, mistakes=0) if heldout else None
    try:
        active = load_active(data_dir)
    except ModelError as exc:
        log.warning("the active model cannot be loaded (%s); the new model is compared with nothing", exc)
        active = None
    active_report = (
        evaluate(Scorer(lexicon, thresholds, active), heldout, mistakes=0) if active and heldout else None
    )
    if new_report is None:
        ok, reason = False, "no held-out rows to measure the new model on"
    else:
        ok, reason = gate(new_report, active_report)
    activated = ok or force
    result = GateResult(
        activated=activated,
        forced=force and not ok,
        reason=reason,
        new=new_report.candidate.to_dict() if new_report else {},
        active=active_report.candidate.to_dict() if active_report else None,
        active_version=active.version if active else "",
    )
    # 6. custody
    custody.append(
        session,
        actor=actor,
        action="model_train",
        object_type="model",
        object_id=model.version,
        details={
            "sha256": sha,
            "file": str(path),
            "seed": seed,
            "data": card["data"],
            "cross_validation_candidate": card["cross_validation"]["by_threshold"]["candidate"],
            "heldout_candidate": result.new,
            "compared_with": result.active_version,
            "compared_candidate": result.active,
            "gate": reason,
        },
    )
    if activated:
        _activate(
            session, data_dir, model.version, sha, actor=actor, forced=result.forced, gate=reason,
            previous=result.active_version,
        )  # fmt: skip
    else:
        custody.append(
            session,
            actor=actor,
            action="model_refused",
            object_type="model",
            object_id=model.version,
            details={"sha256": sha, "gate": reason, "kept": result.active_version},
        )
    return model, result


def list_models(data_dir: Path) -> list[dict[str, Any]]:
    """Cards of the models trained in this installation, newest first, with the active one marked."""
    import json

    pointer = read_pointer(data_dir)
    active = pointer.get("version") if pointer else None
    cards = []
    for path in sorted(models_dir(data_dir).glob("*.card.json"), reverse=True):
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            card = {"version": path.name.removesuffix(".card.json"), "error": "unreadable card"}
        card["active"] = card.get("version") == active
        cards.append(card)
    return cards


def activate(session: Session, data_dir: Path, version: str, *, actor: str) -> Model:
    """Make an earlier model of this installation active again (its hash is checked first)."""
    import json

    directory = models_dir(data_dir)
    card_path = directory / f"{version}.card.json"
    if not card_path.is_file():
        raise UsageError(f"no model {version!r} in {directory} (see `tertib model list`)")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        sha = str(card["sha256"])
    except (OSError, ValueError, KeyError):
        raise ModelError(f"model card {card_path} is unreadable") from None
    model = Model.load(directory / f"{version}.json.gz", sha)
    pointer = read_pointer(data_dir)
    previous = pointer.get("version", "") if pointer else ""
    _activate(
        session, data_dir, version, sha, actor=actor, forced=True, gate="activated by hand", previous=previous
    )
    return model


def _activate(
    session: Session, data_dir: Path, version: str, sha: str, *, actor: str, forced: bool, gate: str,
    previous: str,
) -> None:  # fmt: skip
    """Point the installation at a model (atomic pointer write) and custody-log it."""
    write_pointer(
        data_dir,
        {
            "version": version,
            "sha256": sha,
            "file": f"{version}.json.gz",
            "activated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "activated_by": actor,
            "forced": forced,
            "previous": previous,
        },
    )
    custody.append(
        session,
        actor=actor,
        action="model_activate",
        object_type="model",
        object_id=version,
        details={"sha256": sha, "forced": forced, "gate": gate, "previous": previous},
    )
