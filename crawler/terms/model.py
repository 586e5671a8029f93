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
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.errors import TertibError
from crawler.terms.features import (
    CROSS_FACTS,
    FACT_PAIRS,
    FEATURIZER_VERSION,
    FUNCTION_WORDS,
    NGRAMS,
    RULE_ROLES,
    TITLE_WORDS,
    context_features,
    length_scale,
    rule_continuous_of,
    rule_discrete,
    shape,
)
from crawler.terms.normalise import normalise
from crawler.terms.product import ProductFacts, facts_from_masks, token_mask
from storage.blobs import write_atomic

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
    write_atomic(path, data)


@lru_cache(maxsize=256)
def _gram_spans(size: int) -> tuple[tuple[int, int], ...]:
    """The (start, end) of every character n-gram (:data:`~crawler.terms.features.NGRAMS`) of a padded
    word of ``size`` characters, in the order :func:`~crawler.terms.features.word_features` lists them."""
    return tuple((i, i + n) for n in NGRAMS for i in range(size - n + 1))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass(slots=True)
class Prediction:
    """The model's answer for one text: calibrated probability, linear score, product facts (and the rule
    result, whose features an explanation lists)."""

    probability: float
    linear: float
    facts: ProductFacts
    # the rule features (:func:`~crawler.terms.features.rule_discrete`) and the rule score when there were
    # signals (not the rule result itself: it holds this prediction, and a cycle would outlive its text)
    discrete: tuple[tuple[str, float], ...] = ()
    rule_score: float | None = None

    def context(self, weights: dict[str, float]) -> list[tuple[str, float]]:
        """(name, contribution) of the rule, product and interaction features with a weight."""
        discrete = self.discrete
        continuous = rule_continuous_of(self.rule_score) if self.rule_score is not None else ()
        items = [(k, weights.get(k, 0.0) * v) for k, v in (*discrete, *continuous)]
        rule_names = tuple(k for k, _ in discrete)
        items += [(k, weights.get(k, 0.0)) for k in context_features(rule_names, self.facts)]
        return [(k, c) for k, c in items if c]


# A word's memo entry: (its shape, Σ weights of its own word and n-gram features, its product-flag bits,
# the weights of the pairs it starts by the second word's shape — or None)
_Entry = tuple[str, float, int, "dict[str, float] | None"]


class Model:
    """A loaded model. :meth:`predict` is pure apart from its bounded memos (safe to share)."""

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
        self._words: dict[str, _Entry] = {}
        # the rule features summed per set of rule features, the product facts and their interactions per
        # (rule roles, facts): few distinct ones exist, so a text pays two look-ups for all of them
        self._rule_part: dict[tuple[tuple[str, float], ...], tuple[float, tuple[str, ...]]] = {}
        self._fact_part: dict[tuple[tuple[str, ...], tuple[str, ...]], float] = {}
        self._fact_w: dict[str, float] | None = None  # the tables behind :meth:`_fact_sum`
        self._pair_w: list[tuple[str, str, float]] = []
        self._cross_w: dict[str, dict[str, float]] = {}
        # the rule score's two features summed per score (a noisy-OR of few weights: few distinct scores)
        self._score_part: dict[float, float] = {}
        self._w_score = weights.get("r:score", 0.0)
        self._w_logit = weights.get("r:logit", 0.0)
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
    def word_weight(self, token: str) -> _Entry:
        """The memo entry of one distinct word (:data:`_Entry`): its shape, the summed weights of its own
        features, its product-flag bits and the pairs it starts (memoised, bounded)."""
        hit = self._words.get(token)
        if hit is None:
            shaped = shape(token)
            # words that differ only in their digits ("300pcs", "500pcs") share one entry
            hit = self._words.get(shaped) if shaped != token else None
            if hit is None:
                hit = (shaped, self._own_weight(token, shaped), token_mask(token), self._pairs.get(shaped))
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
        get = self._chars.get
        padded = f" {shaped} "
        grams = [get(padded[i:j], 0.0) for i, j in _gram_spans(len(padded))]
        return self._word_only.get(shaped, 0.0) + sum(grams)

    def linear(self, tokens: list[str], result: ScoreResult | None) -> tuple[float, ProductFacts]:
        z, facts, _discrete = self._linear(tokens, result)
        return z, facts

    def _linear(
        self, tokens: list[str], result: ScoreResult | None
    ) -> tuple[float, ProductFacts, tuple[tuple[str, float], ...]]:
        """The uncalibrated score ``z`` and the product facts.

        Per text: one memo look-up per word (:meth:`word_weight`), one per adjacent pair (in the entry of
        its first word), the OR of the words' flag bits, and one look-up for all rule, product and
        interaction features together (:attr:`_dense`); the rule score and its log-odds are added apart.
        """
        get = self._words.get
        hits = [get(t) or self.word_weight(t) for t in tokens]
        n = len(tokens)
        # distinct shapes imply distinct words (the usual case: one set answers both)
        if len({h[0] for h in hits}) == n:
            distinct = n
            text_z = sum([h[1] for h in hits])
            if n > 1:
                text_z += sum([f.get(b[0], 0.0) for a, b in pairwise(hits) if (f := a[3]) is not None])
        else:
            unique = dict(zip(tokens, hits, strict=True))  # a word counts once, as in training
            distinct = len(unique)
            text_z = sum([h[1] for h in unique.values()])
            # a pair counts once too (pairs are of shapes: "0812 1111" and "1111 2222" are both "0 0")
            pairs = {(a[0], b[0]): a[3] for a, b in pairwise(hits) if a[3] is not None}
            text_z += sum([f.get(sb, 0.0) for (_sa, sb), f in pairs.items() if f is not None])
        z = self.intercept + (text_z if distinct <= TITLE_WORDS else text_z * length_scale(distinct))
        facts = facts_from_masks([h[2] for h in hits], tokens)
        discrete = rule_discrete(result)
        rule = self._rule_part.get(discrete)
        if rule is None:
            rule = self._rule_part[discrete] = self._rule_sum(discrete)
        names = facts.names
        key = (rule[1], names)
        dense = self._fact_part.get(key)
        if dense is None:
            if len(self._fact_part) >= _WORD_MEMO_MAX:
                self._fact_part.clear()
                self._rule_part.clear()
            dense = self._fact_part[key] = self._fact_sum(rule[1], names)
        z += rule[0] + dense
        if result is not None and result.signals:  # :func:`~crawler.terms.features.rule_continuous`
            score = result.score
            part = self._score_part.get(score)
            if part is None:
                s = min(max(score, 0.02), 0.98)
                part = self._w_score * score + self._w_logit * round(math.log(s / (1.0 - s)) / 4.0, 6)
                if len(self._score_part) >= _WORD_MEMO_MAX:
                    self._score_part.clear()
                self._score_part[score] = part
            z += part
        return z, facts, discrete

    def _rule_sum(self, discrete: tuple[tuple[str, float], ...]) -> tuple[float, tuple[str, ...]]:
        """Σ weights of the discrete rule features, and the rule roles present."""
        w = self.weights
        roles = tuple(k[7:] for k, _ in discrete if k.startswith("r:role:"))
        return sum(w.get(k, 0.0) * v for k, v in discrete), roles

    def _fact_sum(self, roles: tuple[str, ...], names: tuple[str, ...]) -> float:
        """Σ weights of the product facts (:func:`~crawler.terms.features.fact_features`) and their
        interactions with the rule roles (:func:`~crawler.terms.features.cross_features`), from tables
        built once per model."""
        if self._fact_w is None:
            w = self.weights
            self._fact_w = {k[2:]: v for k, v in w.items() if k.startswith("p:")}
            self._pair_w = [(a, b, w[f"x:{a}&{b}"]) for a, b in FACT_PAIRS if f"x:{a}&{b}" in w]
            self._cross_w = {
                role: {f: w[f"x:rule_{role}&{f}"] for f in CROSS_FACTS if f"x:rule_{role}&{f}" in w}
                for role in RULE_ROLES
            }
        get = self._fact_w.get
        total = sum([get(n, 0.0) for n in names])
        present = set(names)
        total += sum([v for a, b, v in self._pair_w if a in present and b in present])
        for role in roles:
            cross = self._cross_w.get(role)
            if cross:
                total += sum([cross.get(n, 0.0) for n in names])
        return total

    def calibrate(self, z: float) -> float:
        a, b = self.calibration
        return _sigmoid(a * z + b)

    def predict(self, tokens: list[str], result: ScoreResult | None) -> Prediction:
        z, facts, discrete = self._linear(tokens, result)
        rule_score = result.score if result is not None and result.signals else None
        return Prediction(self.calibrate(z), z, facts, discrete, rule_score)

    def predict_text(self, text: str, result: ScoreResult | None = None) -> Prediction:
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
