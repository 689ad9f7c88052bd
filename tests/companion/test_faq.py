"""FAQ file validation, pure top-k search, the confidence decision and retrieval quality on held-out paraphrases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.faq.encoder import MiniLMEncoder
from models.faq.search import Hit, Thresholds, decide, top_k
from models.faq.store import FaqEntry, FaqLoadError, load_collection
from models.faq.tfidf_baseline import TfidfEncoder
from training.faq.evaluate import DEFAULT_EVAL, DEFAULT_FAQ, load_eval, run_encoder


def test_shipped_faq_is_valid_and_large_enough() -> None:
    col = load_collection(DEFAULT_FAQ)
    assert col.name == "platform"
    assert len(col.entries) >= 40
    tags = {t for e in col.entries for t in e.tags}
    assert {"uploads", "moderation", "appeals", "account", "recommendations", "copyright"} <= tags


def test_eval_set_is_held_out_from_faq_phrasings() -> None:
    phrasings = {q.lower().strip() for e in load_collection(DEFAULT_FAQ).entries for q in e.questions}
    ev = load_eval(DEFAULT_EVAL)
    assert len(ev.in_scope) >= 50 and len(ev.out_of_scope) >= 20
    assert not phrasings & {q.lower().strip() for q, _ in ev.in_scope}
    assert {g for _, g in ev.in_scope} <= {e.id for e in load_collection(DEFAULT_FAQ).entries}


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "faq.yaml"
    p.write_text(text)
    return p


def test_duplicate_id_refused_with_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "entries:\n  - id: a\n    questions: [x]\n    answer: y\n"
                         "  - id: b\n    questions: [x2]\n    answer: y\n"
                         "  - id: a\n    questions: [z]\n    answer: w\n")
    with pytest.raises(FaqLoadError) as exc:
        load_collection(p)
    assert exc.value.line == 8
    assert "duplicate id 'a'" in str(exc.value) and "line 2" in str(exc.value)


def test_missing_answer_refused_with_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "entries:\n  - id: a\n    questions: [x]\n    answer: y\n  - id: b\n    questions: [q]\n")
    with pytest.raises(FaqLoadError) as exc:
        load_collection(p)
    assert exc.value.line == 5 and "no answer" in exc.value.reason


@pytest.mark.parametrize(("text", "line"), [
    ("entries:\n  - id: a\n    questions: [x]\n    answer: '   '\n", 4),
    ("entries:\n  - id: a\n    questions: []\n    answer: y\n", 3),
    ("entries:\n  - id: a\n    questions: [x\n    answer: y\n", 4),
    ("entries: []\n", 1),
])
def test_malformed_files_refused(tmp_path: Path, text: str, line: int) -> None:
    with pytest.raises(FaqLoadError) as exc:
        load_collection(_write(tmp_path, text))
    assert exc.value.line == line


def test_top_k_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    corpus = rng.normal(size=(200, 16))
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    q = rng.normal(size=(3, 16))
    for row, hits in zip(q @ corpus.T, top_k(q, corpus, 7), strict=True):
        assert [i for i, _ in hits] == list(np.argsort(-row)[:7])
        assert [s for _, s in hits] == pytest.approx(sorted(row, reverse=True)[:7])


def _hits(*scores: float) -> list[Hit]:
    return [Hit(FaqEntry(f"e{n}", ("q",), "a"), s, "q") for n, s in enumerate(scores)]


def test_decide_threshold_and_gap() -> None:
    t = Thresholds(0.4, 0.05)
    assert decide(_hits(0.8, 0.5), t, 3).confident
    low = decide(_hits(0.39, 0.1), t, 3)
    assert not low.confident and low.best is None and "below threshold" in low.reason
    close = decide(_hits(0.8, 0.77, 0.2), t, 3)
    assert not close.confident and [h.entry.id for h in close.alternatives] == ["e0", "e1", "e2"]


def test_quality_minilm_beats_tfidf_on_held_out_paraphrases(encoder: MiniLMEncoder) -> None:
    ev = load_eval(DEFAULT_EVAL)
    ours = run_encoder(encoder, DEFAULT_FAQ, ev)
    base = run_encoder(TfidfEncoder(), DEFAULT_FAQ, ev)
    # Measured: MiniLM top-1 0.746 / MRR 0.824; TF-IDF 0.305 / 0.413; OOS rejected on the test half 0.917.
    assert ours["ranking_all_in_scope"]["top1"] >= 0.70
    assert ours["ranking_all_in_scope"]["mrr@5"] >= 0.78
    assert ours["ranking_all_in_scope"]["top1"] >= base["ranking_all_in_scope"]["top1"] + 0.2
    assert ours["test_half_calibrated"]["out_of_scope_rejected"] >= 0.8
    assert ours["test_half_calibrated"]["in_scope_answered_correctly"] >= 0.6
