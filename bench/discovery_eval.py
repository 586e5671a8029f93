"""Emerging-term discovery, measured the way a new user would meet it, with words nobody tuned on.

Per run (seed ``S``):

1. five fresh pronounceable pseudo-words (``sandbox.words.pseudo_words``; they appear nowhere in the code);
2. ``tertib sandbox catalog --seed S --size N --drift-terms a,b,c,d,e`` and a sandbox serving it;
3. for each mode (default ``--details weak`` and ``--details none``), in a fresh data dir:
   ``tertib sweep --sandbox URL -p tokopedia -p lazada -p blibli --max-pages 3 --details MODE`` (its
   follow-up crawls the background and runs discovery), then ``tertib terms suggest -n 25 --json``;
4. score the 25: how many of the 5 drift words are among them (exactly, or inside a longer phrase), and how
   many proposals are junk, by two judges:

   - the **word judge** (the issue's categories): sizes, colours, garment names, brands, cities or generic
     commerce words — :data:`JUDGE`, a list written for this script, separate from the ranker's
     ``ordinary_words.txt`` but sharing most of its words with it (the overlap is printed), so it says
     little on its own;
   - the **truth judge**, which uses no word list: the catalog's own labels. A proposal is junk when fewer
     than half of the catalog listings using it (normalised title + description, whole words) are illegal
     imports — ordinary sellers use it at least as often as bale sellers (the catalog's base rate of illegal
     listings is about 35 %);
5. ablations on the same stored sweep, in-process: discovery without the ordinary-word list, without
   context similarity, and with neither.

Screenshots are off (``--no-screenshots``): they take minutes and do not change what discovery reads.
Prints one line per run and mode and a summary; ``--json FILE`` keeps everything.

Reproduce: ``.venv/bin/python bench/discovery_eval.py --runs 5`` (about 2 minutes per run on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawler.terms.normalise import normalise_phrase  # noqa: E402
from sandbox.server import SandboxProcess  # noqa: E402
from sandbox.words import pseudo_words  # noqa: E402

PLATFORMS = ("tokopedia", "lazada", "blibli")

# The judge: what counts as junk in a proposal list. Written for this script from everyday marketplace
# vocabulary — not copied from the ranker's list (crawler/data/ordinary_words.txt) nor from the catalog
# generator's tables; overlap with the ranker's list is reported by the script.
JUDGE: dict[str, str] = {
    "size": "s m l xl xxl xxxl 2xl 3xl allsize size ukuran oversize bigsize jumbo fit lebar panjang pendek",
    "colour": """hitam putih merah biru hijau kuning ungu pink coklat abu abuabu navy maroon cream krem mocca
        army olive khaki tosca dongker botol mustard lilac peach black white red blue green grey gray brown
        beige warna polos motif""",
    "garment": """baju pakaian kaos kaus kemeja jaket jacket celana hoodie sweater dress rok blazer cardigan
        coat parka flanel flannel jeans denim chino chinos cargo kulot jogger legging gamis tunik blouse outer
        vest rompi windbreaker sweatshirt polo kulit leather atasan bawahan setelan piyama topi sepatu tas""",
    "brand": """uniqlo nike adidas zara levis levi north face champion carhartt gap columbia puma ralph lauren
        tommy hilfiger tomy muji erigo roughneck thanksinsomnia cottonink kamengski brodo eiger hm converse
        vans""",
    "city": """jakarta bandung surabaya medan makassar batam pekanbaru pontianak samarinda palembang jambi
        yogyakarta jogja semarang bekasi tangerang depok bogor denpasar bali manado kendari malang solo barat
        timur utara selatan""",
    "commerce": """ready stok stock cod ongkir gratis free promo diskon sale murah termurah grosir ecer
        reseller original ori asli garansi nego order checkout kirim pengiriman packing rapi hari kerja new
        baru terbaru best seller terlaris hits premium kualitas bagus merk brand toko shop store harga voucher
        area lokasi dulu tanya sebelum tempat ambil langsung""",
}
JUDGE_WORDS = {w: kind for kind, words in JUDGE.items() for w in normalise_phrase(words).split()}
FUNCTION_WORDS = {"dan", "di", "ke", "dari", "yang", "untuk", "dengan", "atau", "bisa", "ada", "pakai"}


def judge(phrase: str) -> str | None:
    """The junk kind of a proposal (every word everyday vocabulary, one at least from the judge), or None."""
    words = normalise_phrase(phrase).split()
    kinds = [JUDGE_WORDS.get(w) for w in words if w not in FUNCTION_WORDS]
    if kinds and all(kinds):
        return kinds[0]
    return None


def catalog_texts(seed: int, size: int, words: tuple[str, ...]) -> list[tuple[str, bool]]:
    """(normalised title + description, is an illegal import) for every listing of the run's catalog — the
    same catalog ``tertib sandbox catalog`` wrote (generation is seeded)."""
    from sandbox.catalog import generate

    return [
        (f" {normalise_phrase(f'{x.title} {x.description}')} ", x.label == "illegal_import")
        for x in generate(seed, size, drift_terms=words)
    ]


def truth_share(phrase: str, texts: list[tuple[str, bool]]) -> tuple[int, float]:
    """(listings using ``phrase``, share of them that are illegal imports)."""
    needle = f" {phrase} "
    hits = [illegal for text, illegal in texts if needle in text]
    return len(hits), (sum(hits) / len(hits) if hits else 0.0)


def truth_junk(phrases: list[str], texts: list[tuple[str, bool]]) -> dict[str, float]:
    """Proposals ordinary sellers use as often as bale sellers (illegal share < 0.5): phrase → share."""
    out = {}
    for p in phrases:
        n, share = truth_share(p, texts)
        if n and share < 0.5:
            out[p] = round(share, 2)
    return out


def drift_hits(phrases: list[str], words: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(drift words that are a proposal exactly, drift words inside some proposal)."""
    exact = [w for w in words if w in phrases]
    inside = [w for w in words if any(f" {w} " in f" {p} " for p in phrases)]
    return exact, inside


def tertib(data_dir: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "crawler.cli", "--data-dir", str(data_dir), *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(cmd, env=env, text=True, capture_output=True, timeout=timeout, check=False)


def ablations(data_dir: Path, words: tuple[str, ...], texts: list[tuple[str, bool]]) -> dict[str, Any]:
    """Discovery re-run in-process on the stored sweep with parts switched off (nothing stored)."""
    code = f"""
import json, sys
from dataclasses import replace
from crawler.config import load_settings
from storage.db import Database
from crawler.terms.discovery import Options, analyse, gather
db = Database(load_settings(data_dir={str(data_dir)!r}).db_url)
out = {{}}
with db.session() as s:
    inputs = gather(s, 1)
    for name, opt in (("full", Options()), ("no-ordinary", Options(use_ordinary=False)),
                      ("no-context", Options(use_context=False)),
                      ("contrast-only", Options(use_ordinary=False, use_context=False))):
        r = analyse(inputs, replace(opt, limit=25))
        out[name] = [p.phrase for p in r.proposals][:25]
print(json.dumps(out))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
        capture_output=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    lists: dict[str, list[str]] = json.loads(proc.stdout)
    return {
        name: {
            "found": len(drift_hits(phrases, words)[0]),
            "junk": sum(1 for p in phrases if judge(p) and not any(w in p.split() for w in words)),
            "truth_junk": len(truth_junk(phrases, texts)),
            "proposals": len(phrases),
        }
        for name, phrases in lists.items()
    }


def one_run(seed: int, size: int, max_pages: int, modes: list[str], work: Path) -> list[dict[str, Any]]:
    words = pseudo_words(seed)
    catalog = work / f"catalog-{seed}.jsonl"
    made = tertib(work / "unused", "sandbox", "catalog", "--seed", str(seed), "--size", str(size),
                  "--drift-terms", ",".join(words), "--out", str(catalog))  # fmt: skip
    if made.returncode != 0:
        raise SystemExit(f"catalog failed: {made.stderr.strip()}")
    texts = catalog_texts(seed, size, words)
    results: list[dict[str, Any]] = []
    with SandboxProcess(catalog=catalog, seed=seed) as url:
        for mode in modes:
            data = work / f"data-{seed}-{mode}"
            started = time.monotonic()
            sweep = tertib(data, "sweep", "--sandbox", url, *[a for p in PLATFORMS for a in ("-p", p)],
                           "--max-pages", str(max_pages), "--details", mode, "--no-screenshots",
                           "--no-progress")  # fmt: skip
            elapsed = time.monotonic() - started
            if sweep.returncode != 0:
                raise SystemExit(f"sweep failed (seed {seed}, {mode}): {sweep.stderr.strip()[-500:]}")
            suggest = tertib(data, "terms", "suggest", "-n", "25", "--json")
            rows = [json.loads(line) for line in suggest.stdout.splitlines() if line.strip()]
            phrases = [normalise_phrase(r["phrase"]) for r in rows]
            exact, inside = drift_hits(phrases, words)
            junk = {p: judge(p) for p in phrases if judge(p) and not any(w in p.split() for w in words)}
            others = [p for p in phrases if p not in words and p not in junk]
            shares = {p: truth_share(p, texts) for p in phrases}
            results.append(
                {
                    "seed": seed,
                    "mode": mode,
                    "words": list(words),
                    "found": exact,
                    "found_inside": inside,
                    "missed": [w for w in words if w not in exact],
                    "proposals": phrases,
                    "junk": junk,
                    "truth_junk": truth_junk(phrases, texts),
                    "truth_shares": {p: [n, round(x, 2)] for p, (n, x) in shares.items()},
                    "others": others,
                    "sweep_seconds": round(elapsed, 1),
                    "ablations": ablations(data, words, texts),
                }
            )
            r = results[-1]
            print(
                f"seed {seed} {mode:>5}: drift {len(exact)}/5 ({len(inside)}/5 inside a phrase), "
                f"junk {len(junk)}/{len(phrases)} (truth judge {len(r['truth_junk'])}), other {len(others)}, "
                f"sweep+discovery {elapsed:.0f} s; missed {r['missed'] or '-'}; junk {sorted(junk) or '-'}; "
                f"truth junk {r['truth_junk'] or '-'}; others {others or '-'}; "
                + "; ".join(
                    f"{k} {v.get('found')}/5 junk {v.get('junk')} truth {v.get('truth_junk')}"
                    for k, v in r["ablations"].items()
                ),
                flush=True,
            )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=101, help="first seed (runs use seed, seed+1, …)")
    parser.add_argument("--size", type=int, default=6000)
    parser.add_argument("--max-pages", type=int, default=3)
    parser.add_argument("--modes", default="weak,none")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument("--keep", type=Path, default=None, help="keep catalogs and data dirs here")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    ranker = {w for line in (ROOT / "crawler/data/ordinary_words.txt").read_text().splitlines()
              if not line.startswith("#") for w in normalise_phrase(line).split()}  # fmt: skip
    shared = sorted(set(JUDGE_WORDS) & ranker)
    print(f"judge list: {len(JUDGE_WORDS)} words, {len(shared)} of them also in the ranker's ordinary list")
    all_results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tertib-discovery-eval-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for i in range(args.runs):
            all_results += one_run(args.seed + i, args.size, args.max_pages, modes, work)
    print("\nsummary (drift words of 5 in the top 25; junk of 25 by the word judge and the truth judge)")
    for mode in modes:
        rs = [r for r in all_results if r["mode"] == mode]
        found = [len(r["found"]) for r in rs]
        junk = [len(r["junk"]) for r in rs]
        truth = [len(r["truth_junk"]) for r in rs]
        print(
            f"  --details {mode}: drift {found} (min {min(found)}), junk {junk} (max {max(junk)}), "
            f"truth-judge junk {truth} (max {max(truth)}), "
            f"all 5 in {sum(1 for f in found if f == 5)}/{len(rs)} runs"
        )
    if args.json:
        args.json.write_text(json.dumps({"judge_overlap": shared, "runs": all_results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
