"""Owns the drawn part of the false-positive safe set: deterministic renders of benign images that look like
what image NSFW models confuse with nudity or gore (skin-coloured areas, faces, hands, flat-colour portraits,
swimwear at the beach, sport kit) plus ordinary documentation figures (charts, diagrams, UI screenshots).

Every renderer takes a seeded numpy Generator and returns an RGB Pillow image; nothing is downloaded. The
emoji renderer needs Debian's fonts-noto-color-emoji (fetched by training.vision.safe_set). All people drawn here
are clothed (or in ordinary swimwear / sport kit): the set is meant to be safe by any policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Rng = np.random.Generator
Colour = tuple[int, int, int]

# Skin tones from very light to very dark (roughly the Fitzpatrick / emoji modifier range).
SKIN: tuple[Colour, ...] = (
    (255, 224, 196), (247, 207, 170), (241, 194, 125), (224, 172, 105), (214, 160, 120),
    (198, 134, 66), (168, 110, 70), (141, 85, 36), (110, 70, 45), (94, 56, 32), (255, 205, 178), (234, 192, 134),
)
HAIR: tuple[Colour, ...] = ((20, 20, 25), (70, 45, 25), (150, 100, 50), (230, 200, 120), (200, 60, 40),
                            (90, 130, 220), (240, 150, 190), (160, 160, 170), (60, 160, 110), (250, 250, 250))
WORDS = ("policy review threshold image model score request queue worker tenant upload frame video latency "
         "cache redis config deploy metrics chart figure table results method baseline error rate sample "
         "install usage example output default option settings api token batch").split()


def _c(rng: Rng, palette: tuple[Colour, ...]) -> Colour:
    return palette[int(rng.integers(len(palette)))]


def _rand_colour(rng: Rng, lo: int = 0, hi: int = 256) -> Colour:
    r, g, b = (int(v) for v in rng.integers(lo, hi, 3))
    return r, g, b


def _shade(c: Colour, f: float) -> Colour:
    r, g, b = (max(0, min(255, int(v * f))) for v in c)
    return r, g, b


def _gradient(w: int, h: int, top: Colour, bottom: Colour) -> Image.Image:
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    arr = (1 - t) * np.array(top, float) + t * np.array(bottom, float)
    return Image.fromarray(np.repeat(arr, w, axis=1).astype(np.uint8))


def _noise(img: Image.Image, rng: Rng, sigma: float) -> Image.Image:
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, sigma, (img.height, img.width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _words(rng: Rng, n: int) -> str:
    return " ".join(WORDS[int(i)] for i in rng.integers(len(WORDS), size=n))


def chart(rng: Rng) -> Image.Image:
    """A matplotlib documentation figure of a random kind (some with skin-like colour maps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kind = ("line", "bar", "scatter", "hist", "pie", "heat", "contour", "box")[int(rng.integers(8))]
    fig, ax = plt.subplots(figsize=(float(rng.uniform(4, 8)), float(rng.uniform(3, 6))), dpi=80)
    x = np.linspace(0, 10, 200)
    if kind == "line":
        for k in range(int(rng.integers(1, 5))):
            ax.plot(x, np.sin(x * rng.uniform(0.3, 2)) * rng.uniform(0.5, 3) + k, label=f"run {k}")
        ax.legend()
    elif kind == "bar":
        ax.bar([_words(rng, 1) for _ in range(6)], rng.uniform(1, 10, 6), color=plt.cm.tab10(rng.integers(10)))
    elif kind == "scatter":
        ax.scatter(rng.normal(size=300), rng.normal(size=300), c=rng.uniform(size=300), cmap="viridis", s=8)
    elif kind == "hist":
        samples = rng.normal(size=2000)
        r, g, b = (v / 255 for v in _c(rng, SKIN))
        ax.hist(samples, bins=40, color=(r, g, b))
    elif kind == "pie":
        ax.pie(rng.uniform(1, 5, 5), labels=[_words(rng, 1) for _ in range(5)])
    elif kind == "heat":
        cmap = ("copper", "pink", "Oranges", "YlOrBr", "magma", "coolwarm")[int(rng.integers(6))]
        ax.imshow(rng.normal(size=(20, 20)).cumsum(0), cmap=cmap)
    elif kind == "contour":
        xx, yy = np.meshgrid(x, x)
        ax.contourf(xx, yy, np.sin(xx) * np.cos(yy * rng.uniform(0.5, 2)), cmap="RdBu")
    else:
        ax.boxplot([rng.normal(size=100) * s for s in rng.uniform(0.5, 2, 4)])
    ax.set_title(_words(rng, 3))
    ax.set_xlabel(_words(rng, 1))
    fig.tight_layout()
    fig.canvas.draw()
    img = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy())  # type: ignore[attr-defined]
    plt.close(fig)
    return img


def diagram(rng: Rng) -> Image.Image:
    """Boxes, arrows and labels: an architecture / flow-chart figure."""
    w, h = int(rng.integers(500, 900)), int(rng.integers(350, 650))
    img = Image.new("RGB", (w, h), _c(rng, ((255, 255, 255), (248, 248, 245), (30, 34, 40), (240, 244, 250))))
    d = ImageDraw.Draw(img)
    boxes = []
    for _ in range(int(rng.integers(3, 9))):
        x, y = int(rng.integers(10, w - 150)), int(rng.integers(10, h - 70))
        bw, bh = int(rng.integers(80, 140)), int(rng.integers(35, 60))
        fill = _rand_colour(rng, 120, 256)
        d.rounded_rectangle((x, y, x + bw, y + bh), radius=8, fill=fill, outline=(40, 40, 40), width=2)
        d.text((x + 8, y + bh // 3), _words(rng, 1), fill=(0, 0, 0))
        boxes.append((x + bw // 2, y + bh // 2))
    for a, b in zip(boxes, boxes[1:], strict=False):
        d.line((a, b), fill=(90, 90, 90), width=2)
        d.ellipse((b[0] - 4, b[1] - 4, b[0] + 4, b[1] + 4), fill=(90, 90, 90))
    return img


def screenshot(rng: Rng) -> Image.Image:
    """A documentation screenshot: window chrome, sidebar, prose and a code block."""
    w, h = int(rng.integers(640, 1000)), int(rng.integers(400, 700))
    dark = bool(rng.integers(2))
    bg, fg = ((28, 30, 34), (220, 220, 220)) if dark else ((255, 255, 255), (30, 30, 30))
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, w, 28), fill=_rand_colour(rng, 40, 200))
    side = int(rng.integers(120, 200))
    d.rectangle((0, 28, side, h), fill=_shade(bg, 0.92) if not dark else (40, 42, 48))
    for i in range(12):
        d.text((10, 40 + 22 * i), _words(rng, 2), fill=fg)
    y = 40
    while y < h - 30:
        if rng.uniform() < 0.15:
            bh = int(rng.integers(40, 110))
            d.rectangle((side + 16, y, w - 16, y + bh), fill=(245, 242, 235) if not dark else (15, 15, 18))
            for k in range(bh // 16):
                d.text((side + 24, y + 4 + 16 * k), "  " * int(rng.integers(3)) + _words(rng, 4) + "()",
                       fill=(170, 60, 40) if not dark else (120, 200, 140))
            y += bh + 10
        else:
            d.text((side + 16, y), _words(rng, int(rng.integers(6, 14))), fill=fg)
            y += 18
    return img


def _face(d: ImageDraw.ImageDraw, rng: Rng, cx: int, cy: int, r: int, skin: Colour, anime: bool) -> None:
    hair = _c(rng, HAIR)
    d.ellipse((cx - r * 1.15, cy - r * 1.25, cx + r * 1.15, cy + r * 0.6), fill=hair)  # hair behind
    d.ellipse((cx - r, cy - r * 1.1, cx + r, cy + r * 1.1), fill=skin)
    eye_w, eye_h = (r * 0.28, r * 0.34) if anime else (r * 0.2, r * 0.1)
    iris = _c(rng, ((60, 90, 200), (120, 60, 30), (40, 140, 90), (150, 40, 160), (30, 30, 30)))
    for sx in (-1, 1):
        ex = cx + sx * r * 0.4
        d.ellipse((ex - eye_w, cy - eye_h, ex + eye_w, cy + eye_h), fill=(255, 255, 255), outline=(20, 20, 20))
        d.ellipse((ex - eye_w * 0.6, cy - eye_h * 0.8, ex + eye_w * 0.6, cy + eye_h * 0.8), fill=iris)
        d.ellipse((ex - eye_w * 0.2, cy - eye_h * 0.6, ex + eye_w * 0.1, cy - eye_h * 0.2), fill=(255, 255, 255))
        d.line((ex - eye_w, cy - eye_h * 1.5, ex + eye_w, cy - eye_h * 1.7), fill=_shade(hair, 0.7), width=3)
    mouth = _shade(skin, 0.7) if anime else (170, 80, 80)
    d.arc((cx - r * 0.25, cy + r * 0.35, cx + r * 0.25, cy + r * 0.6), 10, 170, fill=mouth, width=3)
    if not anime:
        d.line((cx, cy, cx - r * 0.08, cy + r * 0.3), fill=_shade(skin, 0.8), width=2)
    # fringe over the forehead
    d.chord((cx - r * 1.05, cy - r * 1.3, cx + r * 1.05, cy - r * 0.1), 180, 360, fill=hair)


def portrait(rng: Rng, anime: bool = True) -> Image.Image:
    """A clothed head-and-shoulders portrait: flat colours (anime-like) or shaded, blurred and noisy (photo-like)."""
    s = int(rng.integers(256, 600))
    bg_top, bg_bottom = _rand_colour(rng, 60, 256), _rand_colour(rng, 60, 256)
    img = _gradient(s, s, bg_top, bg_bottom) if not anime or rng.uniform() < 0.5 else \
        Image.new("RGB", (s, s), bg_top)
    d = ImageDraw.Draw(img)
    skin = _c(rng, SKIN)
    cx, cy, r = s // 2 + int(rng.integers(-s // 10, s // 10)), int(s * 0.42), int(s * rng.uniform(0.18, 0.27))
    d.rectangle((cx - r * 0.3, cy + r, cx + r * 0.3, cy + r * 1.6), fill=_shade(skin, 0.92))  # neck
    top = _rand_colour(rng)
    neckline = rng.uniform(1.35, 1.7)
    d.chord((cx - r * 2.4, cy + r * neckline, cx + r * 2.4, cy + r * 4.5), 180, 360, fill=top)  # shoulders, clothed
    if rng.uniform() < 0.5:
        d.polygon([(cx - r * 0.35, cy + r * neckline), (cx + r * 0.35, cy + r * neckline), (cx, cy + r * 2.1)],
                  fill=_shade(skin, 0.92))  # v-neck
    _face(d, rng, cx, cy, r, skin, anime)
    if not anime:
        img = _noise(img.filter(ImageFilter.GaussianBlur(float(rng.uniform(1, 3)))), rng, float(rng.uniform(2, 8)))
    return img


def hand(rng: Rng) -> Image.Image:
    """One or two open hands (palm + five fingers), shaded, on a plain or textured background."""
    s = int(rng.integers(256, 512))
    img = _gradient(s, s, _rand_colour(rng, 80, 256), _rand_colour(rng, 80, 256))
    for _ in range(int(rng.integers(1, 3))):
        layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        skin = _c(rng, SKIN)
        cx, cy, pw = s // 2, int(s * 0.62), int(s * rng.uniform(0.18, 0.28))
        d.rounded_rectangle((cx - pw, cy - pw, cx + pw, cy + pw * 1.3), radius=pw // 2, fill=skin)
        for k, (ang, ln) in enumerate(((-60, 0.9), (-20, 1.25), (-5, 1.4), (10, 1.3), (28, 1.05))):
            a = math.radians(ang - 90 + rng.uniform(-8, 8))
            bx, by = cx + (k - 2) * pw * 0.42 + (pw * 0.3 if k == 0 else 0), cy - pw * 0.7 + (pw * 0.6 if k == 0 else 0)
            ex, ey = bx + math.cos(a) * pw * ln, by + math.sin(a) * pw * ln
            d.line((bx, by, ex, ey), fill=_shade(skin, float(rng.uniform(0.9, 1.02))), width=int(pw * 0.34))
            d.ellipse((ex - pw * 0.17, ey - pw * 0.17, ex + pw * 0.17, ey + pw * 0.17), fill=skin)
            d.ellipse((ex - pw * 0.08, ey - pw * 0.1, ex + pw * 0.08, ey + pw * 0.05), fill=_shade(skin, 1.08))
        d.rectangle((cx - pw * 0.8, cy + pw * 1.2, cx + pw * 0.8, s), fill=_rand_colour(rng))  # sleeve
        layer = layer.rotate(float(rng.uniform(-40, 40)), center=(cx, cy), translate=(
            int(rng.integers(-s // 6, s // 6)), int(rng.integers(-s // 8, s // 8))))
        img.paste(layer, (0, 0), layer)
    return _noise(img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 2)))), rng, float(rng.uniform(0, 6)))


def skin_gradient(rng: Rng) -> Image.Image:
    """Linear or radial blends of skin tones, sometimes with texture: the classic colour-only false positive."""
    s = int(rng.integers(224, 512))
    a, b = np.array(_c(rng, SKIN), float), np.array(_c(rng, SKIN), float)
    yy, xx = np.mgrid[0:s, 0:s] / s
    if rng.uniform() < 0.5:
        ang = rng.uniform(0, math.pi)
        t = (xx * math.cos(ang) + yy * math.sin(ang)) / (abs(math.cos(ang)) + abs(math.sin(ang)))
    else:
        cx, cy = rng.uniform(0.2, 0.8, 2)
        t = np.clip(np.hypot(xx - cx, yy - cy) * rng.uniform(1, 2.5), 0, 1)
    arr = (1 - t[..., None]) * a + t[..., None] * b
    if rng.uniform() < 0.5:  # pores / fabric-like texture
        arr += rng.normal(0, rng.uniform(2, 10), (s, s, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _figure(d: ImageDraw.ImageDraw, rng: Rng, x: float, y: float, hgt: float, kit: str) -> None:
    """A simple standing person with visible skin on arms/legs/face, in swimwear or sport kit."""
    skin = _c(rng, SKIN)
    head, w = hgt * 0.13, hgt * 0.16
    d.ellipse((x - head / 2, y, x + head / 2, y + head), fill=skin)
    d.ellipse((x - head / 2, y - head * 0.1, x + head / 2, y + head * 0.4), fill=_c(rng, HAIR))
    torso = (x - w / 2, y + head * 1.05, x + w / 2, y + hgt * 0.55)
    d.rectangle(torso, fill=skin if kit == "swim" else _rand_colour(rng))
    for sx in (-1, 1):  # arms and legs
        d.line((x + sx * w / 2, y + head * 1.2, x + sx * (w / 2 + hgt * 0.08), y + hgt * 0.5), fill=skin,
               width=max(2, int(hgt * 0.045)))
        d.line((x + sx * w * 0.25, y + hgt * 0.55, x + sx * w * 0.35, y + hgt), fill=skin,
               width=max(2, int(hgt * 0.06)))
    wear = _rand_colour(rng)
    d.rectangle((x - w / 2, y + hgt * 0.47, x + w / 2, y + hgt * (0.62 if kit == "swim" else 0.7)), fill=wear)
    if kit == "swim" and rng.uniform() < 0.5:  # swimsuit top
        d.rectangle((x - w / 2, y + head * 1.5, x + w / 2, y + hgt * 0.33), fill=wear)


def beach(rng: Rng) -> Image.Image:
    """Sky, sea, sand, umbrellas and swimmers in ordinary swimwear."""
    w, h = int(rng.integers(480, 900)), int(rng.integers(320, 600))
    img = _gradient(w, h, (int(rng.integers(90, 160)), int(rng.integers(150, 210)), 255), (220, 235, 250))
    d = ImageDraw.Draw(img)
    sea, sand = int(h * rng.uniform(0.35, 0.5)), int(h * rng.uniform(0.55, 0.7))
    d.rectangle((0, sea, w, sand), fill=(20, int(rng.integers(90, 150)), int(rng.integers(150, 200))))
    sand_colour = (int(rng.integers(210, 240)), int(rng.integers(185, 215)), int(rng.integers(130, 170)))
    d.rectangle((0, sand, w, h), fill=sand_colour)
    d.ellipse((w * 0.8, h * 0.05, w * 0.8 + 50, h * 0.05 + 50), fill=(255, 240, 150))
    for _ in range(int(rng.integers(0, 4))):
        ux, uy = int(rng.integers(0, w)), int(rng.integers(sand, h - 40))
        d.pieslice((ux - 50, uy - 40, ux + 50, uy + 20), 180, 360, fill=_rand_colour(rng))
        d.line((ux, uy - 10, ux, uy + 60), fill=(90, 70, 50), width=3)
    for _ in range(int(rng.integers(1, 7))):
        fh = float(rng.uniform(0.2, 0.6)) * h
        _figure(d, rng, float(rng.uniform(0.05, 0.95)) * w, float(rng.uniform(sea - fh * 0.3, h - fh)), fh, "swim")
    return _noise(img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.5)))), rng, float(rng.uniform(0, 5)))


def sport(rng: Rng) -> Image.Image:
    """A pitch or court with players in kit, a ball and a crowd band."""
    w, h = int(rng.integers(480, 900)), int(rng.integers(320, 600))
    field = _c(rng, ((40, 140, 60), (200, 120, 70), (60, 110, 180), (210, 180, 130)))
    img = Image.new("RGB", (w, h), field)
    d = ImageDraw.Draw(img)
    crowd = int(h * rng.uniform(0.1, 0.3))
    for _ in range(400):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, crowd))
        d.ellipse((x, y, x + 6, y + 6), fill=_rand_colour(rng))
    d.line((w // 2, crowd, w // 2, h), fill=(255, 255, 255), width=3)
    d.ellipse((w // 2 - 60, h // 2 - 40, w // 2 + 60, h // 2 + 60), outline=(255, 255, 255), width=3)
    for _ in range(int(rng.integers(2, 9))):
        fh = float(rng.uniform(0.25, 0.6)) * h
        _figure(d, rng, float(rng.uniform(0.05, 0.95)) * w, float(rng.uniform(crowd, h - fh)), fh, "sport")
    bx, by = int(rng.integers(20, w - 20)), int(rng.integers(crowd, h - 20))
    d.ellipse((bx - 9, by - 9, bx + 9, by + 9), fill=(250, 250, 250), outline=(0, 0, 0))
    return _noise(img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.5)))), rng, float(rng.uniform(0, 5)))


# People, faces and hands, each with every skin-tone modifier (U+1F3FB..U+1F3FF) where the emoji takes one.
EMOJI_BASE = ("\U0001F44B", "\U0001F44D", "\U0001F44F", "\U0001F64F", "\U0001F91D", "\u270B", "\U0001F590",
              "\U0001F91A", "\U0001F44C", "\u270C", "\U0001F91E", "\U0001F4AA", "\U0001F9B5", "\U0001F9B6",
              "\U0001F442", "\U0001F443", "\U0001F476", "\U0001F466", "\U0001F467", "\U0001F9D1", "\U0001F468",
              "\U0001F469", "\U0001F474", "\U0001F475", "\U0001F471", "\U0001F64B", "\U0001F646", "\U0001F645",
              "\U0001F937", "\U0001F926", "\U0001F3C3", "\U0001F6B6", "\U0001F483", "\U0001F57A", "\U0001F3CA",
              "\U0001F3C4", "\U0001F6B4", "\U0001F3CB", "\U0001F938", "\U0001F93D", "\U0001F6C0", "\U0001F9D8",
              "\U0001F486", "\U0001F487", "\U0001F470", "\U0001F930", "\U0001F931", "\U0001F47C", "\U0001F478",
              "\U0001F934")
EMOJI_PLAIN = ("\U0001F600", "\U0001F60D", "\U0001F618", "\U0001F48B", "\U0001F444", "\U0001F445", "\U0001F351",
               "\U0001F346", "\U0001F352", "\U0001F34C", "\U0001F459", "\U0001F460", "\U0001F484", "\U0001F3D6",
               "\U0001F3C8", "\u26BD", "\U0001F3C0", "\U0001F3BE")
TONES = ("", "\U0001F3FB", "\U0001F3FC", "\U0001F3FD", "\U0001F3FE", "\U0001F3FF")


def emoji_list() -> list[str]:
    return [b + t for b in EMOJI_BASE for t in TONES] + list(EMOJI_PLAIN)


def emoji(font_path: Path, text: str, rng: Rng) -> Image.Image:
    """One Noto colour emoji (109 px bitmap strike), centred and scaled onto a plain or gradient background."""
    font = ImageFont.truetype(str(font_path), 109)
    glyph = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(glyph).text((10, 10), text, font=font, embedded_color=True)
    bbox = glyph.getbbox() or (0, 0, 160, 160)
    glyph = glyph.crop(bbox)
    s = int(rng.integers(128, 400))
    scale = float(rng.uniform(0.5, 0.95)) * s / max(glyph.size)
    glyph = glyph.resize((max(1, int(glyph.width * scale)), max(1, int(glyph.height * scale))),
                         Image.Resampling.LANCZOS)
    bg = (255, 255, 255) if rng.uniform() < 0.5 else _rand_colour(rng, 100, 256)
    img = Image.new("RGB", (s, s), bg)
    img.paste(glyph, ((s - glyph.width) // 2, (s - glyph.height) // 2), glyph)
    return img


RENDERERS: dict[str, tuple[int, Callable[[Rng], Image.Image]]] = {
    # name: (how many, renderer)
    "render_chart": (150, chart),
    "render_diagram": (80, diagram),
    "render_screenshot": (80, screenshot),
    "render_anime_portrait": (200, lambda rng: portrait(rng, anime=True)),
    "render_face": (150, lambda rng: portrait(rng, anime=False)),
    "render_hand": (120, hand),
    "render_skin_gradient": (100, skin_gradient),
    "render_beach": (120, beach),
    "render_sport": (100, sport),
}
