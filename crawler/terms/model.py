"""The learned model beside the rules: a calibrated linear model over :mod:`crawler.terms.features`.

What a model is: weights for named features (:func:`crawler.terms.features.featurize`), an intercept, and a
Platt calibration ``p = 1 / (1 + exp(-(a·z + b)))`` of the linear score ``z``. Nothing else: no pickles, no
scikit-learn objects — scoring needs only this module, and a model file cannot run code.

The artefact is one gzip-compressed JSON file (``<version>.json.gz``) holding ``format``,
``format_version`` (:data:`FORMAT_VERSION`), ``featurizer`` (:data:`~crawler.terms.features.
FEATURIZER_VERSION`), ``version``, the weights, the calibration and the model card (data counts,
cross-validated and held-out figures, date, code version, seed). A model is accepted only when its SHA-256
matches the one recorded where it was activated, so a truncated, edited or swapped file never scores:

- the **packaged** model (``crawler/data/model/model.json.gz``, its hash in ``crawler/data/model/
  card.json``) ships in the wheel: ``echo "bal korea isi 300 pcs" | tertib score`` works on a fresh machine;
- the **active** model of an installation (``<data_dir>/models/active.json`` names the version and its
  hash) is written by ``tertib model train`` (:mod:`crawler.terms.train`). When that pointer exists it is
  used, and a missing or broken file is an error (never a silent fall-back to another model).

Settings: ``model`` (``TERTIB_MODEL``): ``auto`` (the active model, else the packaged one — the default),
``packaged``, ``rules`` (the rules alone: the score is the rule score), or a path to a model file (its
hash is checked against the card beside it, ``<name>.card.json``, when there is one).

Speed: :meth:`Model.linear` sums one memoised number per distinct word (its word and character-n-gram
weights, :meth:`Model.word_weight`), one dictionary look-up per adjacent pair, and the few rule/product
features; so a title costs a few microseconds once its words have been seen.
"""

from __future__ import annotations

import gzip
import hashlib
import heapq
import json
import math
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.errors import TertibError
from crawler.terms.features import (
    FEATURIZER_VERSION,
    FUNCTION_WORDS,
    NGRAMS,
    context_features,
    cross_features,
    fact_features,
    length_scale,
    rule_continuous,
    rule_discrete,
    shape,
)
from crawler.terms.product import ProductFacts, facts_from_token_flags, token_flags

if TYPE_CHECKING:
    from crawler.terms.normalise import Normalised
    from crawler.terms.scorer import ScoreResult

FORMAT = "tertib-detection-model"
FORMAT_VERSION = 1
PACKAGED_DIR = Path(__file__).resolve().parent.parent / "data" / "model"
PACKAGED_MODEL = PACKAGED_DIR / "model.json.gz"
PACKAGED_CARD = PACKAGED_DIR / "card.json"
ACTIVE_POINTER = "active.json"
_WORD_MEMO_MAX = 200_000
TOP_FEATURES = 6


class ModelError(TertibError):
    """A model file is missing, truncated, tampered with, or from another format/featurizer version."""


def atomic_write(path: Path, data: bytes) -> None:
    """Write a model file or pointer atomically (``storage.blobs.write_atomic``)."""
    from storage.blobs import write_atomic

    write_atomic(path, data)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass(slots=True)
class Prediction:
    """The model's answer for one text: calibrated probability, linear score, product facts."""

    probability: float
    linear: float
    facts: ProductFacts
    # the rule features: (discrete (name, value) pairs, continuous (name, value) pairs)
    rules: Any = ((), ())

    def context(self, weights: dict[str, float]) -> list[tuple[str, float]]:
        """(name, contribution) of the rule, product and interaction features with a weight."""
        discrete, continuous = self.rules
        items = [(k, weights.get(k, 0.0) * v) for k, v in (*discrete, *continuous)]
        rule_names = tuple(k for k, _ in discrete)
        items += [(k, weights.get(k, 0.0)) for k in context_features(rule_names, self.facts)]
        return [(k, c) for k, c in items if c]


class Model:
    """A loaded model. :meth:`predict` is pure apart from its bounded per-word memo (safe to share)."""

    def __init__(
        self,
        *,
        version: str,
        weights: dict[str, float],
        intercept: float,
        calibration: tuple[float, float],
        card: dict[str, Any] | None = None,
        featurizer: str = FEATURIZER_VERSION,
        sha256: str = "",
    ) -> None:
        if featurizer != FEATURIZER_VERSION:
            raise ModelError(
                f"model {version} was trained with featurizer {featurizer}; this tertib uses "
                f"{FEATURIZER_VERSION} (retrain with `tertib model train`)"
            )
        self.version = version
        self.weights = weights
        self.intercept = intercept
        self.calibration = calibration
        self.card = card or {}
        self.featurizer = featurizer
        self.sha256 = sha256
        self._words: dict[str, tuple[str, float, tuple[str, ...]]] = {}
        self._rule_sums: dict[tuple[tuple[str, float], ...], tuple[float, tuple[str, ...]]] = {}
        self._fact_sums: dict[tuple[str, ...], float] = {}
        self._cross_sums: dict[tuple[str, tuple[str, ...]], float] = {}
        # pair weights by first word, then second ("b:a b" → _pairs[a][b]), word and n-gram weights
        # without their prefixes: no feature name is built while scoring
        self._pairs: dict[str, dict[str, float]] = {}
        self._word_only: dict[str, float] = {}
        self._chars: dict[str, float] = {}
        for name, weight in weights.items():
            if name.startswith("b:"):
                first, _, second = name[2:].partition(" ")
                self._pairs.setdefault(first, {})[second] = weight
            elif name.startswith("w:"):
                self._word_only[name[2:]] = weight
            elif name.startswith("c:"):
                self._chars[name[2:]] = weight

    # -- scoring ----------------------------------------------------------------------------------
    def word_weight(self, token: str) -> tuple[str, float, tuple[str, ...]]:
        """``(shape, Σ weights of the word's own features, its product flags)`` for one distinct word
        (memoised)."""
        hit = self._words.get(token)
        if hit is None:
            shaped = shape(token)
            # words that differ only in their digits ("300pcs", "500pcs") share one entry
            hit = self._words.get(shaped) if shaped != token else None
            if hit is None:
                hit = (shaped, self._own_weight(token, shaped), token_flags(token))
            if len(self._words) >= _WORD_MEMO_MAX:
                self._words.clear()
            self._words[token] = hit
            self._words[shaped] = hit
        return hit

    def _own_weight(self, token: str, shaped: str) -> float:
        """Σ of the word's ``w:`` and ``c:`` feature weights (:func:`~crawler.terms.features.word_features`,
        read from prefix-free tables so no feature name is built)."""
        if token in FUNCTION_WORDS:
            return 0.0
        chars = self._chars
        padded = f" {shaped} "
        size = len(padded)
        total = self._word_only.get(shaped, 0.0)
        for n in NGRAMS:
            if n > size:
                break
            total += sum([chars.get(padded[i : i + n], 0.0) for i in range(size - n + 1)])
        return total

    def linear(self, tokens: list[str], result: ScoreResult | None) -> tuple[float, ProductFacts, Any]:
        """The uncalibrated score ``z``, the product facts, and the rule features (discrete, continuous)
        an explanation needs."""
        w = self.weights
        get_word = self._words.get
        word_weight = self.word_weight
        hits = [get_word(t) or word_weight(t) for t in tokens]
        distinct = len(set(tokens))
        shapes = [h[0] for h in hits]
        if distinct == len(tokens):
            text_z = sum([h[1] for h in hits])
        else:  # a word counts once, as in training
            text_z = sum([h[1] for h in dict(zip(tokens, hits, strict=True)).values()])
        # a pair counts once too (pairs are of shapes: "0812 1111" and "1111 2222" are both "0 0")
        pairs: Any = pairwise(shapes) if len(set(shapes)) == len(shapes) else set(pairwise(shapes))
        get_pairs = self._pairs.get
        text_z += sum([following.get(b, 0.0) for a, b in pairs if (following := get_pairs(a)) is not None])
        z = self.intercept + text_z * length_scale(distinct)
        facts = facts_from_token_flags([h[2] for h in hits], tokens)
        # the rule and product features other than the rule score take few distinct values: their
        # summed weights are memoised (per rule-signal set, per fact set, per role and fact set)
        discrete = rule_discrete(result)
        rule_sum = self._rule_sums.get(discrete)
        if rule_sum is None:
            roles = tuple(k[7:] for k, _ in discrete if k.startswith("r:role:"))
            rule_sum = self._rule_sums[discrete] = (sum(w.get(k, 0.0) * v for k, v in discrete), roles)
        names = facts.names
        fact_sum = self._fact_sums.get(names)
        if fact_sum is None:
            fact_sum = self._fact_sums[names] = sum(w.get(k, 0.0) for k in fact_features(names))
        z += rule_sum[0] + fact_sum
        for role in rule_sum[1]:
            cross = self._cross_sums.get((role, names))
            if cross is None:
                cross = self._cross_sums[(role, names)] = sum(
                    w.get(k, 0.0) for k in cross_features(role, names)
                )
            z += cross
        continuous = rule_continuous(result)
        for name, value in continuous:
            z += w.get(name, 0.0) * value
        if len(self._rule_sums) + len(self._cross_sums) > _WORD_MEMO_MAX:  # bounded, like the word memo
            self._rule_sums.clear()
            self._cross_sums.clear()
        parts = (discrete, continuous)
        return z, facts, parts

    def calibrate(self, z: float) -> float:
        a, b = self.calibration
        return _sigmoid(a * z + b)

    def predict(self, tokens: list[str], result: ScoreResult | None) -> Prediction:
        z, facts, rules = self.linear(tokens, result)
        return Prediction(self.calibrate(z), z, facts, rules)

    def predict_text(self, text: str, result: ScoreResult | None = None) -> Prediction:
        from crawler.terms.normalise import normalise

        return self.predict(normalise(text).text.split(), result)

    # -- explanations -----------------------------------------------------------------------------
    def top_features(
        self, norm: Normalised, prediction: Prediction, limit: int = TOP_FEATURES
    ) -> list[dict[str, Any]]:
        """The features that moved this text's score most, with their spans in the original text.

        Each entry: ``feature`` (readable name), ``weight`` (its contribution to the linear score; > 0
        towards an illegal import), ``span``/``matched`` (the words it rests on, in the original text;
        absent for rule and product features, whose own signals carry spans).
        """
        words = norm.text.split()
        starts: list[int] = []
        pos = 0
        for word in words:  # token offsets in the normalised text (single spaces between tokens)
            starts.append(pos)
            pos += len(word) + 1
        out: list[tuple[float, str, tuple[int, int] | None]] = []
        seen: set[str] = set()
        scale = length_scale(len(set(words)))
        for tok, start in zip(words, starts, strict=True):
            if tok in seen:
                continue
            seen.add(tok)
            weight = self.word_weight(tok)[1] * scale
            if weight:
                out.append((weight, tok, (start, start + len(tok))))
        pairs: set[tuple[str, str]] = set()
        for i in range(len(words) - 1):
            a, b = words[i], words[i + 1]
            weight = self._pairs.get(self.word_weight(a)[0], {}).get(self.word_weight(b)[0], 0.0) * scale
            if weight and (a, b) not in pairs:
                pairs.add((a, b))
                out.append((weight, f"{a} {b}", (starts[i], starts[i + 1] + len(b))))
        for name, weight in prediction.context(self.weights):
            out.append((weight, name, None))
        top: list[dict[str, Any]] = []
        for weight, name, nspan in heapq.nlargest(limit, out, key=lambda e: abs(e[0])):
            if nspan is None:
                feature = _readable(name)
            elif " " in name:
                feature = f"words '{name}'"
            else:
                feature = f"word '{name}'"
            item: dict[str, Any] = {"feature": feature, "weight": round(weight, 4)}
            if nspan is not None:
                lo, hi = norm.original_span(*nspan)
                item["span"] = [lo, hi]
                item["matched"] = norm.original[lo:hi]
            top.append(item)
        return top

    # -- files ------------------------------------------------------------------------------------
    def to_payload(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "featurizer": self.featurizer,
            "version": self.version,
            "intercept": self.intercept,
            "calibration": list(self.calibration),
            "weights": dict(sorted(self.weights.items())),
            "card": self.card,
        }

    def to_bytes(self) -> bytes:
        raw = json.dumps(self.to_payload(), ensure_ascii=False, sort_keys=True).encode("utf-8")
        return gzip.compress(raw, compresslevel=9, mtime=0)  # mtime 0: same model, same bytes

    def save(self, path: Path) -> str:
        """Write the artefact atomically; returns its SHA-256."""
        data = self.to_bytes()
        atomic_write(path, data)
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def load(cls, path: Path, expected_sha256: str | None = None) -> Model:
        """Read and verify an artefact; any problem is one :class:`ModelError` line."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"model file {path} is missing") from None
        except OSError as exc:
            raise ModelError(f"cannot read model file {path}: {exc.strerror}") from None
        digest = hashlib.sha256(data).hexdigest()
        if expected_sha256 and digest != expected_sha256:
            raise ModelError(
                f"model file {path} does not match its recorded SHA-256 (truncated or altered): "
                f"{digest[:12]} != {expected_sha256[:12]}"
            )
        try:
            payload = json.loads(gzip.decompress(data).decode("utf-8"))
        except (OSError, EOFError, UnicodeDecodeError, ValueError):
            raise ModelError(f"model file {path} is truncated or not a tertib model") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ModelError(f"{path} is not a tertib detection model")
        if payload.get("format_version") != FORMAT_VERSION:
            raise ModelError(
                f"model file {path} has format version {payload.get('format_version')}; this tertib reads "
                f"version {FORMAT_VERSION} (retrain with `tertib model train`)"
            )
        try:
            weights = {str(k): float(v) for k, v in payload["weights"].items()}
            a, b = (float(x) for x in payload["calibration"])
            return cls(
                version=str(payload["version"]),
                weights=weights,
                intercept=float(payload["intercept"]),
                calibration=(a, b),
                card=dict(payload.get("card") or {}),
                featurizer=str(payload.get("featurizer", "")),
                sha256=digest,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ModelError(f"model file {path} is incomplete (weights, intercept or calibration)") from None


def _readable(name: str) -> str:
    kind, _, rest = name.partition(":")
    return {"r": "rules", "p": "product", "x": "context"}.get(kind, kind) + ": " + rest


# -- where models live --------------------------------------------------------------------------------


def models_dir(data_dir: Path) -> Path:
    return data_dir / "models"


def read_pointer(data_dir: Path) -> dict[str, Any] | None:
    """The installation's active-model pointer, or None when no model was ever trained here."""
    path = models_dir(data_dir) / ACTIVE_POINTER
    if not path.is_file():
        return None
    try:
        pointer = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(pointer, dict) or not pointer.get("version") or not pointer.get("sha256"):
            raise ValueError
        return pointer
    except (OSError, ValueError):
        raise ModelError(
            f"{path} is unreadable; activate a model again (`tertib model activate VERSION`)"
        ) from None


def write_pointer(data_dir: Path, pointer: dict[str, Any]) -> None:
    atomic_write(
        models_dir(data_dir) / ACTIVE_POINTER,
        json.dumps(pointer, indent=2, sort_keys=True).encode("utf-8"),
    )


def packaged_card() -> dict[str, Any]:
    try:
        card = json.loads(PACKAGED_CARD.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"the packaged model card {PACKAGED_CARD} is missing (reinstall tertib)") from None
    except (OSError, ValueError):
        raise ModelError(
            f"the packaged model card {PACKAGED_CARD} is unreadable (reinstall tertib)"
        ) from None
    if not isinstance(card, dict):
        raise ModelError(f"the packaged model card {PACKAGED_CARD} is unreadable (reinstall tertib)")
    return card


_PACKAGED: list[Model] = []


def load_packaged() -> Model:
    """The model shipped in the wheel (loaded once per process)."""
    if not _PACKAGED:
        card = packaged_card()
        _PACKAGED.append(Model.load(PACKAGED_MODEL, str(card.get("sha256") or "")))
    return _PACKAGED[0]


def load_active(data_dir: Path) -> Model:
    """The installation's active model when one was trained and activated here, else the packaged one."""
    pointer = read_pointer(data_dir)
    if pointer is None:
        return load_packaged()
    path = models_dir(data_dir) / str(pointer.get("file") or f"{pointer['version']}.json.gz")
    return Model.load(path, str(pointer["sha256"]))


def load_for_settings(settings: Any) -> Model | None:
    """The model the ``model`` setting names (None for ``rules``)."""
    choice = str(getattr(settings, "model", "auto") or "auto")
    if choice == "rules":
        return None
    if choice == "packaged":
        return load_packaged()
    if choice == "auto":
        return load_active(Path(settings.data_dir))
    path = Path(choice)
    card_path = path.with_name(path.name.removesuffix(".json.gz") + ".card.json")
    expected = None
    if card_path.is_file():
        try:
            expected = str(json.loads(card_path.read_text(encoding="utf-8")).get("sha256") or "") or None
        except (OSError, ValueError):
            raise ModelError(f"model card {card_path} is unreadable") from None
    return Model.load(path, expected)
