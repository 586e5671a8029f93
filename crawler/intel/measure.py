"""How well the inferred networks match the sandbox's truth (``/_sandbox/truth`` → ``networks``).

:func:`compare` takes tertib's networks (``tertib intel networks --json`` → ``networks``) and the truth and
reports:

- **grouping**, pairwise over the accounts tertib saw that belong to a merchant of the illegal trade: of
  the account pairs tertib put in one network, the share that are one merchant (precision), and of the pairs
  that are one merchant, the share tertib put together (recall); accounts of sellers outside the trade that
  tertib joined to a network count against precision;
- **top 10**: tertib's ten best networks, each named by the merchant most of its accounts belong to,
  against the truth's ten wholesale merchants with the largest volume.

Used by ``scripts/measure_intel.py`` (a real sweep of the sandbox over several virtual days) and the tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any


def _pairs(groups: Sequence[Sequence[str]]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for group in groups:
        for a, b in combinations(sorted(set(group)), 2):
            out.add((a, b))
    return out


def compare(
    inferred: Sequence[Mapping[str, Any]], truth: Sequence[Mapping[str, Any]], *, top: int = 10
) -> dict[str, Any]:
    owner = {acc: t["id"] for t in truth for acc in t["accounts"]}
    trade = {t["id"] for t in truth if t.get("illegal", True)}
    seen = {acc for n in inferred for acc in n["accounts"]}
    # grouping: inferred networks restricted to accounts of the trade (others reported separately)
    in_trade = [[a for a in n["accounts"] if owner.get(a) in trade] for n in inferred]
    outsiders = sum(1 for n in inferred for a in n["accounts"] if owner.get(a) not in trade)
    mixed = sum(
        1
        for n in inferred
        if any(owner.get(a) in trade for a in n["accounts"])
        and any(owner.get(a) not in trade for a in n["accounts"])
    )
    true_groups: dict[str, list[str]] = {}
    for acc in seen:
        if owner.get(acc) in trade:
            true_groups.setdefault(owner[acc], []).append(acc)
    predicted, actual = _pairs(in_trade), _pairs(list(true_groups.values()))
    hits = len(predicted & actual)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(actual) if actual else 1.0
    # merchants split over several inferred networks, and networks holding several merchants
    split = sum(1 for accs in true_groups.values() if len({_net_of(inferred, a) for a in accs}) > 1)
    merged = sum(1 for accs in in_trade if len({owner[a] for a in accs}) > 1)
    # top N
    wholesale = [t for t in truth if t.get("role") == "wholesale" and t["id"] in trade]
    wholesale.sort(key=lambda t: (-t["volume_units"], t["id"]))
    true_top = [t["id"] for t in wholesale[:top]]
    named: list[str | None] = []
    for n in inferred[:top]:
        merchants = Counter(owner.get(a) for a in n["accounts"] if owner.get(a) is not None)
        named.append(merchants.most_common(1)[0][0] if merchants else None)
    overlap = len(set(true_top) & {m for m in named if m is not None})
    trade_accounts = {acc for t in truth if t["id"] in trade for acc in t["accounts"]}
    return {
        "grouping": {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "pairs_inferred": len(predicted),
            "pairs_true": len(actual),
            "merchants_split": split,
            "networks_merging_merchants": merged,
            "outsider_accounts_in_networks": outsiders,
            "networks_mixing_outsiders": mixed,
            "accounts_seen": len(seen & trade_accounts),
            "accounts_in_trade": len(trade_accounts),
        },
        "top": {"n": top, "overlap": overlap, "truth": true_top, "inferred": named},
    }


def _net_of(inferred: Sequence[Mapping[str, Any]], account: str) -> int:
    for i, n in enumerate(inferred):
        if account in n["accounts"]:
            return i
    return -1


__all__ = ["compare"]
