"""Owns policy term blocklists: normalisation-robust exact/wildcard matching with spans in the original text.

Pure Python (re + unicodedata), no torch: workers call it per text. Terms are compiled once into one regex.
Normalisation is done per character while remembering where each normalised character came from, so the
reported `start`/`end` always index the caller's original string:
  * Unicode NFKC (full-width forms, ligatures, circled letters) and case folding;
  * zero-width and other format characters (Cf) dropped, combining accents dropped ("fück" -> "fuck");
  * leetspeak and repeated letters are handled on the *pattern* side: every term letter becomes a class of
    its look-alikes repeated one or more times, so "fuuuck", "sh1t", "@ss" match, and "ass" never matches "as".
  * traditional Chinese characters are mapped to simplified (OpenCC's TSCharacters table, from the
    Apache-2.0 package opencc-python-reimplemented), so "殺" matches a term written "杀" and vice versa.
Latin terms need word boundaries ("ass" not in "class"); terms with CJK characters match anywhere, because
Chinese has no spaces between words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Look-alikes per letter (after case folding). Digits/symbols only: accents are already stripped.
LEET: dict[str, str] = {
    "a": "a@4", "b": "b8", "e": "e3", "g": "g9", "i": "i1!|l", "l": "l1|i", "o": "o0", "s": "s5$z",
    "t": "t7+", "z": "z2",
}
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


@lru_cache(maxsize=1)
def _trad_to_simp() -> dict[str, str]:
    """Traditional -> simplified, one character to one (the first candidate), so spans stay per character."""
    import opencc

    table = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    out: dict[str, str] = {}
    for line in table.read_text(encoding="utf-8").splitlines():
        src, _, dst = line.partition("\t")
        first = dst.split(" ")[0] if dst else ""
        if len(src) == 1 and len(first) == 1:
            out[src] = first
    return out


def _norm_char(ch: str) -> str:
    out = []
    ch = _trad_to_simp().get(ch, ch) if _CJK.match(ch) else ch
    for c in unicodedata.normalize("NFKC", ch):
        if unicodedata.category(c) == "Cf":  # zero-width space/joiner, soft hyphen, BOM ...
            continue
        for d in unicodedata.normalize("NFD", c):
            if unicodedata.category(d) != "Mn":
                out.append(d.casefold())
    return "".join(out)


def normalize(text: str) -> tuple[str, list[int]]:
    """Normalised text and, for each of its characters, the index of the original character it came from."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        n = ch.casefold() if ch.isascii() else _norm_char(ch)  # ASCII fast path: only case matters
        chars.append(n)
        origin.extend([i] * len(n))
    return "".join(chars), origin


def _term_pattern(term: str) -> str:
    norm, _ = normalize(term.strip())
    parts: list[str] = []
    prev = ""
    for ch in norm:
        if ch == "*":
            parts.append(r"\w*")
        elif ch.isspace():
            if prev != " ":
                parts.append(r"[\s\W_]+")  # "son of a bitch" matches "son-of-a bitch" too
            ch = " "
        else:
            # Every letter keeps its own "+": "ass" -> a+s+s+ matches "aaassss" but never "as".
            alts = LEET.get(ch, ch)
            parts.append("[" + "".join(re.escape(a) for a in alts) + "]+" if len(alts) > 1 else re.escape(ch) + "+")
        prev = ch
    body = "".join(parts)
    if _CJK.search(norm):
        return body
    return rf"(?<![^\W_]){body}(?![^\W_])"


@dataclass(frozen=True)
class Matcher:
    terms: tuple[str, ...]
    regex: re.Pattern[str] | None

    def find(self, text: str) -> list[dict[str, object]]:
        """Non-overlapping matches, left to right: {"term", "matched", "start", "end"} in original coordinates."""
        if self.regex is None or not text:
            return []
        norm, origin = normalize(text)
        out: list[dict[str, object]] = []
        for m in self.regex.finditer(norm):
            if m.end() == m.start():
                continue
            idx = int(m.lastgroup[1:]) if m.lastgroup else 0
            start, end = origin[m.start()], origin[m.end() - 1] + 1
            out.append({"term": self.terms[idx], "matched": text[start:end], "start": start, "end": end})
        return out

    def __bool__(self) -> bool:
        return self.regex is not None


def compile_blocklist(terms: list[str]) -> Matcher:
    """Compile once per policy; empty / whitespace terms are ignored, duplicates kept once."""
    clean = tuple(dict.fromkeys(t.strip() for t in terms if t and t.strip() and t.strip("* ")))
    if not clean:
        return Matcher((), None)
    # Longer terms first, so "son of a bitch" wins over "bitch" at the same position.
    order = sorted(range(len(clean)), key=lambda i: -len(clean[i]))
    alternation = "|".join(f"(?P<t{i}>{_term_pattern(clean[i])})" for i in order)
    return Matcher(clean, re.compile(alternation))
