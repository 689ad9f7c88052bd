"""Companion fixtures: ml-100k fetched once, models fitted once per session, apps built around them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from companion.app import create_app
from models.faq.encoder import E5Encoder, Encoder
from models.recsys.data import Ratings, kfold_indices, load_items, load_ratings
from models.recsys.engine import RecEngine
from service.core.config import Settings
from service.core.config_companion import CompanionSettings
from tests.support.redis_server import RedisServer
from training.recsys.fetch import DEFAULT_DATA_DIR, fetch

FAQ_SRC = Path(__file__).resolve().parents[2] / "companion" / "data" / "faq"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    fetch(DEFAULT_DATA_DIR)  # idempotent: downloads the wheels only on a fresh checkout
    return DEFAULT_DATA_DIR


@pytest.fixture(scope="session")
def ratings(data_dir: Path) -> Ratings:
    return load_ratings(data_dir / "ml-100k")


@pytest.fixture(scope="session")
def fold0(ratings: Ratings) -> tuple[Ratings, Ratings]:
    """(train, test) of fold 0 of the seeded 5-fold split the evaluation CLI uses."""
    test_idx = kfold_indices(len(ratings), 5, 0)[0]
    train_idx = np.setdiff1d(np.arange(len(ratings)), test_idx)
    return ratings.subset(train_idx), ratings.subset(test_idx)


@pytest.fixture(scope="session")
def catalogue(data_dir: Path) -> dict:
    from models.recsys.metadata import enrich

    items = load_items(data_dir / "ml-100k")
    enrich(items, data_dir / "film-metadata" / "movies.db", data_dir / "plots" / "movies.csv")
    return items


@pytest.fixture(scope="session")
def engine(data_dir: Path) -> RecEngine:
    # Read-only (user state lives in Redis); fixed blend weights so the fit is quick and deterministic.
    return RecEngine.build(data_dir, tune_blend=False)


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The served FAQ encoder (e5 + MiniLM; e5 converted once into var/models/e5-small), each part memoised per
    text so that every app fixture rebuilding the FAQ index from the same files costs no model time."""
    from models.faq.encoder import E5_MINILM_WEIGHTS, EnsembleEncoder, MiniLMEncoder
    from training.text.e5_convert import convert

    return EnsembleEncoder([CachedEncoder(E5Encoder(convert(Path("var/models/e5-small")))),
                            CachedEncoder(MiniLMEncoder())], E5_MINILM_WEIGHTS)


class CachedEncoder:
    """Wraps an encoder; vectors are computed once per distinct text (deterministic across app instances)."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.name, self.center = inner, inner.name, inner.center
        self.cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.encode(missing), strict=True))
        return np.stack([self.cache[t] for t in texts]) if texts else self.inner.encode([])


ARTIFACTS = Path(tempfile.gettempdir()) / f"companion-test-artifacts-{os.getpid()}"


def make_settings(redis_url: str, faq_dir: Path, **companion: object) -> Settings:
    # Recommender artifacts never go to var/ from tests; no periodic refit thread; refits skip blend tuning.
    companion.setdefault("recs_artifact_dir", ARTIFACTS)
    companion.setdefault("recs_refit_interval_s", 0)
    companion.setdefault("recs_refit_tune", False)
    return Settings(env="test", redis_url=redis_url, redis_socket_timeout_s=2.0,
                    companion=CompanionSettings(fetch_on_start=False, faq_dir=faq_dir, **companion))


@pytest.fixture(scope="module")
def client(redis_server: RedisServer, engine: RecEngine, encoder: Encoder) -> Iterator[TestClient]:
    """Read-only tests share one app per module (DB 2 of the private server; the FAQ index is built once)."""
    url = redis_server.url(2)
    redis.Redis.from_url(url).flushdb()
    app = create_app(make_settings(url, FAQ_SRC), engine=engine, encoder=encoder)
    with TestClient(app) as c:
        yield c


@pytest.fixture()
def faq_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "faq"
    shutil.copytree(FAQ_SRC, dest)
    return dest


@pytest.fixture()
def fresh_client(redis_url: str, faq_dir: Path, engine: RecEngine, encoder: Encoder) -> Iterator[TestClient]:
    """An app on a flushed DB and a private copy of the FAQ files (reload and block-list tests)."""
    app = create_app(make_settings(redis_url, faq_dir), engine=engine, encoder=encoder)
    with TestClient(app) as c:
        yield c
