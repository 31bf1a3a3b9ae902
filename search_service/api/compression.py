"""gzip for answers of 1 KB and more, to a client that accepts it (PLINQY_GZIP_LEVEL; 0: off, for a proxy that
compresses): a 100-hit search went out as 135 KB of JSON where 14-21 KB do, and so did app.js, /v1/categories and
the OpenAPI document. litestar's middleware with three mends: `gzip;q=0` is a refusal (it compressed), an answer
that could have been compressed says `Vary: Accept-Encoding` too (a shared cache keeps the variants apart), and a
compressed answer's ETag is weak (its bytes are not the identity answer's)."""

from __future__ import annotations

from litestar.config.compression import CompressionConfig
from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.enums import CompressionEncoding
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import Message, Receive, Scope, Send

MINIMUM_SIZE = 1024  # below this the bytes saved do not pay for the CPU and the gzip header


def compression_config(gzip_level: int) -> CompressionConfig | None:
    if gzip_level == 0:
        return None
    return CompressionConfig(
        backend="gzip", minimum_size=MINIMUM_SIZE, gzip_compress_level=gzip_level, middleware_class=GzipMiddleware
    )


class GzipMiddleware(CompressionMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not accepts_gzip(Headers.from_scope(scope).get("accept-encoding", "")):
            await self.app(scope, receive, self._vary_when_compressible(send))
            return
        compressing = self.create_compression_send_wrapper(
            send=_weak_etag_when_encoded(send), compression_encoding=CompressionEncoding.GZIP, scope=scope
        )
        await self.app(scope, receive, compressing)

    def _vary_when_compressible(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                length = Headers(message.get("headers", [])).get("content-length")
                if length is None or int(length) >= self.config.minimum_size:
                    MutableScopeHeaders(message).extend_header_value("vary", "Accept-Encoding")
            await send(message)

        return wrapped


def _weak_etag_when_encoded(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableScopeHeaders(message)
            etag = headers.get("etag")
            if headers.get("content-encoding") and etag and not etag.startswith("W/"):
                headers["etag"] = f"W/{etag}"
        await send(message)

    return wrapped


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether `Accept-Encoding` takes gzip: named, or `*`, with a quality above 0."""
    qualities: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.partition(";")
        qualities[coding.strip()] = _quality(params)
    return qualities.get("gzip", qualities.get("x-gzip", qualities.get("*", 0.0))) > 0


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0
