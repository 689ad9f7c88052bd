"""Owns the model: a standard BertForSequenceClassification that reproduces mean-pooled MiniLM + an MLP head.

all-MiniLM-L6-v2 was trained with mean pooling, but BertForSequenceClassification reads the [CLS] token
through its pooler. Rather than a custom architecture, we append a 7th encoder layer whose weights are set
by hand so that its [CLS] output is LayerNorm(mean of the layer-6 token states):
  * query = 0 and key = 0  -> every attention score is 0, so softmax is uniform over unmasked tokens;
  * value = identity        -> attention output = mean of layer-6 states (same tokens sentence-transformers
                               averages: everything the attention mask covers, [CLS]/[SEP] included);
  * output dense = SCALE*I  -> the residual ([CLS]'s own state) becomes ~1/SCALE of the sum, and the
                               LayerNorm (gamma=1, beta=0) removes the scale;
  * feed-forward = 0        -> the second LayerNorm is applied to an already-normalised vector (identity).
The pooler (dense + tanh) and classifier are then exactly a 384-384-8 tanh MLP head. Features for training
are read from this very model, so training-time and serving-time scores are the same computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel, PreTrainedTokenizerBase

from models.text.labels import CATEGORIES

SCALE = 1.0e4
HEAD_SEED = 0


def build_pooling_model(encoder_dir: Path, labels: Sequence[str] = CATEGORIES) -> BertForSequenceClassification:
    """MiniLM layers 1-6 + the mean-pooling layer 7; pooler/classifier left for the head."""
    base = BertModel.from_pretrained(str(encoder_dir), add_pooling_layer=True)
    config = BertConfig.from_pretrained(str(encoder_dir))
    config.num_hidden_layers = base.config.num_hidden_layers + 1
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    config.problem_type = "multi_label_classification"
    config.architectures = ["BertForSequenceClassification"]
    torch.manual_seed(HEAD_SEED)
    model = BertForSequenceClassification(config)
    missing, unexpected = model.bert.load_state_dict(base.state_dict(), strict=False)
    if unexpected or any(not k.startswith(f"encoder.layer.{base.config.num_hidden_layers}.") for k in missing):
        raise RuntimeError(f"encoder weights do not fit: missing={missing} unexpected={unexpected}")
    layer = model.bert.encoder.layer[-1]
    eye = torch.eye(config.hidden_size)
    with torch.no_grad():
        for lin, weight in (
            (layer.attention.self.query, torch.zeros_like(eye)),
            (layer.attention.self.key, torch.zeros_like(eye)),
            (layer.attention.self.value, eye),
            (layer.attention.output.dense, eye * SCALE),
        ):
            lin.weight.copy_(weight)
            lin.bias.zero_()
        for lin in (layer.intermediate.dense, layer.output.dense):
            lin.weight.zero_()
            lin.bias.zero_()
        for norm in (layer.attention.output.LayerNorm, layer.output.LayerNorm):
            norm.weight.fill_(1.0)
            norm.bias.zero_()
    model.eval()
    return model


def featurize(
    model: BertForSequenceClassification, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str],
    max_len: int = 128, batch_size: int = 64, with_cls_pooler: bool = False, desc: str = "features",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Layer-7 [CLS] states (= head input). Optionally also MiniLM's own [CLS]-pooler output (ablation)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    hidden = model.config.hidden_size
    feats = np.zeros((len(texts), hidden), dtype=np.float32)
    cls = np.zeros((len(texts), hidden), dtype=np.float32) if with_cls_pooler else None
    assert model.bert.pooler is not None, "built with add_pooling_layer=True"
    pooler = model.bert.pooler.dense
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
            idx = order[start : start + batch_size]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_len,
                            return_tensors="pt")
            out = model.bert(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                             output_hidden_states=with_cls_pooler)
            feats[idx] = out.last_hidden_state[:, 0].numpy()
            if cls is not None:
                cls[idx] = torch.tanh(pooler(out.hidden_states[-2][:, 0])).numpy()
    return feats, cls


def train_head(
    x: np.ndarray, y: np.ndarray, hidden: int = 384, epochs: int = 300, lr: float = 2e-3,
    weight_decay: float = 1e-4, seed: int = HEAD_SEED,
) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    """Full-batch Adam on BCE; positives up-weighted by sqrt(neg/pos) so rare categories still learn."""
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))
    pos = yt.sum(0).clamp(min=1.0)
    pos_weight = ((len(yt) - pos) / pos).sqrt().clamp(1.0, 30.0)
    dense = torch.nn.Linear(x.shape[1], hidden)
    clf = torch.nn.Linear(hidden, y.shape[1])
    params = list(dense.parameters()) + list(clf.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    for _ in tqdm(range(epochs), desc="head", unit="epoch", leave=False):
        opt.zero_grad()
        loss = loss_fn(clf(torch.tanh(dense(xt))), yt)
        loss.backward()
        opt.step()
    return dense, clf


def train_linear_head(
    x: np.ndarray, y: np.ndarray, l2: float = 0.03, iters: int = 300, seed: int = HEAD_SEED, eps: float = 1e-3,
    sample_weight: np.ndarray | None = None,
) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    """Class-balanced, L2-regularised logistic regression per category, packed into pooler + classifier.

    The pooler's tanh cannot be removed from a standard checkpoint, so the pooler is set to eps*I (tanh is
    linear to ~(eps*x)^2/3 relative error there) and the classifier to W/eps: a logistic head in disguise.
    """
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))
    n, d = xt.shape
    pos = yt.sum(0).clamp(min=1.0)
    # Balanced weights (as sklearn's class_weight="balanced"): each class carries half the loss.
    w_pos, w_neg = n / (2 * pos), n / (2 * (n - pos).clamp(min=1.0))
    weights = yt * w_pos + (1 - yt) * w_neg
    if sample_weight is not None:
        weights = weights * torch.from_numpy(sample_weight.astype(np.float32))[:, None]
    lin = torch.nn.Linear(d, y.shape[1])
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1.0, max_iter=iters, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        bce = torch.nn.functional.binary_cross_entropy_with_logits(lin(xt), yt, weight=weights)
        loss = bce + l2 * lin.weight.pow(2).sum() / 2
        loss.backward()
        return loss

    opt.step(closure)
    dense = torch.nn.Linear(d, d)
    clf = torch.nn.Linear(d, y.shape[1])
    with torch.no_grad():
        dense.weight.copy_(torch.eye(d) * eps)
        dense.bias.zero_()
        clf.weight.copy_(lin.weight / eps)
        clf.bias.copy_(lin.bias)
    return dense, clf


def head_scores(dense: torch.nn.Linear, clf: torch.nn.Linear, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return torch.sigmoid(clf(torch.tanh(dense(torch.from_numpy(x))))).numpy()


def install_head(model: BertForSequenceClassification, dense: torch.nn.Linear, clf: torch.nn.Linear) -> None:
    """The pooler is dense+tanh, the classifier a linear layer: together they are exactly our MLP head."""
    assert model.bert.pooler is not None
    with torch.no_grad():
        model.bert.pooler.dense.weight.copy_(dense.weight)
        model.bert.pooler.dense.bias.copy_(dense.bias)
        model.classifier.weight.copy_(clf.weight)
        model.classifier.bias.copy_(clf.bias)


def save_checkpoint(model: BertForSequenceClassification, encoder_dir: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    AutoTokenizer.from_pretrained(str(encoder_dir)).save_pretrained(dest)


def featurize_ids(
    model: BertForSequenceClassification, batch_ids: Sequence[Sequence[int]], pad_id: int, batch_size: int = 32,
    desc: str = "features",
) -> np.ndarray:
    """Head inputs for pre-tokenised windows (what TextClassifier feeds the model), length-sorted batches."""
    order = sorted(range(len(batch_ids)), key=lambda i: len(batch_ids[i]))
    feats = np.zeros((len(batch_ids), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
            idx = order[start : start + batch_size]
            width = max(len(batch_ids[i]) for i in idx)
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, : len(batch_ids[i])] = torch.tensor(list(batch_ids[i]), dtype=torch.long)
                mask[row, : len(batch_ids[i])] = 1
            feats[idx] = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0].numpy()
    return feats
