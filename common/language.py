"""Owns the one language decision the service makes: is a text Chinese (`zh`) or not (`en`)?

Thresholds are calibrated per language (the encoder scores Chinese and English on slightly different scales),
so the worker must pick a language before the policy decides. Script share is enough for that choice and
costs microseconds; anything that is not mostly Han characters uses the `en` thresholds.
"""

from __future__ import annotations

# Han ideographs (CJK Unified + Extension A + compatibility) — simplified and traditional alike.
_HAN = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF))
ZH_SHARE = 0.2


def _is_han(ch: str) -> bool:
    o = ord(ch)
    return any(a <= o <= b for a, b in _HAN)


def detect_language(text: str, sample: int = 2000) -> str:
    """`zh` when Han characters make up at least 20% of the letters in the first `sample` characters."""
    letters = han = 0
    for ch in text[:sample]:
        if ch.isalpha():
            letters += 1
            han += _is_han(ch)
    return "zh" if letters and han / letters >= ZH_SHARE else "en"
