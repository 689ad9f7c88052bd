"""Owns the console's page and static assets: the single HTML shell at /console and /console/static/*.

Only files that ship in `static/` are served (a manifest built at import, so no path from a request ever
reaches the filesystem), each with a fixed content type and the console's security headers. Chart.js is
vendored under static/vendor/ from the npm package (see docs/console.md); nothing loads from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from service.core.errors import NotFound
from service.gateway.console.session import ConsoleRoute, add_security_headers

STATIC = Path(__file__).parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8",
         ".md": "text/plain; charset=utf-8"}


def _manifest() -> dict[str, tuple[Path, str]]:
    out = {}
    for path in sorted(STATIC.rglob("*")):
        if path.is_file() and path.suffix in TYPES:
            out[path.relative_to(STATIC).as_posix()] = (path, TYPES[path.suffix])
    return out


ASSETS = _manifest()

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/console")
def console_page() -> Response:
    """The console shell; everything else is drawn by static/js from /console/api."""
    path, media_type = ASSETS["index.html"]
    return add_security_headers(FileResponse(path, media_type=media_type), cache="no-cache")


@router.get("/console/")
def console_slash() -> Response:
    return RedirectResponse("/console", status_code=308)


@router.get("/console/static/{name:path}")
def console_asset(name: str) -> Response:
    found = ASSETS.get(name)
    if found is None:
        raise NotFound(f"no console asset {name!r}", code="not_found")
    path, media_type = found
    return add_security_headers(FileResponse(path, media_type=media_type), cache="no-cache")
