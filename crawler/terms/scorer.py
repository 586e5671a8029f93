"""Explainable scoring of listing text: a score in [0, 1], a verdict, and the signals behind it.

Settings: ``threshold_strong`` / ``threshold_candidate`` / ``threshold_weak`` from
:class:`crawler.config.Settings` (env ``TERTIB_THRESHOLD_*``) turn the score into a verdict
(``strong`` ≥ strong > ``candidate`` ≥ candidate > ``weak`` ≥ weak > ``clear``).

How a score is made (details and tuning in ``docs/terms.md``):

1. Normalise the text (:mod:`crawler.terms.normalise`) and find signals (:mod:`crawler.terms.matcher`).
2. Give each lexicon match a *role* from its category/signal/strength (:func:`role_of`) and a weight
   from :data:`WEIGHTS` (a probability-like value: how much this signal alone suggests an illegal import).
   Fuzzy matches are scaled by similarity; a "bukan/tidak/non/tanpa" just before a positive match turns it
   into a negative signal ("bukan bekas impor").
3. Quantities weigh by size (:func:`quantity_weight`): ≥100 pieces, ≥20 kg, a bale count, a price per bale.
4. Combinations the trade uses add their own signal (:data:`COMBOS`): origin + used wording, strong bulk
   (≥ :data:`STRONG_BULK`) + used or origin, regional word + used or origin.
5. Positive weights combine as a noisy-OR: ``p = 1 - Π(1 - w)``. Look-alike negatives (sisa ekspor, model
   Korea, koleksi pribadi, produk lokal …) multiply by ``(1 - |w|)``. When bulk wording sits next to
   non-clothing goods ("1 bal tisu", "karung beras") and no clothing word, bulk signals are ignored.
6. With a learned model (:mod:`crawler.terms.model`): the rule result (score, roles, combinations,
   negatives) joins the text's character, word and product-type features; the model's calibrated
   probability becomes the score, the rule score is kept as ``rule_score``, and the verdict comes from
   the probability. Signals and their spans still come from steps 1–5.

Every signal carries its span in the *original* text. :data:`SCORER_VERSION` changes whenever weights or
rules change, so stored scores say which rules made them. To add a rule: add its weight here, a case to
``tests/test_scorer.py`` and a line to ``docs/terms.md``, and bump :data:`SCORER_VERSION`.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from crawler.items import Score
from crawler.limits import SCORE_TEXT_MAX, clip
from crawler.terms.lexicon import Lexicon, LexTerm
from crawler.terms.matcher import Match, Matcher
from crawler.terms.normalise import Normalised, normalise, normalise_phrase, word_set

if TYPE_CHECKING:
    from crawler.terms.model import Model, Prediction

SCORER_VERSION = "terms-1.1"

# Built-in context words that are not lexicon terms but give other terms their meaning.
BUILTIN_TERMS: tuple[LexTerm, ...] = (
    LexTerm("bekas", ("used", "bekas pakai", "seken"), "standard", "NEUTRAL", "W", provenance="builtin"),
)

# (role, strength) → weight. Roles: explicit (standard IMPORT S), bulk (bulk/event), regional, origin,
# used (used-clothing wording), other; negatives are handled apart.
WEIGHTS: dict[tuple[str, str], float] = {
    ("explicit", "S"): 0.85,
    ("bulk", "S"): 0.75,
    ("bulk", "M"): 0.30,
    ("bulk", "W"): 0.15,
    ("regional", "S"): 0.70,
    ("regional", "M"): 0.45,
    ("regional", "W"): 0.20,
    ("origin", "S"): 0.60,
    ("origin", "M"): 0.25,
    ("origin", "W"): 0.10,
    ("used", "S"): 0.60,
    ("used", "M"): 0.30,
    ("used", "W"): 0.08,
    ("other", "S"): 0.70,
    ("other", "M"): 0.25,
    ("other", "W"): 0.05,
}
LOCAL_FACTOR = 0.5  # signal LOCAL (e.g. preloved): personal resale by definition
NEGATIVE_WEIGHT = 0.6  # each look-alike negative keeps 40% of the score
NEGATED_WEIGHT = 0.5  # "bukan bekas": the seller denies the signal
NON_CLOTHING_WEIGHT = 0.5
MAX_NEGATIVES = 2
STRONG_BULK = 0.5  # bulk signals at least this strong take part in the "bulk + used/origin" combination
COMBOS: dict[str, tuple[frozenset[str], frozenset[str], float]] = {
    "origin + used": (frozenset({"origin"}), frozenset({"used"}), 0.70),
    "bulk + used/origin": (frozenset({"bulk"}), frozenset({"used", "origin", "regional"}), 0.50),
    "regional + used/origin": (frozenset({"regional"}), frozenset({"used", "origin"}), 0.40),
}
USED_WORDS = frozenset(
    {"bekas", "second", "seken", "thrift", "preloved", "vintage", "used", "2nd", "rekondisi"}
)
USED_PREFIXES = frozenset({"ex", "eks", "bekas"})  # "ex korea", "bekas jepang": origin that says used
NEGATORS = frozenset({"bukan", "tidak", "tdk", "non", "tanpa", "anti", "no", "ga", "gak", "nggak", "bkn"})
NEGATION_WINDOW = 200  # characters looked back for a negator (two words plus any skipped ones)
NEGATION_SKIP = frozenset({"barang", "brg", "baju", "pakaian", "produk", "dari", "hasil"})
NON_CLOTHING = word_set(
    """tisu tissue beras gula tepung semen pupuk plastik kresek kertas sabun deterjen rokok kabel bola
    voli futsal karet masker popok pampers sayur buah bawang kopi teh garam jagung pakan kedelai pasir
    arang besi"""
)
CLOTHING = word_set(
    """baju pakaian kaos kaus kemeja jaket celana hoodie sweater dress rok jeans outer blazer cardigan
    kardigan atasan bawahan gamis hijab kerudung jas mantel parka coat jacket shirt tshirt polo fashion
    busana sandang kulot tas sepatu"""
)


# COMBOS as (name, left roles, right roles in the order they are tried, weight)
_COMBO_ORDER = tuple(
    (name, tuple(left), tuple(sorted(right)), w) for name, (left, right, w) in COMBOS.items()
)
_WEIGHT = attrgetter("weight")
_NSPAN = attrgetter("nspan")


def _covering_spans(spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Spans sorted by start with every span inside another dropped: starts and ends then both increase."""
    starts: list[int] = []
    ends: list[int] = []
    for a, b in sorted(spans, key=lambda span: (span[0], -span[1])):
        if ends and b <= ends[-1]:
            continue
        starts.append(a)
        ends.append(b)
    return starts, ends


def _inside(spans: tuple[list[int], list[int]], start: int, end: int) -> bool:
    """Whether ``[start, end)`` lies inside one of :func:`_covering_spans`' spans (by bisection)."""
    starts, ends = spans
    k = bisect_right(starts, start) - 1
    return k >= 0 and end <= ends[k]


def role_of(term: LexTerm) -> str:
    if term.strength == "NEG" or term.category == "negative":
        return "negative"
    if term.category in ("bulk", "event"):
        return "bulk"
    if term.category in ("regional", "origin"):
        return term.category
    if term.signal == "IMPORT" and term.strength == "S":
        return "explicit"
    words = {w for form in term.forms() for w in normalise_phrase(form).split()}
    if words & USED_WORDS or "layak pakai" in {normalise_phrase(f) for f in term.forms()}:
        return "used"
    return "other"


def quantity_weight(match: Match) -> tuple[str, float]:
    """Role and weight of a quantity match."""
    return _quantity_weight(match.kind, match.quantity, match.unit)


def _quantity_weight(kind: str, quantity: int | None, unit: str) -> tuple[str, float]:
    qty = quantity or 0
    if kind == "price_per_bale":
        return "bulk", 0.60
    if kind == "pieces":
        return "bulk", 0.60 if qty >= 100 else 0.15 if qty >= 20 else 0.0
    if kind == "weight":
        kg = qty * 1000 if unit == "ton" else qty
        return "bulk", 0.60 if kg >= 20 else 0.20 if kg >= 5 else 0.0
    if kind == "bales":
        return "bulk", 0.15 if unit == "dus" else 0.50
    return "other", 0.0


class Signal:
    """One piece of evidence. Its original-text span is resolved only when asked for (most texts are
    scored for the verdict alone), from the normalised span and the :class:`Normalised` it came from."""

    __slots__ = ("_norm", "kind", "nspan", "role", "term", "weight")

    def __init__(
        self, term: str, nspan: tuple[int, int], weight: float, kind: str, role: str, norm: Normalised
    ) -> None:
        self.term = term
        self.nspan = nspan  # in the normalised text
        self.weight = weight  # positive: evidence for an illegal import; negative: against
        self.kind = kind
        self.role = role
        self._norm = norm

    @property
    def span(self) -> tuple[int, int]:
        """The span in the original text."""
        return self._norm.original_span(*self.nspan)

    @property
    def matched(self) -> str:
        a, b = self.span
        return self._norm.original[a:b]

    def to_dict(self) -> dict[str, Any]:
        a, b = self.span
        return {
            "term": self.term,
            "span": [a, b],
            "weight": round(self.weight, 4),
            "kind": self.kind,
            "role": self.role,
            "matched": self._norm.original[a:b],
        }


@dataclass(slots=True)
class ScoreResult:
    """One scored text. ``score``/``verdict`` are the final answer; with a model they are the model's
    calibrated probability (``probability``), whose inputs include every rule signal; ``rule_score`` is
    what the rules alone said. ``signals`` (rules) carry spans in the original text; ``features()`` lists
    the model features that moved the score most (also with spans where they rest on words)."""

    text: str
    score: float
    verdict: str
    signals: list[Signal] = field(default_factory=list)
    scorer_version: str = SCORER_VERSION
    lexicon_hash: str = ""
    rule_score: float | None = None  # None: same as score (rules only)
    probability: float | None = None
    model_version: str = ""
    _model: Model | None = field(default=None, repr=False, compare=False)
    _prediction: Prediction | None = field(default=None, repr=False, compare=False)
    _norm: Normalised | None = field(default=None, repr=False, compare=False)

    def features(self) -> list[dict[str, Any]]:
        """The model's strongest features for this text (empty without a model)."""
        if self._model is None or self._prediction is None or self._norm is None:
            return []
        return self._model.top_features(self._norm, self._prediction)

    def product(self) -> dict[str, Any] | None:
        """Product-type facts (kind, condition, bulk meaning) the model used; None without a model."""
        return self._prediction.facts.to_dict() if self._prediction is not None else None

    def _model_part(self, features: bool | None) -> dict[str, Any]:
        if self._prediction is None:
            return {}
        part: dict[str, Any] = {
            "rule_score": self.rule_score,
            "probability": self.probability,
            "model_version": self.model_version,
        }
        # the model's features are listed for texts scoring weak or more unless asked for (a sweep
        # stores a score for every listing, and most are clear: their features would cost CPU and space)
        if features or (features is None and self.verdict != "clear"):
            part["features"] = self.features()
            part["product"] = self.product()
        return part

    def to_dict(self, *, features: bool | None = None) -> dict[str, Any]:
        """Everything about the score; ``features``: list the model's features (None: when the verdict is
        weak or more)."""
        return {
            "text": self.text,
            "score": self.score,
            "verdict": self.verdict,
            "signals": [s.to_dict() for s in self.signals],
            "scorer_version": self.scorer_version,
            "lexicon_hash": self.lexicon_hash,
            **self._model_part(features),
        }

    def to_score(self) -> Score:
        """The typed :class:`crawler.items.Score` that travels on a ``Listing``: the same content as
        :meth:`to_dict` (signals resolved; the model's part, features listed for weak-or-more verdicts)."""
        part = self._model_part(None)
        return Score(
            value=self.score,
            verdict=self.verdict,
            text=self.text,
            signals=tuple(s.to_dict() for s in self.signals),
            scorer_version=self.scorer_version,
            lexicon_hash=self.lexicon_hash,
            rule_score=part.get("rule_score"),
            probability=part.get("probability"),
            model_version=part["model_version"] if part else None,
            top_features=tuple(part["features"]) if "features" in part else None,
            product=part.get("product"),
        )

    def explanation(self, *, features: bool | None = None) -> dict[str, Any]:
        """What the Score row stores (``Score.explanation``)."""
        return {
            "signals": [s.to_dict() for s in self.signals],
            "scorer_version": self.scorer_version,
            "lexicon_hash": self.lexicon_hash,
            **self._model_part(features),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(features=True), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Thresholds:
    strong: float = 0.85
    candidate: float = 0.6
    weak: float = 0.3

    def verdict(self, score: float) -> str:
        if score >= self.strong:
            return "strong"
        if score >= self.candidate:
            return "candidate"
        if score >= self.weak:
            return "weak"
        return "clear"

    @classmethod
    def from_settings(cls, settings: Any) -> Thresholds:
        return cls(settings.threshold_strong, settings.threshold_candidate, settings.threshold_weak)


class Scorer:
    """Build once per lexicon version (and model); :meth:`score` is then pure and thread-safe for reading.

    Without a model the score is the rule score. With one (:mod:`crawler.terms.model`), the rules run
    first and their result becomes part of the model's input; the final score is the model's calibrated
    probability and the verdict comes from it (``docs/terms.md``, "How the verdict is made")."""

    def __init__(
        self, lexicon: Lexicon, thresholds: Thresholds | None = None, model: Model | None = None
    ) -> None:
        self.lexicon = lexicon
        self.thresholds = thresholds or Thresholds()
        self.model = model
        self.model_version = model.version if model is not None else ""
        keys = {normalise_phrase(f) for t in lexicon.active for f in t.forms()}
        extra = tuple(b for b in BUILTIN_TERMS if normalise_phrase(b.text) not in keys)
        self.matcher = Matcher(Lexicon.of(lexicon.active + extra, source=lexicon.source))
        self.lexicon_hash = lexicon.content_hash()
        self._roles: dict[str, str] = {}
        self._used_forms: dict[str, bool] = {}
        self._term_weights: dict[str, tuple[str, float]] = {}

    def _role(self, term: LexTerm) -> str:
        role = self._roles.get(term.text)
        if role is None:
            role = self._roles[term.text] = role_of(term)
        return role

    def _term_weight(self, term: LexTerm) -> tuple[str, float]:
        """A lexicon term's role and weight before fuzzy scaling (memoised per term text)."""
        role = self._role(term)
        weight = 0.0
        if role != "negative":
            weight = WEIGHTS.get((role, term.strength), 0.05)
            if term.signal == "LOCAL":
                weight *= LOCAL_FACTOR
        self._term_weights[term.text] = (role, weight)
        return role, weight

    def _says_used(self, form: str) -> bool:
        said = self._used_forms.get(form)
        if said is None:
            words = form.split()
            said = len(words) > 1 and bool(set(words) & (USED_PREFIXES | USED_WORDS))
            self._used_forms[form] = said
        return said

    def score(self, text: str) -> ScoreResult:
        # bounded before normalising: a seller's 1 MB title costs what a long real one does
        norm = normalise(clip(text, SCORE_TEXT_MAX))
        return self.score_normalised(norm)

    def score_listing(self, title: str, description: str = "") -> ScoreResult:
        return self.score(f"{title}\n{description}" if description else title)

    def score_normalised(self, norm: Normalised) -> ScoreResult:
        result = self.rule_result(norm)
        if self.model is None:
            return result
        # 6. the model: its features include the rule result; its calibrated probability is the score
        prediction = self.model.predict(norm.text.split(), result)
        result.rule_score = result.score
        result.probability = round(prediction.probability, 4)
        result.score = result.probability
        result.verdict = self.thresholds.verdict(result.score)
        result.model_version = self.model_version
        result._model, result._prediction, result._norm = self.model, prediction, norm
        return result

    def rule_result(self, norm: Normalised) -> ScoreResult:
        """The rules alone (steps 1–5)."""
        # 1. signals (as the matcher's plain rows: name, start, end, kind, term, form, similarity,
        # quantity, unit)
        ntext = norm.text
        matches, tokens = self.matcher.match_rows(ntext)
        if not matches:
            return ScoreResult(
                norm.original, 0.0, self.thresholds.verdict(0.0), [], lexicon_hash=self.lexicon_hash
            )
        if not ntext:
            tokens = []
        may_negate = not NEGATORS.isdisjoint(tokens)  # most texts hold no negator: skip the look-back
        positives: list[Signal] = []
        keep = 1.0  # 5. noisy-OR, multiplied in as positives come (in order; redone if 5b drops some)
        term_weights = self._term_weights
        negatives: list[Signal] = []
        roles_present: dict[str, tuple[int, int]] = {}
        lexical_bulk: tuple[list[int], list[int]] | None = None  # spans of lexicon bulk terms, when needed
        has_bulk = False
        for name, start, end, kind, term, form, similarity, quantity, unit in matches:
            # 2./3. role and weight
            if term is None:
                role, weight = _quantity_weight(kind, quantity, unit)
                if weight <= 0:
                    continue
                if lexical_bulk is None:
                    lexical_bulk = _covering_spans(
                        [(x[1], x[2]) for x in matches if x[4] is not None and x[4].category == "bulk"]
                    )
                if _inside(lexical_bulk, start, end):
                    continue  # already counted as a lexicon variant ("isi 500 pcs")
            else:
                role, weight = term_weights.get(term.text) or self._term_weight(term)
                if role == "negative":
                    negatives.append(Signal(term.text, (start, end), -NEGATIVE_WEIGHT, kind, role, norm))
                    continue
                if kind == "fuzzy":
                    weight *= similarity
            if may_negate and self._negated(ntext, tokens, start):
                negatives.append(Signal(f"not {name}", (start, end), -NEGATED_WEIGHT, kind, "negated", norm))
                continue
            positives.append(Signal(name, (start, end), weight, kind, role, norm))
            keep *= 1.0 - weight
            if role == "bulk":
                has_bulk = True
                # a medium bulk word ("dus", "campur") does not make a bulk combination on its own
                roles_present.setdefault("bulk-medium" if weight < STRONG_BULK else role, (start, end))
            else:
                roles_present.setdefault(role, (start, end))
                if role == "origin" and self._says_used(form):
                    roles_present.setdefault("used", (start, end))

        # 5b. bulk wording beside non-clothing goods and no clothing word: not this trade
        if has_bulk and not NON_CLOTHING.isdisjoint(tokens):
            words = set(tokens)
            goods = words & NON_CLOTHING
            if goods and not words & CLOTHING:
                positives = [p for p in positives if p.role != "bulk"]
                keep = 1.0
                for sig in positives:
                    keep *= 1.0 - sig.weight
                roles_present.pop("bulk", None)
                good, gs, ge = next(t for t in norm.tokens() if t[0] in goods)
                negatives.append(
                    Signal(
                        f"non-clothing goods: {good}",
                        (gs, ge),
                        -NON_CLOTHING_WEIGHT,
                        "context",
                        "negative",
                        norm,
                    )
                )

        # 4. combinations
        combos: list[Signal] = []
        for name, left, right, weight in _COMBO_ORDER if len(roles_present) > 1 else ():
            lhs = rhs = None
            for r in left:
                if r in roles_present:
                    lhs = roles_present[r]
                    break
            if lhs is None:
                continue
            for r in right:
                if r in roles_present:
                    rhs = roles_present[r]
                    break
            if rhs is None:
                continue
            start, end = min(lhs[0], rhs[0]), max(lhs[1], rhs[1])
            combos.append(Signal(name, (start, end), weight, "combination", "combination", norm))

        # 5. noisy-OR of positives (above) and combinations, damped by negatives
        for sig in combos:
            keep *= 1.0 - sig.weight
        score = 1.0 - keep
        if negatives:
            for sig in sorted(negatives, key=_WEIGHT)[:MAX_NEGATIVES]:
                score *= 1.0 + sig.weight
        score = round(min(1.0, max(0.0, score)), 4)
        signals = positives + combos + negatives
        if len(signals) > 1:
            signals.sort(key=_NSPAN)
        return ScoreResult(
            text=norm.original,
            score=score,
            verdict=self.thresholds.verdict(score),
            signals=signals,
            lexicon_hash=self.lexicon_hash,
        )

    @staticmethod
    def _negated(ntext: str, tokens: list[str], start: int) -> bool:
        """True when one of the two words before ``start`` (skipping 'barang', 'baju' …) is a negator."""
        # a bounded look-back window keeps scoring linear when a text repeats negated terms
        before = ntext[max(0, start - NEGATION_WINDOW) : start].split()
        if start > NEGATION_WINDOW and before:
            before = before[1:]  # the first word may be cut
        looked = 0
        for word in reversed(before):
            if word in NEGATORS:
                return True
            if word in NEGATION_SKIP:
                continue
            looked += 1
            if looked >= 2:
                break
        return False
