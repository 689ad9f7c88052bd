"""Blocklist normalisation and span tests: every match must point at the original characters."""

from __future__ import annotations

import pytest

from models.text.blocklist import compile_blocklist, normalize

TERMS = ["ass", "fuck*", "idiot", "son of a bitch", "傻瓜", "*phobe", "他妈的"]


@pytest.fixture(scope="module")
def matcher():
    return compile_blocklist(TERMS)


@pytest.mark.parametrize(
    ("text", "term", "matched"),
    [
        ("what an IDIOT", "idiot", "IDIOT"),
        ("you 1d10t", "idiot", "1d10t"),  # leetspeak digits
        ("you !d!0t", "idiot", "!d!0t"),  # leetspeak symbols
        ("kiss my @$$", "ass", "@$$"),
        ("fuuuuuck this", "fuck*", "fuuuuuck"),  # repeated letters
        ("FUCKING hell", "fuck*", "FUCKING"),  # wildcard suffix
        ("ｆｕｃｋ you", "fuck*", "ｆｕｃｋ"),  # full-width forms (NFKC)
        ("f\u200bu\u200dck off", "fuck*", "f\u200bu\u200dck"),  # zero-width characters inside the word
        ("fück", "fuck*", "fück"),  # combining accent stripped
        ("son-of-a   bitch", "son of a bitch", "son-of-a   bitch"),  # any separator between words
        ("你是个傻瓜吧", "傻瓜", "傻瓜"),  # Chinese: no word boundaries
        ("他妈的真烦", "他妈的", "他妈的"),
        ("such a homophobe", "*phobe", "homophobe"),  # wildcard prefix
    ],
)
def test_matches_with_original_span(matcher, text, term, matched):
    hits = matcher.find(text)
    assert [h["term"] for h in hits] == [term]
    h = hits[0]
    assert h["matched"] == matched
    assert text[h["start"] : h["end"]] == matched


@pytest.mark.parametrize(
    "text", ["class assignment", "as you like", "pass", "Scunthorpe", "", "   ", "我很好", "idiotic?"]
)
def test_no_false_matches(matcher, text):
    assert matcher.find(text) == []


def test_multiple_matches_in_order(matcher):
    text = "idiot! ｉｄｉｏｔ and ass"
    hits = matcher.find(text)
    assert [(h["term"], text[h["start"] : h["end"]]) for h in hits] == [
        ("idiot", "idiot"), ("idiot", "ｉｄｉｏｔ"), ("ass", "ass")]


def test_longest_term_wins_at_same_position():
    m = compile_blocklist(["bitch", "son of a bitch"])
    assert [h["term"] for h in m.find("son of a bitch")] == ["son of a bitch"]


def test_empty_blocklist_matches_nothing():
    m = compile_blocklist(["", "  ", "*"])
    assert not m
    assert m.find("anything at all") == []


def test_normalize_keeps_origin_for_expanding_characters():
    norm, origin = normalize("ﬁne Straße")  # ligature and ß both expand to two characters
    assert norm == "fine strasse"
    assert len(origin) == len(norm)
    assert origin[:2] == [0, 0]
    assert origin[-3:] == [8, 8, 9]


def test_blocklist_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, models.text.blocklist; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_traditional_and_simplified_chinese_match_each_other() -> None:
    m = compile_blocklist(["杀了你", "廢物"])
    text = "我要殺了你這個废物"
    hits = m.find(text)
    assert [h["term"] for h in hits] == ["杀了你", "廢物"]
    assert [text[h["start"]:h["end"]] for h in hits] == ["殺了你", "废物"]
