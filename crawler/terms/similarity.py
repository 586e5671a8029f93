"""Context similarity for emerging-term discovery: does a phrase stand where known seller words stand?

A new word that sellers put in place of "bal" or "karungan" keeps the company those words kept: the garment,
the origin, "isi 300 pcs", "segel", "campur". :class:`ContextModel` learns that from the crawled text itself
(the sweep's listings and the background corpus; nothing is downloaded): for each target phrase it counts
the words within :data:`WINDOW` tokens on either side of each occurrence, weights the counts by positive
pointwise mutual information with context-distribution smoothing (Levy, Goldberg & Dagan 2015: ``P(c)^0.75``)
and compares phrases by cosine. :meth:`ContextModel.similarity` gives a candidate's mean cosine to its
:data:`TOP_K` nearest known terms (each known term's forms pooled into one vector), and which terms those are.

Stopwords are dropped before windowing (they are in every context), numbers become one ``<num>`` token
("isi 300 pcs" and "isi 500 pcs" are the same context), and a window never crosses from a title into its
description. Only target phrases get vectors, so the cost is one pass over the tokens.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

WINDOW = 2
SMOOTHING = 0.75
TOP_K = 3
MIN_OCCURRENCES = 3  # a known term seen fewer times has no usable vector
NUM = "<num>"


class ContextModel:
    """PPMI context vectors for target phrases, trained on token sequences."""

    def __init__(self, targets: Iterable[str], max_n: int = 3) -> None:
        self.targets = frozenset(targets)
        self.first_words = frozenset(t.split()[0] for t in self.targets)
        self.max_n = max_n
        self.pairs: dict[str, Counter[str]] = defaultdict(Counter)
        self.occurrences: Counter[str] = Counter()
        self.unigrams: Counter[str] = Counter()
        self._vectors: dict[str, dict[str, float]] = {}
        self._norms: dict[str, float] = {}
        self._known_cache: tuple[int, list[tuple[str, dict[str, float], float]]] | None = None

    def add(self, tokens: Sequence[str]) -> None:
        """One title or description, already filtered (no stopwords; numbers as :data:`NUM`)."""
        self.unigrams.update(tokens)
        n = len(tokens)
        first = self.first_words
        targets = self.targets
        for i, tok in enumerate(tokens):
            if tok not in first:
                continue
            for size in range(1, self.max_n + 1):
                if i + size > n:
                    break
                phrase = tok if size == 1 else " ".join(tokens[i : i + size])
                if phrase not in targets:
                    continue
                self.occurrences[phrase] += 1
                row = self.pairs[phrase]
                for j in range(max(0, i - WINDOW), i):
                    row[tokens[j]] += 1
                for j in range(i + size, min(n, i + size + WINDOW)):
                    row[tokens[j]] += 1

    def finish(self) -> None:
        """Turn counts into PPMI vectors (call once, after every :meth:`add`)."""
        smoothed_total = sum(c**SMOOTHING for c in self.unigrams.values()) or 1.0
        for phrase, row in self.pairs.items():
            n_w = sum(row.values())
            if not n_w:
                continue
            inside = set(phrase.split())
            vec: dict[str, float] = {}
            for ctx, n_wc in row.items():
                if ctx in inside:
                    continue
                p_c = self.unigrams[ctx] ** SMOOTHING / smoothed_total
                pmi = math.log((n_wc / n_w) / p_c) if p_c > 0 else 0.0
                if pmi > 0:
                    vec[ctx] = pmi
            self._vectors[phrase] = vec
            self._norms[phrase] = math.sqrt(sum(v * v for v in vec.values()))

    def vector(self, phrases: Iterable[str]) -> dict[str, float]:
        """The pooled vector of several phrases (a known term's forms)."""
        out: dict[str, float] = defaultdict(float)
        for phrase in phrases:
            for ctx, weight in self._vectors.get(phrase, {}).items():
                out[ctx] += weight
        return dict(out)

    def cosine(self, phrase: str, other: Mapping[str, float], other_norm: float) -> float:
        vec = self._vectors.get(phrase)
        norm = self._norms.get(phrase, 0.0)
        if not vec or not norm or not other_norm:
            return 0.0
        small, large = (vec, other) if len(vec) <= len(other) else (other, vec)
        dot = sum(w * large.get(c, 0.0) for c, w in small.items())
        return dot / (norm * other_norm)

    def similarity(
        self, phrase: str, known: Mapping[str, Sequence[str]]
    ) -> tuple[float, list[tuple[str, float]]]:
        """Mean cosine to the :data:`TOP_K` most similar known terms, and those terms with their cosines.

        ``known``: term name → its normalised forms. Terms seen fewer than :data:`MIN_OCCURRENCES` times, and
        the phrase itself, are left out.
        """
        scored: list[tuple[str, float]] = []
        for name, vec, norm in self._known(known):
            if name == phrase or phrase in known.get(name, ()):
                continue
            scored.append((name, self.cosine(phrase, vec, norm)))
        scored.sort(key=lambda x: (-x[1], x[0]))
        best = scored[:TOP_K]
        return (sum(s for _, s in best) / len(best) if best else 0.0), best

    def _known(self, known: Mapping[str, Sequence[str]]) -> list[tuple[str, dict[str, float], float]]:
        cache_key = id(known)
        if self._known_cache is not None and self._known_cache[0] == cache_key:
            return self._known_cache[1]
        out = []
        for name, forms in known.items():
            if sum(self.occurrences[f] for f in forms) < MIN_OCCURRENCES:
                continue
            vec = self.vector(forms)
            norm = math.sqrt(sum(v * v for v in vec.values()))
            if norm:
                out.append((name, vec, norm))
        self._known_cache = (cache_key, out)
        return out
