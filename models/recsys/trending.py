"""Owns "trending when you were active": liked ratings counted with a time kernel around reference times.

On a live platform the reference time is now (or the user's latest activity); offline it is the times of the user's
own *training* ratings (never held-out ones). MovieLens users rate most of their films in one session and new
releases surge, so what others liked around a user's session is a strong guess of what that user watched then.

Liked ratings (>= like_threshold) are binned by `bin_hours`; a user's reference times become a histogram over the
same bins, and an item's score is the mean over the user's reference times of sum_likes K(|t_like - t_ref|) with a
box kernel (|dt| <= window_days counts 1), so the score is exactly "how many people liked it within window_days of
your ratings" (averaged over your ratings) and the reason string can say so.
"""

from __future__ import annotations

import numpy as np

from models.recsys.data import Ratings

DAY = 86400.0


class Trending:
    def __init__(self, window_days: float = 7.0, bin_hours: float = 6.0, like_threshold: float = 4.0) -> None:
        self.window_days, self.bin_hours, self.like_threshold = window_days, bin_hours, like_threshold
        self.t0 = 0.0
        self.n_bins = 0
        self.counts = np.zeros((0, 0), dtype=np.float32)  # items x bins: likes per time bin
        self.t_max = 0.0

    @property
    def available(self) -> bool:
        return self.n_bins > 0

    def fit(self, data: Ratings) -> Trending:
        """No-op (available False) when the ratings carry no times."""
        if data.times is None or not len(data):
            self.n_bins = 0
            self.counts = np.zeros((data.n_items, 0), dtype=np.float32)
            return self
        liked = data.values >= self.like_threshold
        t = data.times[liked]
        self.t0, self.t_max = float(data.times.min()), float(data.times.max())
        width = self.bin_hours * 3600.0
        self.n_bins = int((self.t_max - self.t0) // width) + 1
        b = ((t - self.t0) // width).astype(np.int64)
        self.counts = np.zeros((data.n_items, self.n_bins), dtype=np.float32)
        np.add.at(self.counts, (data.items[liked], b), 1.0)
        return self

    def clip(self, times: np.ndarray) -> np.ndarray:
        """Reference times inside the fitted span: a time after the newest rating means "as of the newest data"."""
        return np.clip(np.asarray(times, dtype=np.float64), self.t0, self.t_max)

    def _kernel(self, ref_times: np.ndarray) -> np.ndarray:
        """Per-bin weight: the fraction of the user's reference times within window_days of the bin."""
        width = self.bin_hours * 3600.0
        rb = ((self.clip(ref_times) - self.t0) // width).astype(np.int64)
        ub, cnt = np.unique(rb, return_counts=True)
        reach = int(round(self.window_days * DAY / width))
        w = np.zeros(self.n_bins + 1)
        np.add.at(w, np.clip(ub - reach, 0, self.n_bins), cnt)  # box kernel as a prefix-sum of +1/-1 edges
        np.add.at(w, np.clip(ub + reach + 1, 0, self.n_bins), -cnt)
        return np.cumsum(w)[: self.n_bins] / max(len(rb), 1)

    def scores_at(self, ref_times: np.ndarray) -> np.ndarray:
        """Mean over reference times of likes within window_days, per item; NaN everywhere when unavailable."""
        if not self.available or len(ref_times) == 0:
            return np.full(self.counts.shape[0], np.nan)
        return self.counts @ self._kernel(ref_times)

    def reason(self, score: float) -> str:
        n = int(round(score))
        who = "person" if n == 1 else "people"
        return f"trending when you were active: {n} {who} liked it within {self.window_days:g} days of your ratings"
