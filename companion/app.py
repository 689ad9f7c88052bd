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
from companion.routes_faq import router as faq_router
from companion.routes_recs import router as recs_router
from companion.state import CompanionState, FaqRegistry, build_encoder, build_engine
from models.faq.encoder import Encoder
from models.faq.search import Thresholds
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


def create_app(settings: Settings | None = None, engine: RecEngine | None = None,
               encoder: Encoder | None = None) -> FastAPI:
    """Build the app; engine/encoder may be passed prebuilt (tests share one fit across apps)."""
    cfg = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        c = cfg.companion
        _limit_threads(c.compute_threads)
        eng = engine or build_engine(cfg)
        faq = FaqRegistry(c.faq_dir, encoder or build_encoder(cfg), Thresholds(c.faq_min_score, c.faq_min_gap))
        faq.reload()
        client = redis.Redis.from_url(cfg.redis_url, socket_timeout=cfg.redis_socket_timeout_s)
        app.state.companion = CompanionState(cfg, eng, faq, client)
        log.info("companion ready: %d users, %d items, FAQ %s", eng.ratings.n_users, eng.ratings.n_items,
                 sorted(faq.indexes))
        try:
            yield
        finally:
            client.close()
            app.state.companion = None

    app = FastAPI(title="companion: recommendations + FAQ", version="0.1.0", lifespan=lifespan)
    errors.install(app)
    app.include_router(recs_router)
    app.include_router(faq_router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, object]:
        """Liveness plus what is loaded."""
        st = getattr(app.state, "companion", None)
        if st is None:
            return {"status": "loading"}
        cov = st.engine.coverage.as_dict() if st.engine.coverage else {}
        return {"status": "ok", "users": st.engine.ratings.n_users, "items": st.engine.ratings.n_items,
                "metadata_coverage": cov, "faq_collections": [f"{t}/{c}" for t, c in sorted(st.faq.indexes)]}

    return app


# Building the app only reads settings; models load in the lifespan, so importing this module stays cheap.
app = create_app()
