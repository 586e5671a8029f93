"""Pronounceable pseudo-words for measuring discovery with words nobody tuned on.

Drift words written into the repository end up in tests, docs and someone's head; a measurement with them
says little about the next word sellers invent. :func:`pseudo_words` makes fresh ones from a seed
(Indonesian-like consonant-vowel syllables, 2–3 of them, sometimes a closing consonant) and refuses any
word that the pipeline could confuse with something it already knows:

- a lexicon form, a stopword, or an abbreviation the normaliser expands;
- a word that contains a lexicon word of 3+ letters or is contained in one (the matcher's joined-word
  segmentation and the replicas' substring search would blur them);
- a word within edit distance 2 of a lexicon word (the matcher's fuzzy matching);
- a substring of any word of the sandbox's base vocabulary, or one containing such a word of 4+ letters
  (searching for it would return unrelated listings);
- doubled letters (the normaliser collapses them) and digits.
"""

from __future__ import annotations

import itertools
import random
from functools import lru_cache

from rapidfuzz.distance import Levenshtein

ONSETS = ("b", "d", "g", "j", "k", "l", "m", "n", "p", "r", "s", "t", "w", "ng", "ny", "c", "h")
VOWELS = ("a", "e", "i", "o", "u")
CODAS = ("n", "r", "s", "k", "l", "m", "t")


@lru_cache(maxsize=1)
def _known() -> tuple[frozenset[str], frozenset[str]]:
    """(lexicon words and forms, every other word the pipeline or the sandbox already uses)."""
    from crawler.terms.lexicon import Lexicon, load_stopwords
    from crawler.terms.normalise import ABBREVIATIONS, normalise_phrase
    from sandbox.catalog import generate
    from sandbox.state import tokenize

    lexicon = {normalise_phrase(f) for t in Lexicon.packaged().terms for f in t.forms()}
    lexicon_words = {w for form in lexicon for w in form.split()} | {f.replace(" ", "") for f in lexicon}
    vocabulary: set[str] = set(load_stopwords()) | set(ABBREVIATIONS) | set(ABBREVIATIONS.values())
    for listing in generate(0, 1500):
        vocabulary.update(tokenize(f"{listing.title} {listing.description} {listing.seller_name}"))
    return frozenset(lexicon_words), frozenset(vocabulary)


def acceptable(word: str) -> bool:
    """True when ``word`` is safe to use as a drift word (see the module docstring)."""
    lexicon_words, vocabulary = _known()
    if not word.isalpha() or not word.isascii() or any(a == b for a, b in itertools.pairwise(word)):
        return False
    if word in lexicon_words or word in vocabulary:
        return False
    for known in lexicon_words:
        if (len(known) >= 3 and known in word) or word in known:
            return False
        if abs(len(known) - len(word)) <= 2 and Levenshtein.distance(known, word, score_cutoff=2) <= 2:
            return False
    return not any(word in v or (len(v) >= 4 and v in word) for v in vocabulary)


def pseudo_words(seed: int, n: int = 5, *, min_syllables: int = 2, max_syllables: int = 3) -> tuple[str, ...]:
    """``n`` distinct pronounceable pseudo-words, the same for the same seed."""
    rng = random.Random(f"pseudo-words:{seed}")
    out: list[str] = []
    for _ in range(10_000):
        if len(out) == n:
            break
        syllables = [
            rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(rng.randint(min_syllables, max_syllables))
        ]
        word = "".join(syllables) + (rng.choice(CODAS) if rng.random() < 0.35 else "")
        if 5 <= len(word) <= 10 and word not in out and acceptable(word):
            out.append(word)
    if len(out) < n:
        raise RuntimeError(f"could not make {n} acceptable pseudo-words from seed {seed}")
    return tuple(out)
