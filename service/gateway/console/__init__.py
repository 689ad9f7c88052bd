"""Owns the moderator console and operations dashboard served at /console (see docs/console.md).

`router` bundles the page and asset routes (pages), sign-in and sessions (session), the review screens
(review), the dashboard (dashboard) and the admin pages (admin). All of them are left out of the OpenAPI
document: they are the console's own backend, authenticated by its session cookie, not part of the public API.
"""

from __future__ import annotations

from fastapi import APIRouter

from service.gateway.console import admin, dashboard, pages, review, session

router = APIRouter()
for _sub in (pages.router, session.router, review.router, dashboard.router, admin.router):
    router.include_router(_sub)

__all__ = ["router"]
