"""Owns "trending when you were active": liked ratings counted with a time kernel around reference times.

On a live platform the reference time is now (or the user's latest activity); offline it is the times of the user's
own *training* ratings (never held-out ones). MovieLens users rate most of their films in one session and new
releases surge, so what others liked around a user's session is a strong guess of what that user watched then.

Liked ratings (>= like_threshold) are binned by `bin_hours`; a user's reference times become a histogram over the
same bins, and an item's score is the mean over the user's reference times of sum_likes K(|t_like - t_ref|) with a
box kernel (|dt| <= window_days counts 1), so the score is exactly "how many people liked it within window_days of
your ratings" (averaged over your ratings) and the reason string can say so. The 90-day default is the best
window of 1/3/7/14/21/42/90 days on ml-100k fold 0 (training/recsys/probe_time.py): a week alone scores *below*
most-liked there (0.154 vs 0.176 NDCG@10 at 1 rating); the signal is "what was popular then", not a weekly surge.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from models.recsys.data import Ratings

DAY = 86400.0


class Trending:
    def __init__(self, window_days: float = 90.0, bin_hours: float = 6.0, like_threshold: float = 4.0) -> None:
        self.window_days, self.bin_hours, self.like_threshold = window_days, bin_hours, like_threshold
        self.t0 = 0.0
        self.n_bins = 0
        # items x bins, likes per time bin; sparse so that years of live ratings cost their number of likes only
        self.counts = sp.csr_matrix((0, 0), dtype=np.float32)
        self.t_max = 0.0
        self.user_times: list[np.ndarray] = []  # fitted users' rating times (offline reference times)

    @property
    def available(self) -> bool:
        return self.n_bins > 0

    def fit(self, data: Ratings) -> Trending:
        """No-op (available False) when the ratings carry no times."""
        ok = np.isfinite(data.times) if data.times is not None else np.zeros(len(data), dtype=bool)
        if data.times is None or not ok.any():
            self.n_bins = 0
            self.counts = sp.csr_matrix((data.n_items, 0), dtype=np.float32)
            self.user_times = [np.zeros(0)] * data.n_users
            return self
        order = np.argsort(data.users, kind="stable")
        bounds = np.searchsorted(data.users[order], np.arange(data.n_users + 1))
        tt = data.times[order]
        self.user_times = [tt[a:b][np.isfinite(tt[a:b])] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        liked = (data.values >= self.like_threshold) & ok  # a rating stored without a time counts nowhere
        t = data.times[liked]
        self.t0, self.t_max = float(data.times[ok].min()), float(data.times[ok].max())
        width = self.bin_hours * 3600.0
        self.n_bins = int((self.t_max - self.t0) // width) + 1
        b = ((t - self.t0) // width).astype(np.int64)
        self.counts = sp.csr_matrix((np.ones(len(b), dtype=np.float32), (data.items[liked], b)),
                                    shape=(data.n_items, self.n_bins))
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
        return np.asarray(self.counts @ self._kernel(ref_times), dtype=np.float64).ravel()

    def scores_for_user(self, u: int) -> np.ndarray:
        """Offline: the fitted user's own rating times are the reference times."""
        return self.scores_at(self.user_times[u] if u < len(self.user_times) else np.zeros(0))

    def reason(self, score: float, ref_times: np.ndarray) -> str:
        """The score in words: likes within the window of the reference times (averaged when there are several);
        reference times after the newest fitted rating were clipped to it, and the reason says so."""
        n = int(round(score))
        count = f"{'about ' if abs(n - score) > 1e-6 else ''}{n} {'person' if n == 1 else 'people'} rated it " \
                f"{self.like_threshold:g}★ or more"
        if len(ref_times) and float(np.min(ref_times)) > self.t_max:
            newest = time.strftime("%Y-%m-%d", time.gmtime(self.t_max))
            return f"popular lately: {count} in the {self.window_days:g} days up to the newest ratings ({newest})"
        return f"popular when you were active: {count} within {self.window_days:g} days of your ratings"
