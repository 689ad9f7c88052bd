"""GPU text path: bare e5-small forward (bf16) vs the serving classifier path (TextClassifier on cuda), same run.

    python -m bench.bench_text_gpu --model var/models/text-default [--n 50000] [--repeats 5]
    python -m bench.bench_text_gpu --random-from DIR   # DIR holds config.json + tokenizer of the checkpoint

Speed does not depend on the weights' values, so `--random-from` builds a randomly initialised checkpoint with
the real architecture and tokenizer (used where the 470 MB checkpoint cannot travel to the GPU machine).
Prints texts/s, median and minimum of interleaved repeats, and the ratio classifier/bare. Never asserted.
Goal (issue 10): >= 20,000 short texts/s through the classifier path per GPU worker.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHORT = ["what a great episode", "this song is trash lol", "you are an idiot", "see you at the show tonight",
         "worst referee ever", "I love this band so much", "get out of here", "subscribe for more videos",
         "这首歌太好听了", "主播今天状态不错", "別再刷屏了好嗎", "笑死我了哈哈哈"]


def random_checkpoint(src: Path, dest: Path) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    config = BertConfig.from_pretrained(str(src))
    config.num_labels = 12
    config.problem_type = "multi_label_classification"
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(dest)
    AutoTokenizer.from_pretrained(str(src)).save_pretrained(dest)
    (dest / "moderation.json").write_text(json.dumps({"name": "random-e5-shape", "version": "bench",
                                                      "text_prefix": "query: "}))
    return dest


def bare(model_dir: Path, batch: int, seq: int, iters: int) -> float:
    """Texts/s of the encoder alone: fixed token ids, bf16, no tokenizer, no post-processing."""
    from transformers import AutoModelForSequenceClassification

    m = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).to("cuda", dtype=torch.bfloat16).eval()
    ids = torch.randint(5, 1000, (batch, seq), device="cuda")
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        for _ in range(3):
            m(input_ids=ids, attention_mask=mask)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iters):
            m(input_ids=ids, attention_mask=mask).logits.float().cpu()
        torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - start)


def classifier(model_dir: Path, texts: list[str], batch: int) -> float:
    from models.text.classifier import TextClassifier

    clf = TextClassifier(str(model_dir), max_tokens=256, batch_size=batch, device="cuda")
    clf.score(texts[:batch])  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(0, len(texts), 4096):
        clf.score(texts[i : i + 4096])
    torch.cuda.synchronize()
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "var" / "models" / "text-default")
    ap.add_argument("--random-from", type=Path, default=None)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this bench needs a GPU (the CPU path is bench/bench_text_e2e.py)")
    model = args.model
    if args.random_from is not None:
        model = random_checkpoint(args.random_from, Path(tempfile.mkdtemp()) / "random-e5")
    texts = [f"{SHORT[i % len(SHORT)]} #{i}" for i in range(args.n)]
    b, c = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both sides alike
        b.append(bare(model, args.batch, 32, iters=200))
        c.append(classifier(model, texts, args.batch))
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}  batch {args.batch}")
    print(f"bare e5 forward (bf16, seq 32): median {statistics.median(b):,.0f} texts/s, max {max(b):,.0f}")
    print(f"classifier path (tokenize + windows + bf16 forward + scores): median {statistics.median(c):,.0f} "
          f"texts/s, max {max(c):,.0f}")
    print(f"ratio classifier/bare (medians) = {statistics.median(c) / statistics.median(b):.2f}")


if __name__ == "__main__":
    main()
