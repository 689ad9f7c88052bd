"""Static guards on the console's assets (no browser needed): no inline script or style, no HTML-string sinks in
the JavaScript, the vendored Chart.js is byte-for-byte the pinned npm file, and the palette passes WCAG AA."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from service.gateway.console.pages import ASSETS, STATIC

CHART_JS_SHA256 = "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2"  # chart.js@4.6.1 chart.umd.min.js
SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
         "setAttribute('style'", ".style.cssText", "srcdoc")


def test_page_has_no_inline_script_or_style() -> None:
    html = (STATIC / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == [], "every script is a file"
    assert "<style" not in html and " style=" not in html and " on" not in re.sub(r"\s+", " ", html).replace(
        " only", "")
    assert "http://" not in html and "https://" not in html, "nothing loads from another host"


def test_scripts_build_the_dom_without_html_strings() -> None:
    for path in sorted((STATIC / "js").glob("*.js")):
        source = path.read_text()
        assert not [s for s in SINKS if s in source], path.name
        assert "localStorage" not in source and "sessionStorage" not in source, path.name
        assert re.search(r"https?://(?!www\.w3\.org/2000/svg)", source) is None, path.name


def test_vendored_chart_js_is_the_pinned_npm_file() -> None:
    data = (STATIC / "vendor" / "chart.umd.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == CHART_JS_SHA256
    assert (STATIC / "vendor" / "chart.js-LICENSE.md").read_text().startswith("The MIT License")
    assert "vendor/chart.umd.min.js" in ASSETS and "js/app.js" in ASSETS and "index.html" in ASSETS


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_palette_passes_wcag_aa() -> None:
    css = (STATIC / "app.css").read_text()
    var = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", css))
    for fg in ("ink", "muted", "brand", "ok", "bad", "warn", "focus"):
        for bg in ("bg", "panel"):
            assert contrast(var[fg], var[bg]) >= 4.5, (fg, bg)
    for bg in ("brand", "ok", "bad", "warn"):  # white text on filled buttons and the header
        assert contrast(var["brand-ink"], var[bg]) >= 4.5, bg
    for mark in ("mark", "mark-strong"):  # highlighted text stays readable
        assert contrast(var["ink"], var[mark]) >= 4.5, mark


def test_static_manifest_serves_only_shipped_files() -> None:
    assert all(Path(path).resolve().is_relative_to(STATIC.resolve()) for path, _ in ASSETS.values())
    assert not [name for name in ASSETS if ".." in name or name.startswith("/")]
