"""The learned model: product facts, features, training (deterministic), the retrain gate, decisions,
explanations with spans, artefact integrity, `tertib model eval|train|list|activate`, uncertainty order."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler import cli_common, review
from crawler.errors import UsageError
from crawler.terms import model as model_mod
from crawler.terms.evaluate import Example, evaluate, read_labelled
from crawler.terms.features import featurize, word_features
from crawler.terms.lexicon import Lexicon
from crawler.terms.model import Model, ModelError, load_packaged
from crawler.terms.normalise import normalise
from crawler.terms.product import analyse
from crawler.terms.scorer import Scorer, Thresholds
from crawler.terms.train import decision_split, fit, load_corpus, load_decisions, train, train_and_gate
from storage import repositories as repo
from storage.db import Database
from storage.models import CustodyEntry, Listing, ReviewDecision, Score

ROOT = Path(__file__).resolve().parent.parent
WHEN = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
LEX = Lexicon.packaged()


def tokens(text: str) -> list[str]:
    return normalise(text).text.split()


def small_corpus(n_per_label: int = 120) -> list[Example]:
    """A deterministic slice of the packaged corpus (training rows only), both labels."""
    rows = [ex for ex in load_corpus() if ex.split == "train" and ex.source != "generated"]
    pos = [ex for ex in rows if ex.label == 1][:n_per_label]
    neg = [ex for ex in rows if ex.label == 0][:n_per_label]
    return pos + neg


# -- product facts and features -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "condition", "bulk"),
    [
        ("Bal korea isi 300 pcs campur", "unknown", "unknown", "used_bale"),
        ("Balpres jaket bekas jepang 100 kg", "clothing", "used", "used_bale"),
        ("Kaos kaki baru dari pabrik per bal isi 240 pasang", "clothing", "new", "new_wholesale"),
        ("Kaos polos grosir konveksi 1 lusin", "clothing", "unknown", "new_wholesale"),
        ("Karung beras 50 kg", "non_clothing", "unknown", "non_clothing"),
        ("Mesin jahit bekas ex jepang", "non_clothing", "used", "none"),
        ("Volley ball Mikasa original", "non_clothing", "unknown", "non_clothing"),
        ("Jaket baru turun kontainer, stok baru datang", "clothing", "unknown", "none"),
        # worn accessories are clothing; household textiles their own kind, used or new
        ("Topi bekas import korea snapback", "clothing", "used", "none"),
        ("Selimut bekas jepang tebal", "textile", "used", "none"),
        ("Selimut baru grosir 1 kodi", "textile", "new", "new_wholesale"),
        # a denied condition word says the opposite; a lot of used clothes from abroad is a bale's meaning
        ("Jaket belum pernah dipakai, ex jepang", "clothing", "new", "none"),
        ("Kemeja bukan barang bekas", "clothing", "new", "none"),
        ("Tas tidak baru, dari korea", "clothing", "used", "none"),
        ("Paket reseller 20 pcs jaket jepang", "clothing", "unknown", "used_bale"),
    ],
)
def test_product_facts(text: str, kind: str, condition: str, bulk: str) -> None:
    facts = analyse(tokens(text))
    assert (facts.kind, facts.condition, facts.bulk) == (kind, condition, bulk)


def test_word_features_are_per_distinct_word() -> None:
    assert word_features("per") == []  # a function word: pairs only
    assert "c: ba" in word_features("bal") and "w:bal" in word_features("bal")
    assert word_features("300pcs")[0] == "w:0pcs"  # digit runs become 0
    once = featurize(tokens("jaket korea"), None)
    twice = featurize(tokens("jaket korea jaket"), None)
    assert once["w:jaket"] == twice["w:jaket"] == 1.0


# -- the packaged model ------------------------------------------------------------------------------


def test_packaged_model_loads_verified_and_scores() -> None:
    model = load_packaged()
    assert model.sha256 == json.loads(model_mod.PACKAGED_CARD.read_text())["sha256"]
    scorer = Scorer(LEX, Thresholds(), model)
    strong = scorer.score("bal korea isi 300 pcs")
    assert strong.verdict == "strong" and strong.model_version == model.version
    assert strong.rule_score is not None and strong.probability == strong.score
    # a family the rules alone miss, and one they wrongly flag
    assert scorer.score("Jaket bekas pakai orang jepang, baru turun kontainer").verdict in (
        "candidate",
        "strong",
    )
    assert scorer.score("Kaos kaki baru dari pabrik 1 bal isi 240 pasang").verdict in ("clear", "weak")


def test_packaged_model_heldout_figures_match_its_card_and_the_targets() -> None:
    model = load_packaged()
    heldout = [ex for ex in load_corpus() if ex.split == "heldout"]
    assert not any(ex.source == "generated" for ex in heldout)
    report = evaluate(Scorer(LEX, Thresholds(), model), heldout, mistakes=0)
    card = model.card["heldout"]["by_threshold"]["candidate"]
    assert report.candidate.to_dict()["f1"] == card["f1"]
    assert report.candidate.precision >= 0.95 and report.candidate.recall >= 0.92


def test_sandbox_catalog_with_the_model() -> None:
    from sandbox.catalog import generate

    examples = [
        Example(title=c.title, description=c.description, label=int(c.label == "illegal_import"))
        for c in generate(7, 1500)
    ]
    report = evaluate(Scorer(LEX, Thresholds(), load_packaged()), examples, mistakes=0)
    assert report.candidate.precision >= 0.95 and report.candidate.recall >= 0.92


def test_explanations_carry_spans_in_the_original_text() -> None:
    scorer = Scorer(LEX, Thresholds(), load_packaged())
    text = "PROMO!! B4L  K0REA isi 300pcs, dipakai orang jepang"
    result = scorer.score(text)
    data = result.to_dict()
    assert data["signals"] and data["features"]
    for item in data["signals"] + [f for f in data["features"] if "span" in f]:
        a, b = item["span"]
        assert text[a:b] == item["matched"]
        assert normalise(item["matched"]).text  # a real word of the text, not padding
    assert any(f.get("matched") for f in data["features"])
    assert data["product"]["bulk"] == "used_bale"
    assert result.explanation()["model_version"] == scorer.model_version


# -- training ---------------------------------------------------------------------------------------


def test_training_is_deterministic_for_a_seed() -> None:
    data = small_corpus()
    a = fit(data, LEX, seed=3, c_grid=(1.0,)).model
    b = fit(data, LEX, seed=3, c_grid=(1.0,)).model
    assert a.to_bytes() == b.to_bytes()
    assert a.weights and a.calibration[0] > 0


def test_decisions_change_the_next_model(db: Database) -> None:
    text = "Barang Gudang Zumbara jaket pilihan"  # nothing in the corpus says what "zumbara" is
    with db.session() as s:
        for i in range(12):
            key = f"shopee:{i}.1"
            lid, _ = repo.upsert_listing(
                s,
                {
                    "listing_key": key,
                    "platform": "shopee",
                    "listing_id": f"{i}.1",
                    "url": f"u{i}",
                    "title": f"{text} {i}",
                    "description": "",
                },
                seen_at=WHEN,
            )
            review.approve(s, [lid], by="siti", at=WHEN)
        # a simulated decision is no training data
        lid, _ = repo.upsert_listing(
            s,
            {
                "listing_key": "shopee:99.1",
                "platform": "shopee",
                "listing_id": "99.1",
                "url": "u99",
                "title": "kaos polos",
                "description": "",
            },
            seen_at=WHEN,
        )
        review.approve(s, [lid], by="robot", simulated=True, at=WHEN)
        decisions = load_decisions(s)
    assert len(decisions) == 12 and all(d.label == 1 and d.weight > 1 for d in decisions)
    corpus = small_corpus()
    before, _ = train(corpus, [], LEX, c_grid=(1.0,), when=WHEN)
    after, _ = train(corpus, decisions, LEX, c_grid=(1.0,), when=WHEN)
    probe = "Zumbara jaket pilihan murah"
    p_before = Scorer(LEX, Thresholds(), before).score(probe).score
    p_after = Scorer(LEX, Thresholds(), after).score(probe).score
    assert p_after > p_before + 0.2
    assert after.card["data"]["decisions"]["approve"] == 12
    assert after.version != before.version


def test_latest_decision_wins_and_split_is_stable(db: Database) -> None:
    with db.session() as s:
        lid, _ = repo.upsert_listing(
            s,
            {
                "listing_key": "lazada:1",
                "platform": "lazada",
                "listing_id": "1",
                "url": "u",
                "title": "t",
                "description": "",
            },
            seen_at=WHEN,
        )
        review.approve(s, [lid], by="a", at=WHEN)
        review.reject(s, [lid], by="b", reason="legit_new", at=WHEN.replace(hour=5))
        (only,) = load_decisions(s)
    assert only.label == 0 and only.split == decision_split("lazada:1")


# -- the gate, files and custody ---------------------------------------------------------------------


def _flipped_corpus(tmp_path: Path) -> Path:
    """The packaged corpus with every *training* label flipped (held-out rows untouched)."""
    src = (ROOT / "crawler" / "data" / "corpus.tsv").read_text(encoding="utf-8").splitlines()
    out = [src[0]]
    for line in src[1:]:
        cols = line.split("\t")
        if cols[0] == "train":
            cols[1] = "legit" if cols[1] == "illegal" else "illegal"
        out.append("\t".join(cols))
    path = tmp_path / "flipped.tsv"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def test_retrain_gate_refuses_a_worse_model_and_force_is_logged(db: Database, tmp_path: Path) -> None:
    settings = cli_common.settings()
    with db.session() as s:
        worse, result = train_and_gate(
            s, settings, LEX, actor="ana", corpus_path=_flipped_corpus(tmp_path), c_grid=(1.0,)
        )
    assert not result.activated and "not at least as good" in result.reason
    assert model_mod.read_pointer(settings.data_dir) is None  # the packaged model stays active
    assert model_mod.load_active(settings.data_dir).version == load_packaged().version
    assert (settings.data_dir / "models" / f"{worse.version}.json.gz").is_file()  # kept, not active
    with db.session() as s:
        forced, result = train_and_gate(
            s, settings, LEX, actor="ana", corpus_path=_flipped_corpus(tmp_path), force=True, c_grid=(1.0,)
        )
    assert result.activated and result.forced
    assert model_mod.load_active(settings.data_dir).version == forced.version
    with db.session() as s:
        actions = [
            (e.action, e.details.get("forced"))
            for e in s.scalars(select(CustodyEntry).order_by(CustodyEntry.seq))
        ]
    assert ("model_refused", None) in actions
    assert ("model_activate", True) in actions
    assert [a for a, _ in actions].count("model_train") == 2


def test_a_good_model_is_activated_and_scores_record_its_version(db: Database) -> None:
    settings = cli_common.settings()
    with db.session() as s:
        # same corpus, seed and lexicon as the packaged model: the same model, so "at least as good"
        new, result = train_and_gate(s, settings, LEX, actor="ana")
    assert result.activated, result.reason
    assert new.weights == load_packaged().weights
    pointer = model_mod.read_pointer(settings.data_dir)
    assert pointer is not None and pointer["version"] == new.version and pointer["sha256"] == new.sha256
    scorer = Scorer(LEX, Thresholds(), model_mod.load_for_settings(settings))
    scored = scorer.score("bal korea isi 300 pcs").to_dict()
    with db.session() as s:
        lid, _ = repo.upsert_listing(
            s,
            {
                "listing_key": "blibli:1",
                "platform": "blibli",
                "listing_id": "1",
                "url": "u",
                "title": "t",
                "description": "",
            },
            seen_at=WHEN,
        )
        repo.add_score(
            s, listing_id=lid, value=scored["score"], verdict=scored["verdict"], explanation=scored,
            scorer_version="terms-1.0",
        )  # fmt: skip
        row = s.scalars(select(Score)).one()
        assert row.model_version == new.version


@pytest.mark.parametrize("damage", ["missing", "truncated", "altered", "other-format", "other-featurizer"])
def test_broken_model_files_are_refused_with_one_line(tmp_path: Path, damage: str) -> None:
    model = load_packaged()
    path = tmp_path / "m.json.gz"
    sha = model.save(path)
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:500])
        sha = ""  # even without a recorded hash, a truncated file is caught
    elif damage == "altered":
        data = bytearray(path.read_bytes())
        data[100] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        payload = json.loads(gzip.decompress(path.read_bytes()))
        if damage == "other-format":
            payload["format_version"] = 99
        else:
            payload["featurizer"] = "f0"
        path.write_bytes(gzip.compress(json.dumps(payload).encode()))
        sha = ""
    with pytest.raises(ModelError) as err:
        Model.load(path, sha or None)
    assert "\n" not in str(err.value)
    assert str(path) in str(err.value) or "featurizer f0" in str(err.value)


def test_a_failed_write_never_replaces_a_good_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_packaged()
    path = tmp_path / "m.json.gz"
    sha = model.save(path)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("storage.blobs.os.replace", broken_replace)
    with pytest.raises(OSError):
        model.save(path)
    monkeypatch.undo()
    assert Model.load(path, sha).version == model.version
    assert [p.name for p in tmp_path.iterdir()] == ["m.json.gz"]  # no temp file left behind


def run_cli(args: list[str], tmp_path: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TERTIB_")}
    environ.update({"PYTHONPATH": str(ROOT), "TERTIB_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        input=stdin, capture_output=True, text=True, cwd=tmp_path, env=environ, timeout=120,
    )  # fmt: skip


def test_score_with_a_broken_active_model_is_one_line_and_non_zero(tmp_path: Path) -> None:
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    (models / "tm-x.json.gz").write_bytes(b"\x1f\x8b truncated")
    (models / "active.json").write_text(json.dumps({"version": "tm-x", "sha256": "0" * 64}))
    proc = run_cli(["score"], tmp_path, "bal korea\n")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "does not match its recorded SHA-256" in proc.stderr
    assert "Traceback" not in proc.stderr
    rules = run_cli(["score"], tmp_path, "bal korea\n", TERTIB_MODEL="rules")
    assert rules.returncode == 0 and "model_version" not in json.loads(rules.stdout)


# -- evaluation ---------------------------------------------------------------------------------------


def test_model_eval_text_and_json(tmp_path: Path) -> None:
    labelled = tmp_path / "set.tsv"
    labelled.write_text(
        "label\ttitle\tdescription\n"
        "illegal\tBal korea isi 300 pcs\n"
        "illegal\tJaket bekas pakai orang jepang\tbaru turun kontainer\n"
        "legit\tKaos polos per lusin konveksi\n"
        "legit_new\tVolley ball Mikasa\n"
        "unclear\tThrift Scout Store\n",
        encoding="utf-8",
    )
    proc = run_cli(["model", "eval", str(labelled), "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["n"] == 4 and data["positives"] == 2 and data["unclear_skipped"] == 1
    assert set(data["by_threshold"]) == {"strong", "candidate", "weak"}
    assert sum(sum(row.values()) for row in data["confusion"].values()) == 4
    assert data["model_version"]
    text = run_cli(["model", "eval", str(labelled)], tmp_path)
    assert text.returncode == 0 and "confusion" in text.stdout and "precision" in text.stdout
    assert not (tmp_path / "data").exists()  # evaluation creates no data dir


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("illegal\n", "expected label<TAB>title"),
        ("maybe\tbal korea\n", "unknown label"),
        ("illegal\t \n", "empty title"),
        ("a\tb\tc\td\te\n", "5 column"),
    ],
)
def test_model_eval_rejects_malformed_rows_with_one_line(tmp_path: Path, content: str, message: str) -> None:
    labelled = tmp_path / "bad.tsv"
    labelled.write_text("illegal\tbal korea\n" + content, encoding="utf-8")
    with pytest.raises(UsageError, match=message) as err:
        read_labelled(labelled)
    assert ":2:" in str(err.value)
    proc = run_cli(["model", "eval", str(labelled)], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_model_train_list_show_activate_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from crawler.cli import app

    runner = CliRunner()
    data_dir = str(tmp_path / "data")
    trained = runner.invoke(app, ["--data-dir", data_dir, "model", "train", "--by", "ana"])
    assert trained.exit_code == 0, trained.output
    assert "activated" in trained.output
    listed = runner.invoke(app, ["--data-dir", data_dir, "model", "list"])
    assert listed.exit_code == 0 and "detection models" in listed.output
    pointer = model_mod.read_pointer(Path(data_dir))
    assert pointer is not None
    shown = runner.invoke(app, ["--data-dir", data_dir, "model", "show", pointer["version"]])
    assert json.loads(shown.output)["sha256"] == pointer["sha256"]
    again = runner.invoke(
        app, ["--data-dir", data_dir, "model", "activate", pointer["version"], "--by", "ana"]
    )
    assert again.exit_code == 0, again.output
    missing = runner.invoke(app, ["--data-dir", data_dir, "model", "activate", "tm-nope"])
    assert missing.exit_code != 0
    cli_common.set_overrides()


# -- active learning -----------------------------------------------------------------------------------


def test_review_queue_ordered_by_uncertainty(db: Database) -> None:
    ids = {}
    with db.session() as s:
        for key, value, verdict in (
            ("tokopedia:1", 0.97, "strong"),
            ("tokopedia:2", 0.62, "candidate"),
            ("tokopedia:3", 0.41, "weak"),
            ("tokopedia:4", 0.05, "clear"),
        ):
            lid, _ = repo.upsert_listing(
                s,
                {
                    "listing_key": key,
                    "platform": "tokopedia",
                    "listing_id": key[-1],
                    "url": key,
                    "title": key,
                    "description": "",
                },
                seen_at=WHEN,
            )
            repo.add_score(
                s, listing_id=lid, value=value, verdict=verdict, explanation={}, scorer_version="t"
            )
            ids[key] = lid
    with db.session() as s:
        by_score = [i.listing_key for i in review.review_queue(s)]
        uncertain = [i.listing_key for i in review.review_queue(s, order="uncertain")]
        assert by_score == ["tokopedia:1", "tokopedia:2"]
        assert uncertain == ["tokopedia:3", "tokopedia:2", "tokopedia:1"]
        assert review.queue_size(s, order="uncertain") == 3
        with pytest.raises(UsageError, match="unknown order"):
            review.review_queue(s, order="random")
        review.approve(s, [ids["tokopedia:3"]], by="ana")
        assert next(i.listing_key for i in review.review_queue(s, order="uncertain")) == "tokopedia:2"
        assert s.scalars(select(ReviewDecision)).one().listing_id == ids["tokopedia:3"]
        assert s.get(Listing, ids["tokopedia:4"]) is not None


def test_export_signal_column_shows_the_models_words() -> None:
    from crawler.exports.rows import matched_signals

    explanation = (
        Scorer(LEX, Thresholds(), load_packaged()).score("Jaket bekas dari kontainer korea").explanation()
    )
    text = matched_signals(explanation)
    assert 'model "' in text
    rules_only = matched_signals({"signals": [{"term": "bal", "matched": "Bal", "weight": 0.75}]})
    assert rules_only == "bal"  # scores made by the rules alone read as before


def test_scoring_matches_the_training_features_exactly() -> None:
    """The scorer's memoised sums equal the plain dot product over :func:`featurize` (what training saw)."""
    model = load_packaged()
    rules = Scorer(LEX)
    texts = [ex.text for ex in load_corpus()[::7]] + [
        "stok baru datang jaket bekas korea",
        "kaos kaos kaos polos polos per lusin",
        "100kg bal 2lusin",
        "jaket belum pernah dipakai stok baru",
        "tas tidak baru bukan bekas tanpa noda",
        "",
    ]
    for text in texts:
        norm = normalise(text)
        toks = norm.text.split()
        result = rules.rule_result(norm)
        expected = model.intercept + sum(
            model.weights.get(k, 0.0) * v for k, v in featurize(toks, result).items()
        )
        z, facts = model.linear(toks, result)
        assert abs(z - expected) < 1e-9, text
        assert facts.names == analyse(toks).names, text


def test_masked_copies_are_deterministic_linked_and_never_of_decisions() -> None:
    """Training's masked copies (:mod:`crawler.terms.augment`): same seed, same copies; each copy links to
    the row it came from, keeps its label, disguises a word of it; decision rows are never copied."""
    from crawler.terms.augment import augment

    rows = [*small_corpus(60), Example(title="bal korea isi 300", label=1, source="decision:x")]
    first, again, other = augment(rows, 0), augment(rows, 0), augment(rows, 1)
    assert [a.example.title for a in first] == [a.example.title for a in again]
    assert [a.example.title for a in first] != [a.example.title for a in other]
    assert {a.example.label for a in first} == {0, 1}  # both labels: a mask is not a sign by itself
    for a in first:
        row = rows[a.origin]
        assert not row.source.startswith("decision:")
        assert a.example.label == row.label and a.example.title != row.title
        assert a.example.source == "augmented" and a.example.weight == row.weight * 0.5
