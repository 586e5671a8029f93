"""Training-time masking: copies of training titles with the trade's words disguised the ways sellers do.

Sellers hide "bal", "bekas", "thrift", "impor" behind asterisks, dots, spaces, digits, repeated letters,
emoji, look-alike letters from other scripts, zero-width characters, full-width or small-capital letters,
dropped vowels and hashtags — and invent new ways every month. The normaliser
(:mod:`crawler.terms.normalise`) undoes what it can; training on disguised copies teaches the model the
rest: what the character n-grams of a half-undone mask look like ("bl", "b l"), and that the meaning of a
title does not change when one of its words is masked. Written corpus rows cover masks by hand; this
covers every masking method for every row, so the model learns the pattern rather than the rows.

:func:`augment` is deterministic for a seed. Both labels are masked (legitimate titles at a lower rate): a
model that saw masks only on illegal titles would learn "a mask means illegal" instead of seeing through
it. Each copy keeps a link to the row it came from (:attr:`Augmented.origin`), so cross-validation never
trains on a copy of a row it validates on (:func:`crawler.terms.train.fit`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from crawler.terms.evaluate import Example

# Words sellers disguise (the trade's words and the origin words beside them); matched whole, any case.
MASKABLE = (
    "bal", "bale", "balpres", "ballpress", "karung", "karungan", "kiloan", "bekas", "second", "seken",
    "thrift", "thrifting", "preloved", "impor", "import", "korea", "jepang", "japan", "pakaian", "baju",
    "luar", "negeri", "segel", "campur", "sortir", "sortiran", "monza", "cakar", "rombengan", "lelong",
    "kontainer", "used", "bundle",
)  # fmt: skip
_WORD = re.compile(r"\b(" + "|".join(sorted(MASKABLE, key=len, reverse=True)) + r")\b", re.IGNORECASE)
VOWELS = "aeiou"
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "b": "8", "g": "9"}
CYRILLIC = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "k": "к", "x": "х", "i": "і"}
SMALL_CAPS = dict(zip("abcdefghijklmnopqrstuvwxyz", "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡxʏᴢ", strict=True))
EMOJI = ("🔥", "⭐", "💥", "♥", "✨", "🍒", "★", "👍")
RATE_ILLEGAL = 0.5
RATE_LEGIT = 0.3
WEIGHT = 0.5  # a copy weighs half a row: it adds a view of a row, not a new row


def _star_vowel(rng: random.Random, w: str) -> str:
    idx = [i for i, c in enumerate(w) if c.lower() in VOWELS]
    if not idx:
        return w
    k = rng.choice(idx)
    return w[:k] + rng.choice(("*", "*", "**", "#", "?", ".", "_")) + w[k + 1 :]


def _star_all_vowels(rng: random.Random, w: str) -> str:
    return "".join("*" if c.lower() in VOWELS else c for c in w)


def _separate(rng: random.Random, w: str) -> str:
    return rng.choice((".", " ", "-", "_", " . ", "/", "•")).join(w)


def _leet(rng: random.Random, w: str) -> str:
    out = [LEET.get(c.lower(), c) if rng.random() < 0.7 else c for c in w]
    return "".join(out)


def _repeat(rng: random.Random, w: str) -> str:
    k = rng.randrange(len(w))
    return w[:k] + w[k] * rng.randint(2, 4) + w[k + 1 :]


def _emoji_inside(rng: random.Random, w: str) -> str:
    if len(w) < 2:
        return w
    e = rng.choice(EMOJI)
    if rng.random() < 0.5:
        return e.join(w)
    k = rng.randrange(1, len(w))
    return w[:k] + e + w[k:]


def _emoji_for_vowel(rng: random.Random, w: str) -> str:
    idx = [i for i, c in enumerate(w) if c.lower() in VOWELS]
    if not idx:
        return w
    k = rng.choice(idx)
    return w[:k] + rng.choice(EMOJI) + w[k + 1 :]


def _homoglyph(rng: random.Random, w: str) -> str:
    return "".join(CYRILLIC.get(c, c) if rng.random() < 0.6 else c for c in w)


def _zero_width(rng: random.Random, w: str) -> str:
    k = rng.randrange(1, max(2, len(w)))
    return w[:k] + rng.choice(("\u200b", "\u200c", "\u200d")) + w[k:]


def _full_width(rng: random.Random, w: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in w)


def _small_caps(rng: random.Random, w: str) -> str:
    return "".join(SMALL_CAPS.get(c.lower(), c) for c in w)


def _drop_vowels(rng: random.Random, w: str) -> str:
    out = w[0] + "".join(c for c in w[1:] if c.lower() not in VOWELS)
    return out if len(out) >= 2 else w


def _split_word(rng: random.Random, w: str) -> str:
    if len(w) < 3:
        return w
    k = rng.randrange(1, len(w))
    return w[:k] + " " + w[k:]


def _mixed_case(rng: random.Random, w: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in w)


METHODS: tuple[Callable[[random.Random, str], str], ...] = (
    _star_vowel, _star_all_vowels, _separate, _leet, _repeat, _emoji_inside, _emoji_for_vowel, _homoglyph,
    _zero_width, _full_width, _small_caps, _drop_vowels, _split_word, _mixed_case,
)  # fmt: skip


def mask_text(rng: random.Random, text: str) -> str | None:
    """``text`` with one to two of its maskable words disguised (None: it has none)."""
    found = list(_WORD.finditer(text))
    if not found:
        return None
    chosen = rng.sample(found, min(len(found), rng.choice((1, 1, 2))))
    out = text
    for m in sorted(chosen, key=lambda m: m.start(), reverse=True):
        masked = rng.choice(METHODS)(rng, m.group())
        out = out[: m.start()] + masked + out[m.end() :]
    if rng.random() < 0.2:  # the hashtag habit: "#balkorea"
        words = out.split()
        if len(words) >= 2:
            k = rng.randrange(len(words) - 1)
            words[k : k + 2] = ["#" + words[k] + words[k + 1]]
            out = " ".join(words)
    return out if out != text else None


@dataclass(frozen=True, slots=True)
class Augmented:
    example: Example
    origin: int  # index of the row it was made from


def augment(examples: Sequence[Example], seed: int) -> list[Augmented]:
    """Masked copies of some ``examples`` (titles only; descriptions kept), deterministic for ``seed``.
    Rows from review decisions are not copied: they are the installation's own evidence."""
    rng = random.Random(seed * 7919 + 15)
    out: list[Augmented] = []
    for i, ex in enumerate(examples):
        if ex.source.startswith("decision:"):
            continue
        if rng.random() >= (RATE_ILLEGAL if ex.label else RATE_LEGIT):
            continue
        title = mask_text(rng, ex.title)
        if title is None:
            continue
        copy = replace(
            ex, title=title, source="augmented", family=f"augmented:{ex.family}", weight=ex.weight * WEIGHT
        )
        out.append(Augmented(copy, i))
    return out
