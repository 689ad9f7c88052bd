"""Safe decoding: modes → RGB, EXIF orientation, alpha, 16-bit, animations with timestamps, limits."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.vision.decode import ImageLimits, decode_image, to_rgb
from models.vision.errors import ImageError
from tests.models.vision.media import animated, encode


def test_sample_photos_decode(data_dir: Path) -> None:
    for name in ("astronaut.png", "camera.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg"):
        img = decode_image(data_dir / "skimage" / name)
        rgb = img.frames[0].rgb
        assert rgb.dtype == np.uint8 and rgb.shape == (img.height, img.width, 3), name
        assert not img.animated and img.frames[0].ts_ms == 0


def test_grayscale_becomes_three_equal_channels(data_dir: Path) -> None:
    rgb = decode_image(data_dir / "skimage" / "camera.png").frames[0].rgb
    assert np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 1], rgb[:, :, 2])


def test_exif_orientation_is_applied() -> None:
    # 60×20, left half red; orientation 6 means "rotate 90° CW to display" → 20×60 with red on top.
    arr = np.zeros((20, 60, 3), dtype=np.uint8)
    arr[:, :30] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(arr, "JPEG", quality=95, exif=exif.tobytes())
    rgb = decode_image(data).frames[0].rgb
    assert rgb.shape == (60, 20, 3)
    assert rgb[5, 10, 0] > 200 and rgb[5, 10, 1] < 60  # top is red
    assert rgb[55, 10, 0] < 60  # bottom is black


def test_cmyk_jpeg_converts() -> None:
    arr = np.full((32, 32, 3), (200, 30, 30), dtype=np.uint8)
    data = encode(Image.fromarray(arr).convert("CMYK"), "JPEG", quality=95)
    rgb = decode_image(data).frames[0].rgb
    assert rgb.shape == (32, 32, 3)
    assert abs(int(rgb[16, 16, 0]) - 200) < 20 and rgb[16, 16, 1] < 60


def test_alpha_is_flattened_on_white() -> None:
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[:, :16] = (0, 0, 255, 255)  # opaque blue left, transparent right
    rgb = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG")).frames[0].rgb
    assert tuple(rgb[5, 5]) == (0, 0, 255)
    assert tuple(rgb[5, 30]) == (255, 255, 255)


def test_palette_with_transparency() -> None:
    img = Image.new("P", (32, 32), 0)
    img.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    img.paste(1, (0, 0, 16, 32))
    data = encode(img, "PNG", transparency=0)
    rgb = decode_image(data).frames[0].rgb
    assert tuple(rgb[5, 5]) == (0, 255, 0) and tuple(rgb[5, 30]) == (255, 255, 255)


def test_16_bit_grayscale_keeps_contrast() -> None:
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    img = decode_image(encode(Image.fromarray(ramp), "PNG"))
    rgb = img.frames[0].rgb
    # A naive convert("RGB") clips 16-bit values to 255 (an all-white image); we keep the ramp.
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255 and 100 < rgb[32, 0, 0] < 160


def test_to_rgb_float_mode() -> None:
    img = Image.fromarray(np.linspace(-1, 3, 400, dtype=np.float32).reshape(20, 20), mode="F")
    rgb = to_rgb(img)
    assert rgb.min() == 0 and rgb.max() == 255


def test_animated_gif_sampled_at_one_fps() -> None:
    # 30 frames × 200 ms = 6 s; each frame a distinct grey level so we can tell which one was picked.
    frames = [np.full((40, 40, 3), i * 8, dtype=np.uint8) for i in range(30)]
    img = decode_image(animated(frames, [200] * 30))
    assert img.animated and img.duration_ms == 6000 and img.source_frames == 30
    assert [f.ts_ms for f in img.frames] == [0, 1000, 2000, 3000, 4000, 5000]
    assert [f.index for f in img.frames] == [0, 5, 10, 15, 20, 25]
    assert [int(f.rgb[0, 0, 0]) for f in img.frames] == [0, 40, 80, 120, 160, 200]


def test_animated_webp_and_frame_cap() -> None:
    frames = [np.full((40, 40, 3), i * 20, dtype=np.uint8) for i in range(12)]
    data = animated(frames, [500] * 12, fmt="WEBP")
    img = decode_image(data, ImageLimits(sample_fps=2, max_frames=4))
    assert img.fmt == "WEBP" and img.duration_ms == 6000
    # 2 fps would give 12 samples; the cap spreads 4 samples over the whole animation instead.
    assert [f.ts_ms for f in img.frames] == [0, 1500, 3000, 4500]


def test_gif_tiny_delays_use_browser_default() -> None:
    frames = [np.full((40, 40, 3), i * 50, dtype=np.uint8) for i in range(3)]
    img = decode_image(animated(frames, [0, 0, 0]))
    assert img.duration_ms == 300


def test_animation_duration_limit() -> None:
    frames = [np.full((40, 40, 3), i * 50, dtype=np.uint8) for i in range(3)]
    with pytest.raises(ImageError) as info:
        decode_image(animated(frames, [1000] * 3), ImageLimits(max_duration_ms=2000))
    assert info.value.code == "video_too_long"


def test_pixel_limit_is_a_parameter_and_global_state_untouched() -> None:
    before = Image.MAX_IMAGE_PIXELS
    data = encode(np.zeros((100, 100, 3), dtype=np.uint8), "PNG")
    with pytest.raises(ImageError) as info:
        decode_image(data, ImageLimits(max_pixels=9_999))
    assert info.value.code == "decompression_bomb"
    assert decode_image(data, ImageLimits(max_pixels=10_000)).width == 100
    assert Image.MAX_IMAGE_PIXELS == before


def test_pillow_bomb_warning_is_an_error() -> None:
    """Even if our limit is set above Pillow's, Pillow's own warning must not pass silently."""
    data = encode(np.zeros((200, 200, 3), dtype=np.uint8), "PNG")
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 30_000  # 40 000 px > limit → warning; < 2× limit → not Pillow's hard error
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the outer filter must not matter
            with pytest.raises(ImageError) as info:
                decode_image(data, ImageLimits(max_pixels=10**9))
    finally:
        Image.MAX_IMAGE_PIXELS = old
    assert info.value.code == "decompression_bomb"


def test_formats_outside_allow_list_refused() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, format="ICO")
    with pytest.raises(ImageError) as info:
        decode_image(buf.getvalue())
    assert info.value.code == "unsupported_format"


def test_multipage_tiff_scores_every_page() -> None:
    pages = [Image.fromarray(np.full((40, 50, 3), v, dtype=np.uint8)) for v in (10, 120, 240)]
    buf = io.BytesIO()
    pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:])
    img = decode_image(buf.getvalue())
    assert [f.index for f in img.frames] == [0, 1, 2] and [int(f.rgb[0, 0, 0]) for f in img.frames] == [10, 120, 240]
    with pytest.raises(ImageError) as info:
        decode_image(buf.getvalue(), ImageLimits(max_frames=2))
    assert info.value.code == "too_many_frames"
