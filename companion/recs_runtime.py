"""Owns the companion's live recommender: the current model (loaded from artifacts, swapped atomically), the shared
user state in Redis, runtime catalogue items, and refits (on demand and periodic, one process at a time).

Requests read `self.engine` once, so a refit that swaps it mid-request never mixes two models in one answer.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis
import scipy.sparse as sp

from companion.errors import RecsStoreUnavailable
from models.recsys import bundle as artifacts
from models.recsys.bundle import FitParams, fit_bundle
from models.recsys.data import Item, Ratings, load_items, load_ratings
from models.recsys.engine import Catalog, RecEngine, UserHistory
from models.recsys.metadata import enrich
from service.core.config import Settings
from service.store.recs import RecsStore

log = logging.getLogger(__name__)


def fit_params(settings: Settings) -> FitParams:
    c = settings.companion
    return FitParams(svd_factors=c.svd_factors, svd_epochs=c.svd_epochs, svd_reg=c.svd_reg,
                     svd_reg_bias=c.svd_reg_bias, knn_k=c.knn_k, knn_shrinkage=c.knn_shrinkage,
                     knn_candidates=c.knn_candidates, knn_rank_shrinkage=c.knn_rank_shrinkage,
                     knn_neighbours=c.knn_neighbours, als_factors=c.als_factors, als_reg=c.als_reg,
                     als_iterations=c.als_iterations, min_support=c.min_item_support)


def data_dir(settings: Settings) -> Path:
    return settings.companion.recs_data_dir or settings.data_dir / "data"


def artifact_dir(settings: Settings) -> Path:
    return settings.companion.recs_artifact_dir or settings.data_dir / "models" / "recsys"


def item_from(item_id: str, f: dict[str, Any]) -> Item:
    return Item(item_id, f.get("title", item_id), f.get("year"), list(f.get("genres", [])), f.get("director", ""),
                f.get("writer", ""), f.get("cast", ""), f.get("plot", ""))


class RecsRuntime:
    def __init__(self, settings: Settings, client: redis.Redis, engine: RecEngine) -> None:
        self.settings, self.store, self.engine = settings, RecsStore(client), engine
        self.root = artifact_dir(settings)
        self._swap_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- start ---------------------------------------------------------------------------------------
    @classmethod
    def start(cls, settings: Settings, client: redis.Redis, engine: RecEngine | None = None) -> RecsRuntime:
        """Seed Redis once, then: a passed engine, else the published/CURRENT artifact, else fit and save one."""
        store = RecsStore(client)
        root = artifact_dir(settings)
        try:
            published: str | None = store.versions()[0]
        except redis.RedisError as exc:  # start anyway; recommendation endpoints answer 503 until Redis is back
            log.warning("recommendation store unavailable at start: %s", exc)
            published = None
        if engine is None:
            for v in (published, artifacts.current(root)):
                try:
                    engine = RecEngine(artifacts.load(root, v)) if v else None
                except FileNotFoundError:
                    continue
                if engine:
                    break
        try:
            seed = engine.bundle.data if engine else load_ratings(data_dir(settings) / "ml-100k")
            store.seed_ratings(seed.triples(), source="ml-100k",
                               times=None if seed.times is None else seed.times.tolist())
            rt = cls(settings, client, engine or RecEngine(cls._fit_from_store(settings, store, None)))
            if engine is None:
                rt._publish(rt.engine)
            elif published is None:
                store.publish_model(rt.engine.version)
        except redis.RedisError as exc:
            log.warning("recommendation store unavailable at start: %s", exc)
            if engine is None:
                raise
            rt = cls(settings, client, engine)
        log.info("recommender %s: %d users, %d items", rt.engine.version, rt.engine.bundle.data.n_users,
                 rt.engine.bundle.data.n_items)
        return rt

    def start_periodic(self) -> None:
        """The in-process schedule (opt-in); the default schedule is the Celery beat task in companion.tasks."""
        interval = self.settings.companion.recs_refit_interval_s
        if interval > 0 and self.settings.companion.recs_refit_in_process:
            self._thread = threading.Thread(target=self._periodic, args=(interval,), name="recs-refit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _periodic(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refit(only_if_free=True)
            except Exception as exc:  # noqa: BLE001 - the schedule must outlive one failed refit
                log.warning("periodic refit failed: %s", exc)

    # ---- per request ---------------------------------------------------------------------------------
    def user(self, user_id: str) -> tuple[RecEngine, Catalog, UserHistory]:
        """The engine to use, its catalogue with runtime items, and the user's stored state (one round trip)."""
        try:
            st = self.store.user_state(user_id)
            engine = self._sync(st.model_version)
            cat = self.catalog(engine, st.items_version)
        except redis.RedisError as exc:
            raise RecsStoreUnavailable("cannot read recommendation state", {"error": type(exc).__name__}) from exc
        return engine, cat, UserHistory(user_id, st.ratings, st.events, st.hidden, st.rating_times)

    def current(self) -> tuple[RecEngine, Catalog]:
        try:
            published, items_v = self.store.versions()
            engine = self._sync(published)
            return engine, self.catalog(engine, items_v)
        except redis.RedisError as exc:
            raise RecsStoreUnavailable("cannot read recommendation state", {"error": type(exc).__name__}) from exc

    def catalog(self, engine: RecEngine, items_version: int) -> Catalog:
        if items_version == 0:
            return engine.catalog()
        key = (engine.version, items_version)
        if engine._catalog[0] == key:
            return engine.catalog(None, key)
        runtime = self._runtime_items()
        new = {i for i in runtime if i not in engine.bundle.data.item_index}
        return engine.catalog(runtime, key, self._ratings_of(new) if new else None)

    def _runtime_items(self) -> dict[str, Item]:
        return {i: item_from(i, f) for i, f in self.store.items().items()}

    def _ratings_of(self, items: set[str]) -> dict[str, list[tuple[str, float]]]:
        """Every stored rating of these (not yet fitted) items, for their SVD fold-in. Reads all ratings: it runs
        only when the items version changes (an item added, or a new item rated), not per request."""
        out: dict[str, list[tuple[str, float]]] = {}
        for u, i, r in self.store.all_ratings():
            if i in items:
                out.setdefault(i, []).append((u, r))
        return out

    def touch_if_new(self, engine: RecEngine, item_ids: list[str]) -> None:
        """After a rating change: if it concerns an item the model was not fitted on, bump the items version so
        every process folds the item in again (collaborative before the next refit)."""
        if any(i not in engine.bundle.data.item_index for i in item_ids):
            self.store.touch_items()

    def _sync(self, published: str | None) -> RecEngine:
        """Swap to the published version when another process refitted (load outside any request's engine)."""
        engine = self.engine
        if published and published != engine.version and self._swap_lock.acquire(blocking=False):
            try:
                if published != self.engine.version:
                    self.engine = RecEngine(artifacts.load(self.root, published))
                    log.info("recommender swapped to %s", published)
            except FileNotFoundError as exc:
                log.warning("published model %s not loadable here: %s", published, exc)
            finally:
                self._swap_lock.release()
        return self.engine

    # ---- refit ---------------------------------------------------------------------------------------
    @staticmethod
    def _fit_from_store(settings: Settings, store: RecsStore, base: RecEngine | None,
                        tune: bool | None = None) -> artifacts.Bundle:
        """A bundle from every rating and event in Redis; catalogue = base/data set items + runtime items."""
        if base is not None:
            catalogue = dict(base.bundle.catalogue)
            coverage = base.bundle.coverage
        else:
            d = data_dir(settings)
            catalogue = load_items(d / "ml-100k")
            coverage = enrich(catalogue, d / "film-metadata" / "movies.db", d / "plots" / "movies.csv")
        catalogue.update({i: item_from(i, f) for i, f in store.items().items()})
        events = store.all_event_weights()
        timed = store.all_ratings_timed()
        data = Ratings.from_triples([(u, i, r) for u, i, r, _ in timed], users=[u for u, _, _ in events],
                                    items=list(catalogue), times=[t for *_, t in timed])
        ev = None
        if events:
            rows = [data.user_index[u] for u, i, _ in events if i in data.item_index]
            cols = [data.item_index[i] for u, i, _ in events if i in data.item_index]
            vals = [w for _, i, w in events if i in data.item_index]
            ev = sp.csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)), shape=(data.n_users, data.n_items))
        c = settings.companion
        return fit_bundle(data, catalogue, fit_params(settings), events=ev,
                          tune_blend=c.recs_refit_tune if tune is None else tune, coverage=coverage)

    def refit(self, tune: bool | None = None, only_if_free: bool = False) -> str | None:
        """Fit from Redis, save the artifact, publish its version, swap. None if another process holds the lock."""
        ttl = 3600
        if not self.store.refit_lock(ttl):
            if only_if_free:
                return None
            deadline = time.monotonic() + ttl
            while not self.store.refit_lock(ttl):
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.5)
        try:
            new = RecEngine(self._fit_from_store(self.settings, self.store, self.engine, tune))
            self._publish(new)
            return new.version
        finally:
            self.store.refit_unlock()

    def _publish(self, engine: RecEngine) -> None:
        artifacts.save(engine.bundle, self.root)
        self.store.publish_model(engine.version)
        self.engine = engine  # one reference assignment: in-flight requests keep the model they started with
