"""Train the model that ships in the wheel (``crawler/data/model/``) from the packaged corpus alone.

Run after changing the corpus, the features or the scorer: ``.venv/bin/python scripts/train_packaged.py``.
Deterministic for the seed (the card's date and the version's time stamp aside). The held-out rows of the
corpus are never trained on; the card records their figures, which the README quotes.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from crawler.terms.lexicon import Lexicon
from crawler.terms.model import PACKAGED_CARD, PACKAGED_MODEL, atomic_write
from crawler.terms.train import DEFAULT_SEED, load_corpus, train


def main() -> int:
    model, _heldout = train(
        load_corpus(), [], Lexicon.packaged(), seed=DEFAULT_SEED, when=datetime.now(UTC), progress=print
    )
    sha = model.save(PACKAGED_MODEL)
    card = {**model.card, "sha256": sha, "file": PACKAGED_MODEL.name, "packaged": True}
    atomic_write(PACKAGED_CARD, (json.dumps(card, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    cv = card["cross_validation"]["by_threshold"]["candidate"]
    held = card["heldout"]["by_threshold"]["candidate"]
    print(f"{model.version}: {PACKAGED_MODEL.stat().st_size:,} bytes, sha256 {sha[:12]}")
    print(f"cross-validation at candidate: P {cv['precision']:.3f} R {cv['recall']:.3f} F1 {cv['f1']:.3f}")
    print(
        f"held-out at candidate:         P {held['precision']:.3f} R {held['recall']:.3f} F1 {held['f1']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
