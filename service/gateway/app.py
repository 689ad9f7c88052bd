"""Owns the gateway app: create_app() wires settings, stores, queue, routers, middleware and errors.

Never import torch, transformers, onnxruntime or cv2 here (a test enforces it): the gateway must stay light.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.core.config import Settings, get_settings
from service.core.errors import install_error_handlers
from service.core.queue import TaskQueue
from service.core.security import Role
from service.gateway.deps import Services
from service.gateway.middleware import BodyLimitMiddleware, Metrics, MetricsMiddleware
from service.gateway.routes import admin, hashlists, health, media, moderations, policies, rescans, reviews
from service.gateway.routes.health import StoreCollector
from service.store.apikeys import ApiKeyStore, TenantStore
from service.store.client import async_client, sync_client
from service.store.items import ItemStore
from service.store.policies import PolicyStore
from service.store.reviews import ReviewStore

log = logging.getLogger("service")


def bootstrap_keys(settings: Settings, keys: ApiKeyStore) -> None:
    """Install the configured bootstrap keys so a fresh deployment is usable."""
    keys.put(settings.bootstrap_admin_key.get_secret_value(), settings.bootstrap_tenant, Role.admin, "bootstrap")
    for secret, role in ((settings.bootstrap_platform_key, Role.platform),
                         (settings.bootstrap_moderator_key, Role.moderator)):
        if secret is not None and secret.get_secret_value():
            keys.put(secret.get_secret_value(), settings.bootstrap_tenant, role, "bootstrap")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        r = sync_client(settings)
        services = Services(
            settings=settings, redis=r, aredis=async_client(settings), items=ItemStore(r),
            keys=ApiKeyStore(r), tenants=TenantStore(r), policies=PolicyStore(r, settings.policy_path),
            queue=TaskQueue(settings), reviews=ReviewStore(r),
        )
        try:
            bootstrap_keys(settings, services.keys)
        except Exception as exc:  # noqa: BLE001 - Redis may be down at start; /readyz reports it
            log.warning("could not install bootstrap keys yet: %s", exc)
        app.state.services = services
        yield
        services.queue.close()
        await services.aredis.aclose()
        r.close()

    app = FastAPI(
        title="Moderation service",
        version="0.1.0",
        description="Text, image and video moderation for entertainment platforms. Authenticate with "
        "`Authorization: Bearer <api key>`. Errors are JSON `{error: {code, message, details}}`.",
        lifespan=lifespan,
    )
    app.state.metrics = Metrics()
    app.state.metrics.registry.register(StoreCollector(app))
    install_error_handlers(app)
    for router in (media.router, moderations.router, hashlists.router, reviews.router, reviews.appeals,
                   rescans.router, admin.router, policies.router, health.router):
        app.include_router(router)

    def limit_for(path: str) -> int:
        if path.endswith("/image"):
            return settings.media.max_image_bytes + 64 * 1024  # multipart framing overhead
        if path.endswith("/video") or (path.startswith("/v1/hashlists/") and path.endswith("/file")):
            return settings.media.max_video_bytes + 64 * 1024
        return settings.max_body_bytes

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
