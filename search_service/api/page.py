"""The "search near me" page: `GET /` (HTML), `/static/*` (its CSS and JS) and `GET /v1/presets`.

Self-contained: no CDN, no web fonts, no map tiles, no build step. The page talks only to this API
(`/v1/search`, `/v1/categories`, `/v1/stores/nearby`, `/v1/presets`), which a Content-Security-Policy enforces.
Register with `route_handlers=[*ROUTES, *page.PAGE_ROUTES]`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import msgspec
from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import HTTPException, NotFoundException
from litestar.file_system import BaseLocalFileSystem
from litestar.static_files import create_static_files_router
from litestar.types.file_types import FileInfo

from search_service.api.errors import error_response
from search_service.controlchars import escape_control_chars
from search_service.demo.places import DEMO_CITY, neighbourhoods

log = logging.getLogger("search_service.api")
STATIC_DIR = Path(__file__).resolve().parent / "static"

# No inline script or style, nothing from elsewhere: the page works offline and cannot load third-party code.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class LatLon(msgspec.Struct):
    lat: float
    lon: float


class Preset(msgspec.Struct):
    name: str
    lat: float
    lon: float


class PresetsResponse(msgspec.Struct):
    city: str
    center: LatLon
    presets: list[Preset]


@functools.cache
def demo_presets() -> PresetsResponse:
    """The demo city's centre and its neighbourhoods: where `seed-demo` puts its stores."""
    city = str(DEMO_CITY["name"])
    hoods = [Preset(name=name, lat=lat, lon=lon) for name, lat, lon in neighbourhoods(city)]
    center = LatLon(lat=float(DEMO_CITY["lat"]), lon=float(DEMO_CITY["lon"]))
    return PresetsResponse(city=city, center=center, presets=hoods)


@get("/", include_in_schema=False, sync_to_thread=False)
def index_page() -> Response[bytes]:
    """The page itself (read per request: cheap, and edits show without a restart). Its ETag, a hash of the
    bytes, lets a browser's revalidation (no-cache) get a 304 (not_modified.py) instead of the page again."""
    html = (STATIC_DIR / "index.html").read_bytes()
    etag = f'"{hashlib.blake2b(html, digest_size=12).hexdigest()}"'
    return Response(html, media_type="text/html", headers={**PAGE_HEADERS, "ETag": etag})


@get(
    "/v1/presets",
    summary="Demo locations",
    description="The demo city's centre and neighbourhoods, for the page's location picker.",
    tags=["page"],
    sync_to_thread=False,
)
def presets() -> PresetsResponse:
    return demo_presets()


class StaticDirectory(BaseLocalFileSystem):
    """The static files' file system, where a name it cannot hold is no file: a NUL byte made Path.stat() raise
    ValueError and a name over NAME_MAX an OSError, each a 500 with a traceback."""

    async def info(self, path: Any, **kwargs: Any) -> FileInfo:
        try:
            return await super().info(path, **kwargs)
        except PermissionError:
            raise
        except (ValueError, OSError) as exc:
            raise FileNotFoundError(path) from exc


def static_file_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """litestar's static errors name the file's path on this server ("no file or directory match the path
    /srv/…/static/x was found", "failed to read /srv/… due to missing permissions"): ours name none."""
    if exc.status_code == 404:
        return error_response(404, None, "no such file under /static")
    log.error(
        "static file %s: %s", exc.status_code, escape_control_chars(exc.detail)
    )  # an unreadable file: the operator's to fix
    return error_response(500, None, "internal error")


async def no_directory_form(connection: ASGIConnection[Any, Any, Any, Any], _: Any) -> None:
    """A name ending in `/` or `/.` (`/static/app.js/`, `app.js%2f`) asks for a directory: a 404, where the file
    system's normalising served the file. Async: litestar runs a sync guard on a worker thread."""
    raw = connection.scope.get("raw_path")  # the router drops a path's trailing slash
    path = unquote(raw.decode("latin-1")) if raw else connection.scope["path"]
    if path.rsplit("/", 1)[-1] in ("", "."):
        raise NotFoundException()


static_files = create_static_files_router(
    path="/static",
    directories=[STATIC_DIR],
    file_system=StaticDirectory(),
    name="page-static",
    include_in_schema=False,
    cache_control=CacheControlHeader(no_cache=True),
    guards=[no_directory_form],
    exception_handlers={HTTPException: static_file_error},
)

PAGE_ROUTES: list[Any] = [index_page, presets, static_files]
