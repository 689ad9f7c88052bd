"""Owns the companion ASGI app: recommendations + FAQ (`uvicorn companion.app:app --port 8001`).

A separate process from the gateway because the FAQ encoder needs torch; the gateway never imports this module.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI

from companion import errors
from companion.recs_runtime import RecsRuntime
from companion.routes_faq import router as faq_router
from companion.routes_recs import router as recs_router
from companion.routes_recs_state import router as recs_state_router
from companion.state import CompanionState, FaqRegistry, build_encoder, data_dir, faq_thresholds
from models.faq.encoder import Encoder
from models.recsys.engine import RecEngine
from service.core.config import Settings, get_settings

log = logging.getLogger(__name__)


def _limit_threads(n: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # tfidf-only deployments may not ship torch
        pass


def start_recs(cfg: Settings, client: redis.Redis, engine: RecEngine | None) -> RecsRuntime:
    """Recommender: the passed engine, else the saved artifact, else a fit (fetching the data set if allowed)."""
    if engine is None and cfg.companion.fetch_on_start:
        from training.recsys.fetch import fetch

        fetch(data_dir(cfg))
    recs = RecsRuntime.start(cfg, client, engine)
    recs.start_periodic()
    return recs


def create_app(settings: Settings | None = None, engine: RecEngine | None = None,
               encoder: Encoder | None = None) -> FastAPI:
    """Build the app; engine/encoder may be passed prebuilt (tests share one fit across apps)."""
    cfg = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        c = cfg.companion
        _limit_threads(c.compute_threads)
        client = redis.Redis.from_url(cfg.redis_url, socket_timeout=cfg.redis_socket_timeout_s)
        recs = start_recs(cfg, client, engine)
        enc = encoder or build_encoder(cfg)
        faq = FaqRegistry(c.faq_dir, enc, faq_thresholds(cfg, enc))
        faq.reload()
        app.state.companion = CompanionState(cfg, recs, faq, client)
        log.info("companion ready: model %s, FAQ %s", recs.engine.version, sorted(faq.indexes))
        try:
            yield
        finally:
            recs.stop()
            client.close()
            app.state.companion = None

    app = FastAPI(title="companion: recommendations + FAQ", version="0.1.0", lifespan=lifespan)
    errors.install(app)
    app.include_router(recs_router)
    app.include_router(recs_state_router)
    app.include_router(faq_router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, object]:
        """Liveness plus what is loaded."""
        st = getattr(app.state, "companion", None)
        if st is None:
            return {"status": "loading"}
        b = st.engine.bundle
        cov = b.coverage.as_dict() if b.coverage else {}
        return {"status": "ok", "users": b.data.n_users, "items": b.data.n_items, "model_version": b.version,
                "metadata_coverage": cov, "faq_collections": [f"{t}/{c}" for t, c in sorted(st.faq.indexes)]}

    return app


# Building the app only reads settings; models load in the lifespan, so importing this module stays cheap.
app = create_app()
