"""The "search near me" page: `GET /` (HTML), `/static/*` (its CSS and JS) and `GET /v1/presets`.

Self-contained: no CDN, no web fonts, no map tiles, no build step. The page talks only to this API
(`/v1/search`, `/v1/categories`, `/v1/stores/nearby`, `/v1/presets`), which a Content-Security-Policy enforces.
Register with `route_handlers=[*ROUTES, *page.PAGE_ROUTES]`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from litestar import Response, get
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

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


# The demo data is Berlin-centred. Used when the data generator's table is not importable (see `demo_presets`).
DEMO_CITY = "Berlin"
BERLIN_CENTER = (52.5200, 13.4050)
BERLIN_NEIGHBOURHOODS: list[tuple[str, float, float]] = [
    ("Mitte", 52.5200, 13.4050),
    ("Kreuzberg", 52.4986, 13.4030),
    ("Prenzlauer Berg", 52.5388, 13.4244),
    ("Friedrichshain", 52.5156, 13.4540),
    ("Neukölln", 52.4811, 13.4350),
    ("Charlottenburg", 52.5167, 13.3041),
    ("Schöneberg", 52.4833, 13.3500),
    ("Wedding", 52.5500, 13.3667),
    ("Moabit", 52.5300, 13.3420),
    ("Tempelhof", 52.4700, 13.3850),
    ("Lichtenberg", 52.5150, 13.4990),
    ("Steglitz", 52.4560, 13.3220),
    ("Pankow", 52.5690, 13.4020),
    ("Köpenick", 52.4450, 13.5750),
    ("Spandau (outskirts)", 52.5350, 13.2000),
]


def _datagen_neighbourhoods(city: str) -> list[Preset] | None:
    """The data generator's neighbourhoods of the demo city (`benchmarks.datagen.vocab.NEIGHBOURHOODS`),
    so the page's presets are where the demo stores are. Optional: absent or of another shape → None."""
    try:
        vocab = importlib.import_module("benchmarks.datagen.vocab")
        table = getattr(vocab, "NEIGHBOURHOODS", None)
        if not isinstance(table, Mapping) or city not in table:
            return None
        found = [Preset(name=str(name), lat=float(lat), lon=float(lon)) for name, lat, lon in table[city]]
    except Exception:
        return None
    return found or None


@functools.cache
def demo_presets() -> PresetsResponse:
    """The demo city's centre and its neighbourhoods (the generator's table when it is importable)."""
    hoods = _datagen_neighbourhoods(DEMO_CITY) or [
        Preset(name=n, lat=lat, lon=lon) for n, lat, lon in BERLIN_NEIGHBOURHOODS
    ]
    return PresetsResponse(city=DEMO_CITY, center=LatLon(lat=BERLIN_CENTER[0], lon=BERLIN_CENTER[1]), presets=hoods)


@get("/", include_in_schema=False, sync_to_thread=False)
def index_page() -> Response[bytes]:
    """The page itself (read per request: cheap, and edits show without a restart)."""
    html = (STATIC_DIR / "index.html").read_bytes()
    return Response(html, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@get(
    "/v1/presets",
    summary="Demo locations",
    description="The demo city's centre and neighbourhoods, for the page's location picker.",
    tags=["page"],
    sync_to_thread=False,
)
def presets() -> PresetsResponse:
    return demo_presets()


static_files = create_static_files_router(
    path="/static",
    directories=[STATIC_DIR],
    name="page-static",
    include_in_schema=False,
    cache_control=CacheControlHeader(no_cache=True),
)

PAGE_ROUTES: list[Any] = [index_page, presets, static_files]
