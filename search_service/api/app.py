"""The litestar application: `create_app(settings)`, and `create_app_from_env` for `uvicorn --factory`.

Only assembly here: the runtime (runtime.py) and its lifespan, the routes (routes/, page.py), the error
handlers (errors.py), the metrics middleware, HEAD wherever GET (head_requests.py), the request ids and access
line (access_log.py) and the OpenAPI description.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, OpenAPI, Server

from embeddings.encoder import Encoder
from search_service.api import events_routes, ingest_routes, listing_reads, page
from search_service.api.access_log import log_access
from search_service.api.allow_header import AllowHeader, answer_server_wide_options
from search_service.api.auth import BEARER_SCHEME
from search_service.api.bodies import PlinqyRequest
from search_service.api.compression import compression_config
from search_service.api.cors import Cors
from search_service.api.errors import EXCEPTION_HANDLERS
from search_service.api.events_schemas import WebhookCreate, WebhookUpdate
from search_service.api.head_requests import answer_head_as_get
from search_service.api.ingest_schemas import BODY_STRUCTS
from search_service.api.log_redaction import redact_access_log
from search_service.api.log_repeats import quiet_repeated_warnings
from search_service.api.not_modified import not_modified_middleware
from search_service.api.openapi_fixes import (
    optional_bodies,
    overlapping_unions_as_any_of,
    state_body_rules,
)
from search_service.api.openapi_headers import document_response_headers
from search_service.api.openapi_scopes import GuardOf, key_guards, state_key_scopes
from search_service.api.path_params import uuid_path_ids
from search_service.api.query_string import check_query_string, query_rules
from search_service.api.request_rules import state_request_rules
from search_service.api.routes import ROUTES
from search_service.api.runtime import Runtime
from search_service.api.shared_state import SharedState
from search_service.api.webhook_docs import document_webhooks
from search_service.logformat import LOG_FORMAT, configure_logging
from search_service.settings import Settings

OPENAPI = OpenAPIConfig(
    title="Plinqy Search",
    version="1.0.0",
    description="Semantic + geo 'search near me' over the products of local stores. Bad input answers 400 with "
    '`{"error": {"parameter", "message"}}`; every query parameter is given at most once. Every answer has an '
    "`X-Request-Id`: the request's own when it sent one of up to 128 letters, digits and `._:+/=@-`, else a new "
    "one; the server's access log names it.",
    servers=[Server(url="/")],
    use_handler_docstrings=False,
    components=Components(security_schemes={"apiKey": BEARER_SCHEME}),
)


def create_app(
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    shared: SharedState | None = None,
    vectors_first: bool = False,
) -> Litestar:
    """The API. `encoder`: an already loaded one (tests share one); otherwise loaded from settings.encoder.
    `shared`: candidate sets and facet labels a supervisor loaded before forking this worker (shared_state.py).
    `vectors_first`: it takes no connection until its vector copy is ready (a worker started in place of one that
    died: its siblings answer meanwhile; `Runtime.first_answers`)."""
    runtime = Runtime.build(settings, encoder, shared)
    allow_header = AllowHeader()
    redact_access_log()
    quiet_repeated_warnings()

    def provide_runtime() -> Runtime:
        return runtime

    app = Litestar(
        route_handlers=[
            *ROUTES,
            *page.PAGE_ROUTES,
            *ingest_routes.ROUTES,
            *listing_reads.LISTING_READ_ROUTES,
            *events_routes.EVENTS_ROUTES,
        ],
        dependencies={"rt": Provide(provide_runtime, use_cache=True, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=PlinqyRequest,
        before_request=check_query_string,
        guards=[uuid_path_ids],  # before the routes' key guards: a malformed id is a 400 with or without a key
        middleware=[runtime.metrics.middleware, allow_header.middleware, not_modified_middleware],
        lifespan=[functools.partial(lifespan, runtime, vectors_first)],
        state=State({"runtime": runtime}),
        openapi_config=OPENAPI,
        compression_config=compression_config(settings.gzip_level),
        # the worker's and the supervisors' format: one line each, the level second ('WARNING - <time> - …' before)
        logging_config=LoggingConfig(formatters={"standard": {"format": LOG_FORMAT}}),
    )
    mend_openapi(app.openapi_schema, key_guards(app))
    app.state.query_rules = query_rules(app.openapi_schema)  # what check_query_string holds each route to
    allow_header.learn(app)
    answer_server_wide_options(app)  # behind CORS and the access line, as a routed answer
    Cors(settings.cors_origins, settings.cors_headers).wrap(app)  # shops' pages call it from the browser
    answer_head_as_get(app)
    log_access(app, runtime.metrics)  # outermost: the request's whole time, its method as asked
    return app


@contextlib.asynccontextmanager
async def lifespan(runtime: Runtime, vectors_first: bool, app: Litestar) -> AsyncIterator[None]:
    """The runtime started, and the first answers waited for, before the server listens."""
    await runtime.start()
    await runtime.first_answers(vectors_first=vectors_first)
    try:
        yield
    finally:
        await runtime.stop()


def mend_openapi(schema: OpenAPI, guards: GuardOf) -> None:
    """What litestar's document leaves out or writes otherwise: the bodies' rules, optional bodies, unions,
    the outbound webhooks, the response headers and the keys' scopes (`guards`: each keyed operation's)."""
    state_body_rules(schema, (*BODY_STRUCTS, WebhookCreate, WebhookUpdate))
    optional_bodies(schema, [("/v1/stores/{store_id}/listings/{sku}", "delete")])
    state_request_rules(schema)
    overlapping_unions_as_any_of(schema)
    document_webhooks(schema)
    document_response_headers(schema)
    state_key_scopes(schema, guards)


def create_app_from_env() -> Litestar:
    """Factory for `uvicorn --factory` (serve --workers N): settings come from each worker's environment."""
    configure_logging()
    return create_app(Settings.from_env())
