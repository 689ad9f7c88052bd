"""Build cache semantics: a complete output of this BUILD_VERSION is reused, anything else is rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

from training.text import artifact, build


def _fake_output(path: Path, version: str) -> Path:
    path.mkdir(parents=True)
    for name in artifact.REQUIRED:
        (path / name).write_text("{}")
    (path / "moderation.json").write_text(json.dumps({"name": build.NAME, "version": version}))
    return path


def test_complete_output_is_reused(tmp_path: Path, capsys):
    out = _fake_output(tmp_path / "m", build.BUILD_VERSION)
    assert build.is_complete(out)
    assert build.build(out, tmp_path / "cache") == out  # returns at once: no download, no training
    assert "nothing to do" in capsys.readouterr().out
    assert not (tmp_path / "cache").exists()


def test_incomplete_or_stale_output_is_not_reused(tmp_path: Path):
    assert not build.is_complete(_fake_output(tmp_path / "old", "0.0.1"))
    partial = _fake_output(tmp_path / "partial", build.BUILD_VERSION)
    (partial / "thresholds.json").unlink()
    assert not build.is_complete(partial)
    corrupt = _fake_output(tmp_path / "corrupt", build.BUILD_VERSION)
    (corrupt / "moderation.json").write_text("{not json")
    assert not build.is_complete(corrupt)
    assert not build.is_complete(tmp_path / "missing")
