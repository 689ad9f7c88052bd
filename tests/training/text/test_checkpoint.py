"""Checkpoint round trip: the saved standard BERT checkpoint reproduces mean pooling + head exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from models.text.classifier import TextClassifier
from models.text.labels import CATEGORIES
from training.text import train
from training.text.tiny import build_tiny_checkpoint, minilm_path

TEXTS = ["I am a gay Muslim woman", "you absolute idiot", "hi", "The plot is long. " * 12, "你好 😀", "   x   "]


@pytest.fixture(scope="module")
def pooling_model():
    return train.build_pooling_model(minilm_path())


def test_layer7_cls_is_layernorm_of_mean_pooling(pooling_model):
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    feats, _ = train.featurize(pooling_model, tok, TEXTS, batch_size=4)  # mixed lengths: padding exercised
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        states = pooling_model.bert(**enc, output_hidden_states=True).hidden_states[-2]
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = (states * mask).sum(1) / mask.sum(1)
    expected = torch.nn.functional.layer_norm(mean, (mean.shape[-1],), eps=1e-12).numpy()
    cos = (feats * expected).sum(1) / np.linalg.norm(feats, axis=1) / np.linalg.norm(expected, axis=1)
    assert cos.min() > 0.9999


def test_saved_checkpoint_matches_training_scores(pooling_model, tmp_path: Path):
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    feats, _ = train.featurize(pooling_model, tok, TEXTS)
    y = np.eye(len(TEXTS), len(CATEGORIES), dtype=np.float32)
    dense, clf = train.train_linear_head(feats, y, iters=20)
    train.install_head(pooling_model, dense, clf)
    train.save_checkpoint(pooling_model, minilm_path(), tmp_path)
    (tmp_path / "moderation.json").write_text(json.dumps({"name": "t", "version": "1"}))
    loaded = TextClassifier(str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert list(config["id2label"].values()) == list(CATEGORIES)
    got = np.array([[p[c] for c in CATEGORIES] for p in loaded.predict(TEXTS)])
    np.testing.assert_allclose(got, train.head_scores(dense, clf, feats), atol=1e-5)
    assert loaded.model_id == "t@1"


def test_linear_head_is_logistic_regression_in_disguise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 16)).astype(np.float32)
    y = (x[:, :2] > 0).astype(np.float32)
    dense, clf = train.train_linear_head(x, y, iters=50)
    w = (clf.weight @ dense.weight).detach().numpy()
    logits = x @ w.T + clf.bias.detach().numpy()
    np.testing.assert_allclose(train.head_scores(dense, clf, x), 1 / (1 + np.exp(-logits)), atol=1e-4)
    assert ((train.head_scores(dense, clf, x) > 0.5) == (y > 0)).mean() > 0.95


def test_label_map_serves_a_foreign_checkpoint(tmp_path: Path):
    """A hub-style checkpoint with its own label names is served through a label-map file."""
    ckpt = build_tiny_checkpoint(tmp_path / "ckpt", labels=("clean", "toxic_comment", "nsfw"), bias=0.0)
    mapping = tmp_path / "labels.yaml"
    mapping.write_text("clean: null\ntoxic_comment: toxicity\nnsfw: sexual\n")
    clf = TextClassifier(str(ckpt), label_map=mapping)
    scores = clf.predict(["hello there"])[0]
    assert set(scores) == {"toxicity", "sexual"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
