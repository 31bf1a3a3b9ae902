"""The API's route handlers, by area; `ROUTES` is what the app serves (the demo page adds its own)."""

from search_service.api.routes.catalog import CATALOG_ROUTES
from search_service.api.routes.health import HEALTH_ROUTES
from search_service.api.routes.search import SEARCH_ROUTES
from search_service.api.routes.ux import UX_ROUTES

ROUTES = [*SEARCH_ROUTES, *UX_ROUTES, *CATALOG_ROUTES, *HEALTH_ROUTES]

__all__ = ["ROUTES"]
