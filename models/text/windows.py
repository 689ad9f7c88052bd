"""Owns cutting a text into model windows of whole sentences (the same cut at training and serving time).

A text that fits `max_tokens` is one window. A longer one is cut at sentence ends into windows of at most
`max_tokens` (special tokens and the model's text prefix included), each new window repeating the previous
one's last sentence when both fit, so a sentence at a cut is always seen with its neighbour. A sentence longer
than a window is cut into token chunks that overlap by WINDOW_STRIDE tokens.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

# Sentence ends: Latin punctuation followed by space, CJK full stops (no space needed), and newlines.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n+")
WINDOW_STRIDE = 32  # tokens two cuts of one overlong sentence share, so no phrase is split unseen


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of non-empty sentences, in order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


@dataclass(frozen=True)
class Windowing:
    tokenizer: Any
    max_tokens: int
    prefix_ids: tuple[int, ...]
    head: tuple[int, ...]
    tail: tuple[int, ...]

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, max_tokens: int, prefix: str = "") -> Windowing:
        prefix_ids = tuple(tokenizer(prefix, add_special_tokens=False)["input_ids"]) if prefix else ()
        # Special tokens around one sequence ([CLS] … [SEP] for BERT, <s> … </s> for XLM-R), read off an empty
        # encoding: transformers 5 fast tokenizers no longer expose build_inputs_with_special_tokens.
        empty = tuple(tokenizer("")["input_ids"])
        head, tail = (empty[:1], empty[1:]) if len(empty) >= 2 else ((), empty)
        return cls(tokenizer, max_tokens, prefix_ids, head, tail)

    @property
    def budget(self) -> int:
        """Content tokens per window: max_tokens minus the special tokens and the text prefix."""
        return max(8, self.max_tokens - len(self.head) - len(self.tail) - len(self.prefix_ids))

    def wrap(self, content: list[int]) -> list[int]:
        return [*self.head, *self.prefix_ids, *content, *self.tail]

    def windows(self, text: str) -> list[tuple[int, int, list[int]]]:
        """(char start, char end, input ids) of each window of `text`."""
        return self.windows_batch([text])[0]

    def windows_batch(self, texts: list[str]) -> list[list[tuple[int, int, list[int]]]]:
        """Windows of each text; one tokenizer call for the whole batch (the Rust tokenizer runs it in
        parallel, and per-text calls would cost more than a short text's forward pass on a GPU)."""
        enc = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [self._cut(text, ids, offsets)
                for text, ids, offsets in zip(texts, enc["input_ids"], enc["offset_mapping"], strict=True)]

    def _cut(self, text: str, ids: list[int], offsets: list[tuple[int, int]]) -> list[tuple[int, int, list[int]]]:
        budget = self.budget
        if len(ids) <= budget:
            return [(0, len(text), self.wrap(ids))]
        # Token index where each sentence starts; a window is a run of whole sentences that fits the budget.
        token_starts = [s for s, _ in offsets]
        starts = sorted({bisect_left(token_starts, a) for a, _ in split_sentences(text)} | {0})
        bounds = [(s, e) for s, e in zip(starts, [*starts[1:], len(ids)], strict=True) if e > s]
        pieces: list[tuple[int, int]] = []  # token ranges no longer than the budget
        for s, e in bounds:
            while e - s > budget:  # one sentence longer than a window: cut it, with some overlap
                pieces.append((s, s + budget))
                s += budget - WINDOW_STRIDE
            pieces.append((s, e))
        out: list[tuple[int, int]] = []
        cur_s, cur_e = pieces[0]
        last_s = cur_s
        for s, e in pieces[1:]:
            if e - cur_s <= budget:
                cur_e, last_s = e, s
                continue
            out.append((cur_s, cur_e))
            # Overlap: the new window repeats the closed window's last sentence when both still fit.
            cur_s = last_s if cur_s < last_s and e - last_s <= budget else s
            cur_e, last_s = e, s
        out.append((cur_s, cur_e))
        return [(offsets[s][0], offsets[e - 1][1], self.wrap(ids[s:e])) for s, e in out]
