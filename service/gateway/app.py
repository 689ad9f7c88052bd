"""Owns the gateway app: create_app() wires settings, stores, queue, routers, middleware, errors and API docs.

Never import torch, transformers, onnxruntime or cv2 here (a test enforces it): the gateway must stay light.
The interactive docs (/docs, /redoc) load Swagger UI and ReDoc from assets shipped in the `fastapi-offline`
package and served here, never from a CDN: they work on an air-gapped host and leak no visits to third parties.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from service.core.config import Settings, get_settings
from service.core.errors import ErrorBody, install_error_handlers
from service.core.queue import TaskQueue
from service.core.security import Role
from service.gateway import console
from service.gateway.deps import Services
from service.gateway.fastpath import SubmitFastPath
from service.gateway.middleware import BodyLimitMiddleware, Metrics, MetricsMiddleware
from service.gateway.publisher import TextPublisher
from service.gateway.ratelimit import BackPressureCollector, QueueFull, RateLimitMiddleware, queue_full_handler
from service.gateway.routes import (
    admin,
    compat_openai,
    hashlists,
    health,
    media,
    moderations,
    policies,
    rescans,
    reviews,
    stats,
)
from service.gateway.routes.health import StoreCollector
from service.store.apikeys import ApiKeyStore, BootstrapEntry, TenantStore
from service.store.client import async_broker_client, async_client, sync_client
from service.store.items import ItemStore
from service.store.policies import PolicyStore
from service.store.reviews import ReviewStore

log = logging.getLogger("service")


def bootstrap_keys(settings: Settings, keys: ApiKeyStore) -> None:
    """Install the configured bootstrap keys so a fresh deployment is usable, once per Redis.

    Once a Redis holds the `bootstrapped` marker, later gateway starts install nothing: a bootstrap key revoked
    through the API stays revoked, and its settings no longer grant anything. The admin key becomes a
    superadmin (global scope); to recover a deployment whose superadmin keys were all revoked, an operator
    deletes the marker in Redis (revoked ids still stay dead: configure a new MOD_BOOTSTRAP_ADMIN_KEY).
    """
    entries: list[BootstrapEntry] = [
        (settings.bootstrap_admin_key.get_secret_value(), settings.bootstrap_tenant, Role.superadmin, "bootstrap")]
    for secret, role in ((settings.bootstrap_platform_key, Role.platform),
                         (settings.bootstrap_moderator_key, Role.moderator)):
        if secret is not None and secret.get_secret_value():
            entries.append((secret.get_secret_value(), settings.bootstrap_tenant, role, "bootstrap"))
    installed = keys.bootstrap(entries)
    if installed is None:
        log.info("this Redis was bootstrapped before; bootstrap keys from settings were not (re)installed")
    elif len(installed) < len(entries):
        log.warning("bootstrap skipped %d configured key(s) revoked earlier", len(entries) - len(installed))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        r = sync_client(settings)
        ar_timed = async_client(settings, timed=True)
        queue = TaskQueue(settings)
        # The Celery broker's DB, for text tasks pushed without kombu's producer (service/core/wire.py).
        abroker = async_broker_client(settings) if settings.gateway_direct_publish else None
        services = Services(
            settings=settings, redis=r, aredis=async_client(settings), aredis_timed=ar_timed,
            items=ItemStore(r, ar_timed),
            keys=ApiKeyStore(r), tenants=TenantStore(r), policies=PolicyStore(r, settings.policy_path),
            queue=queue, reviews=ReviewStore(r), text_publisher=TextPublisher(queue, abroker),
        )
        try:
            bootstrap_keys(settings, services.keys)
        except Exception as exc:  # noqa: BLE001 - Redis may be down at start; /readyz reports it
            log.warning("could not install bootstrap keys yet: %s", exc)
        app.state.services = services
        yield
        services.queue.close()
        await services.aredis.aclose()
        await ar_timed.aclose()
        if abroker is not None:
            await abroker.aclose()
        r.close()

    app = FastAPI(
        title="Moderation service",
        version="0.1.0",
        description="Text, image and video moderation for entertainment platforms. Authenticate with "
        "`Authorization: Bearer <api key>` or `X-API-Key: <api key>` (the Authorize button). Errors are JSON "
        "`{error: {code, message, details}}` (schema `ErrorBody`); branch on `code`.",
        lifespan=lifespan,
        # Replaced by install_docs(): FastAPI's own pages pull Swagger UI / ReDoc from a CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    install_docs(app)
    app.state.metrics = Metrics()
    app.state.metrics.registry.register(StoreCollector(app))
    app.state.metrics.registry.register(BackPressureCollector(app, settings))
    install_error_handlers(app)
    app.add_exception_handler(QueueFull, queue_full_handler)  # its own handler: 503 plus Retry-After
    for router in (media.router, moderations.router, hashlists.router, reviews.router, reviews.appeals,
                   rescans.router, admin.router, policies.router, health.router, stats.router, console.router,
                   compat_openai.router):  # OpenAI's wire format and error shape, under its own prefix
        app.include_router(router)

    def limit_for(path: str) -> int:
        if path.endswith("/image"):
            return settings.media.max_image_bytes + 64 * 1024  # multipart framing overhead
        if path.endswith("/video") or (path.startswith("/v1/hashlists/") and path.endswith("/file")):
            return settings.media.max_video_bytes + 64 * 1024
        return settings.max_body_bytes

    # Innermost: it reads bodies under the body limit and finds the principal the rate limiter looked up.
    app.add_middleware(SubmitFastPath, enabled=settings.gateway_fast_path)
    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    app.add_middleware(stats.StatsHook)  # counts submissions, decisions, appeals once answered
    # Outside the body limit (a refused request never reads its body), inside metrics (429s are counted).
    app.add_middleware(RateLimitMiddleware, settings=settings, metrics=app.state.metrics)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


DOCS_STATIC_URL = "/docs-static"


def docs_assets() -> Path | None:
    """The Swagger UI / ReDoc bundles shipped by `fastapi-offline` (only its static files are used)."""
    try:
        static = Path(str(importlib.resources.files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        return None
    return static if (static / "swagger-ui-bundle.js").is_file() else None


def install_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc from local assets, and an OpenAPI document whose errors all use `ErrorBody`."""
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    static = docs_assets()
    if static is None:
        # A missing docs package must not take the API down with it; the pages are simply not served.
        log.warning("fastapi-offline is not installed: /docs and /redoc are disabled (openapi.json still served)")
        return
    app.mount(DOCS_STATIC_URL, StaticFiles(directory=static), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC_URL}/favicon.png",
            # validatorUrl null: Swagger UI would otherwise send the spec URL to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None, "tryItOutEnabled": False,
                                   "displayRequestDuration": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_STATIC_URL}/favicon.png", with_google_fonts=False,
        )


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with its built-in 422 schema replaced by the one our handler really sends.

    FastAPI adds a 422 `HTTPValidationError` (`{detail: [...]}`) to every route with parameters, but
    install_error_handlers answers validation failures with `ErrorBody`; documenting the former would make
    every client (and the schemathesis run) expect a shape the service never sends.
    """
    if app.openapi_schema is not None:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                       tags=app.openapi_tags, servers=app.servers)
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorBody" not in components:
        defs = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(defs.pop("$defs", {}))
        components["ErrorBody"] = defs
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path in spec.get("paths", {}).values():
        for op in path.values():
            resp = op.get("responses", {}).get("422")
            schema = (resp or {}).get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref", "").endswith("/HTTPValidationError"):
                resp["content"]["application/json"]["schema"] = error_ref
                resp["description"] = "Failed validation: `validation_error` (`details.errors` lists each field)"
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    app.openapi_schema = spec
    return spec
