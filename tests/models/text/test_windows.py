"""Sliding windows of whole sentences: coverage, size, overlap, and explanations that quote real sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.language import detect_language
from models.text.classifier import TextClassifier
from models.text.windows import split_sentences


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> TextClassifier:
    from training.text.tiny import build_tiny_checkpoint

    path = build_tiny_checkpoint(Path(tmp_path_factory.mktemp("m")) / "tiny", seed=3)
    return TextClassifier(str(path), max_tokens=64, batch_size=8)


def test_short_text_is_one_window_with_the_usual_special_tokens(model: TextClassifier) -> None:
    text = "A short comment about a film."
    [(start, end, ids)] = model.windowing.windows(text)
    assert (start, end) == (0, len(text))
    assert ids == list(model.tokenizer(text)["input_ids"])


@pytest.mark.parametrize("text", [
    " ".join(f"Sentence number {i} talks about the plot of the film." for i in range(60)),
    "".join(f"这是第{i}句话，讲的是电影的剧情。" for i in range(80)),
    "word " * 700,  # no sentence punctuation at all: one overlong sentence, cut into windows
])
def test_windows_cover_the_text_and_fit_the_model(model: TextClassifier, text: str) -> None:
    windows = model.windowing.windows(text)
    assert len(windows) > 1
    assert all(len(ids) <= model.max_tokens for _, _, ids in windows)
    assert windows[0][0] == 0 and windows[-1][1] == len(text.rstrip())
    for (_, end_a, _), (start_b, _, _) in zip(windows, windows[1:], strict=False):
        assert start_b <= end_a + 1, "a gap between windows would leave text unscored"


def test_explanation_quotes_whole_chinese_sentences_from_the_worst_window(model: TextClassifier) -> None:
    text = "".join(f"第{i}句：今天的天气不错，我们去看了电影！" for i in range(60))
    [result] = model.score([text])
    assert result.windows > 1
    worst = result.top_windows[0]
    assert text[worst.start:worst.end] == worst.text
    assert 1 <= len(result.sentences) <= 3
    for s in result.sentences:
        assert text[s.start:s.end] == s.text
        assert s.text.endswith(("。", "！", "？"))
        assert worst.start <= s.start and s.end <= worst.end
    assert max(result.scores.values()) == pytest.approx(max(max(w.scores.values()) for w in result.top_windows),
                                                        abs=1e-3)


def test_sentence_split_handles_both_scripts() -> None:
    text = "第一句。第二句！Third one? Fourth.\n第五句"
    assert [text[a:b] for a, b in split_sentences(text)] == ["第一句。", "第二句！", "Third one?", "Fourth.", "第五句"]


@pytest.mark.parametrize(("text", "lang"), [
    ("今天天气很好，我们去看电影吧", "zh"), ("今天天氣很好，我們去看電影吧", "zh"), ("lol 笑死我了 xswl", "zh"),
    ("This film was great", "en"), ("great film 好", "en"), ("🔥🔥🔥 1234", "en"), ("", "en"),
])
def test_language_detection(text: str, lang: str) -> None:
    assert detect_language(text) == lang
