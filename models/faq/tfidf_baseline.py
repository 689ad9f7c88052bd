"""Owns the lexical FAQ baseline: TF-IDF (word 1-2 grams + char 3-5 grams) vectors behind the Encoder protocol."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize


class TfidfEncoder:
    """Fitted on the FAQ phrasings at first encode (the index build), then frozen for queries."""

    name = "tfidf"
    center = False  # sparse lexical vectors: no shared offset to remove

    def __init__(self) -> None:
        self.word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english")
        self.char = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
        self.fitted = False

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not self.fitted:
            self.word.fit(texts)
            self.char.fit(texts)
            self.fitted = True
        x = sp.hstack([self.word.transform(texts), self.char.transform(texts)]).tocsr()
        return np.asarray(normalize(x).toarray(), dtype=np.float32)
