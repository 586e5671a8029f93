"""Features of a listing text for the learned model: characters, words, product type and the rule signals.

One function, :func:`featurize`, defines every feature; training (:mod:`crawler.terms.train`) and scoring
(:class:`crawler.terms.model.Model`) both go through it, so what the model learnt is what it sees. Feature
names carry their family in a prefix:

- ``w:<token>`` — a normalised word (:func:`crawler.terms.normalise.normalise`; digit runs become ``0``;
  none for :data:`FUNCTION_WORDS`);
- ``c:<n-gram>`` — character 3-, 4- and 5-grams inside a word padded with spaces (``" bal "`` gives
  ``" ba"``, ``"bal"``, ``"al "``, ``" bal"`` …): they carry spelling variants and words never seen whole;
- ``b:<token> <token>`` — adjacent word pairs (``"luar negeri"``, ``"turun kontainer"``);
- ``r:…`` — the rule scorer's result: its score, the role and kind of every positive signal, the
  combinations, negatives and negations (:mod:`crawler.terms.scorer`);
- ``p:…`` — product-type facts (:mod:`crawler.terms.product`): kind, condition, bulk meaning, markers;
- ``x:rule_<rule role>&<fact>`` and ``x:<fact>&<fact>`` — the interactions a linear model cannot form itself
  ("bulk wording about new goods", "origin + used about clothing").

Word and character features are counted once per distinct word of the text (a repeated word adds
nothing), so a text's word-feature sum is the sum over its distinct words of each word's own features —
which lets the scorer memoise one number per word (:meth:`crawler.terms.model.Model.word_weight`).

Change any feature and bump :data:`FEATURIZER_VERSION`: a model trained with another featurizer refuses
to load.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from itertools import pairwise
from typing import TYPE_CHECKING

from crawler.terms.normalise import word_set
from crawler.terms.product import ProductFacts, analyse

if TYPE_CHECKING:
    from crawler.terms.scorer import ScoreResult

FEATURIZER_VERSION = "f3"
NGRAMS = (3, 4, 5)
# Texts longer than a title (descriptions) have their word features scaled by sqrt(TITLE_WORDS / distinct
# words), so dozens of ordinary description words cannot outvote what the title and the rules say.
TITLE_WORDS = 12
_DIGITS = re.compile(r"\d+")

# Function words get no word or character features of their own (only pairs: "per lusin", "dari jepang"):
# on a few thousand texts their weights would be whatever the corpus happened to pair them with.
FUNCTION_WORDS = word_set(
    """ada adalah agar akan aku anda apa atau bagi bahwa begitu buat dalam dan dari dengan di dia dgn hanya
    harus ini itu jadi jika juga kalau kami kamu kan karena ke kita kok lagi lah mau nya oleh pada para per
    pun saja sama sangat sebagai serta setiap sih supaya tapi telah tentang tersebut tetapi untuk utk yang
    yg a an and are as at be by for from in is it of on or the to with"""
)
RULE_ROLES = ("explicit", "bulk_strong", "bulk_weak", "regional", "origin", "used", "other")
# Facts that change what a rule signal means (crossed with each rule role present).
CROSS_FACTS = (
    "kind:clothing", "kind:textile", "kind:non_clothing", "kind:unknown", "cond:new", "cond:used",
    "cond:mixed", "maker", "trade", "personal", "style", "export", "abroad", "wear", "lot", "wholesale_unit",
    "bale_unit", "live", "bulk:new_wholesale", "bulk:used_bale", "bulk:non_clothing",
)  # fmt: skip
FACT_PAIRS = (
    ("abroad", "used"), ("abroad", "kind:clothing"), ("used", "kind:clothing"), ("bale_unit", "used"),
    ("bale_unit", "new"), ("bale_unit", "kind:clothing"), ("live", "bale_unit"), ("personal", "abroad"),
    ("personal", "used"), ("style", "kind:clothing"), ("export", "new"), ("maker", "wholesale_unit"),
    ("abroad", "new"), ("wholesale_unit", "new"), ("abroad", "kind:textile"), ("used", "kind:textile"),
    ("abroad", "wear"), ("wear", "kind:clothing"), ("personal", "wear"), ("lot", "used"), ("lot", "abroad"),
    ("lot", "new"), ("abroad", "footwear"), ("abroad", "bags"), ("abroad", "accessory"),
    ("used", "footwear"), ("used", "bags"), ("used", "accessory"), ("style", "abroad"), ("trade", "used"),
    ("trade", "abroad"), ("abroad", "cond:unknown"),
)  # fmt: skip


def shape(token: str) -> str:
    """A token as features see it: digit runs become ``0`` ("300pcs" → "0pcs")."""
    return token if token.isalpha() else _DIGITS.sub("0", token)


def word_features(token: str) -> list[str]:
    """The features of one distinct word: the word itself and its character n-grams (none for a
    function word)."""
    if token in FUNCTION_WORDS:
        return []
    tok = shape(token)
    padded = f" {tok} "
    feats = [f"w:{tok}"]
    size = len(padded)
    for n in NGRAMS:
        if n > size:
            break
        feats.extend(f"c:{padded[i : i + n]}" for i in range(size - n + 1))
    return feats


def pair_features(tokens: list[str]) -> set[str]:
    return {f"b:{shape(a)} {shape(b)}" for a, b in pairwise(tokens)}


def rule_features(result: ScoreResult | None) -> dict[str, float]:
    """``r:`` features from a rule :class:`~crawler.terms.scorer.ScoreResult`; ``r:none`` when it has none."""
    return {**dict(rule_continuous(result)), **dict(rule_discrete(result))}


def rule_continuous(result: ScoreResult | None) -> tuple[tuple[str, float], ...]:
    """The rule score, and its log-odds (clipped): a rule score of 0.99 is far more than 0.9."""
    if result is None or not result.signals:
        return ()
    return rule_continuous_of(result.score)


def rule_continuous_of(score: float) -> tuple[tuple[str, float], ...]:
    """:func:`rule_continuous` of a rule score (of a result with signals)."""
    s = min(max(score, 0.02), 0.98)
    return (("r:score", score), ("r:logit", round(math.log(s / (1.0 - s)) / 4.0, 6)))


COUNTED = frozenset({"r:negated", "r:negative"})
_SIGNAL_NAMES: dict[tuple[str, str, str, bool, bool], tuple[str, ...]] = {}


def _signal_names(role: str, kind: str, term: str, weight: float) -> tuple[str, ...]:
    key = (role, kind, term if role == "combination" else "", weight > 0, weight >= 0.5)
    names = _SIGNAL_NAMES.get(key)
    if names is None:
        if weight > 0:
            if role == "combination":
                names = (f"r:combo:{term}",)
            else:
                if role == "bulk":
                    role = "bulk_strong" if weight >= 0.5 else "bulk_weak"
                names = (f"r:role:{role}", f"r:kind:{kind}")
        elif role == "negated":
            names = ("r:negated",)
        elif kind == "context":
            names = ("r:non_clothing_context",)
        else:
            names = ("r:negative",)
        _SIGNAL_NAMES[key] = names
    return names


_NO_RULES = (("r:none", 1.0),)
_DISCRETE: dict[tuple[tuple[str, str, str, bool, bool], ...], tuple[tuple[str, float], ...]] = {}
_SAME: dict[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]] = {}


def rule_discrete(result: ScoreResult | None) -> tuple[tuple[str, float], ...]:
    """The rule features other than the score: each positive signal's role and kind, the combinations,
    how many negatives and negations (memoised per set of signals: no name is built per text; the
    same tuple object comes back for the same set, so callers may key memos on it cheaply)."""
    if result is None or not result.signals:
        return _NO_RULES
    # what a signal's feature names depend on (:func:`_signal_names`): few distinct keys in practice
    key = tuple(
        [
            (
                sig.role,
                sig.kind,
                sig.term if sig.role == "combination" else "",
                sig.weight > 0,
                sig.weight >= 0.5,
            )
            for sig in result.signals
        ]
    )
    found = _DISCRETE.get(key)
    if found is None:
        out: dict[str, float] = {}
        for role, kind, term, positive, strong in key:
            weight = (0.5 if strong else 0.1) if positive else -0.1
            for name in _signal_names(role, kind, term, weight):
                out[name] = out.get(name, 0.0) + 1.0 if name in COUNTED else 1.0
        found = tuple(out.items())
        found = _SAME.setdefault(found, found)  # one object per distinct answer: cheap memo keys later
        if len(_DISCRETE) >= 100_000:
            _DISCRETE.clear()
        _DISCRETE[key] = found
    return found


def dense_features(result: ScoreResult | None, facts: ProductFacts) -> dict[str, float]:
    """Rule, product and interaction features (everything but words and characters)."""
    out = rule_features(result)
    out.update(context_features(tuple(out), facts))
    return out


def context_features(rule_names: tuple[str, ...], facts: ProductFacts) -> dict[str, float]:
    """Product facts and interactions, given the names of the rule features present."""
    names = facts.names
    out = dict.fromkeys(fact_features(names), 1.0)
    for key in rule_names:
        if key.startswith("r:role:"):
            out.update(dict.fromkeys(cross_features(key[7:], names), 1.0))
    return out


def fact_features(names: tuple[str, ...]) -> list[str]:
    """``p:`` features of the product facts and ``x:`` interactions between facts."""
    present = set(names)
    out = [f"p:{name}" for name in names]
    out.extend(f"x:{a}&{b}" for a, b in FACT_PAIRS if a in present and b in present)
    return out


def cross_features(role: str, names: tuple[str, ...]) -> list[str]:
    """``x:`` interactions of one rule role with the product facts that change what it means."""
    present = set(names)
    return [f"x:rule_{role}&{fact}" for fact in CROSS_FACTS if fact in present]


def length_scale(distinct_words: int) -> float:
    """The factor on word features: 1 for a title-length text, less for longer ones."""
    return 1.0 if distinct_words <= TITLE_WORDS else math.sqrt(TITLE_WORDS / distinct_words)


def text_features(tokens: Iterable[str]) -> dict[str, float]:
    """Word, character and pair features of normalised tokens (each distinct word counted once, all
    scaled by :func:`length_scale`)."""
    toks = list(tokens)
    distinct = dict.fromkeys(toks)
    scale = length_scale(len(distinct))
    out: dict[str, float] = {}
    for tok in distinct:
        for feat in word_features(tok):
            out[feat] = out.get(feat, 0.0) + scale
    for feat in pair_features(toks):
        out[feat] = scale
    return out


def featurize(tokens: list[str], result: ScoreResult | None) -> dict[str, float]:
    """Every feature of a text: :func:`text_features` + :func:`dense_features` (training uses this)."""
    out = text_features(tokens)
    out.update(dense_features(result, analyse(tokens)))
    return out
