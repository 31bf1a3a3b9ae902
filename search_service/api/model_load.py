"""The API's query model, loaded and warmed off the event loop as the runtime starts (`Runtime._load_model`). A
model that cannot be loaded is one log line and /readyz's reason (`model: failed`), naming the setting to change,
never a traceback: PLINQY_MODEL, or PLINQY_QUERY_ENCODER where the int8 query form refused this CPU
(embeddings/query_check.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from embeddings.encoder import Encoder, QueryFormRefused, load_encoder
from search_service.engine.batcher import MicroBatcher

if TYPE_CHECKING:
    from search_service.api.runtime import Runtime

log = logging.getLogger("search_service.api")


async def load_and_warm(rt: Runtime) -> None:
    """`rt.encoder` (loaded from the settings unless given), warmed, then `rt.model_ready`; or `rt.model_error`."""
    try:
        encoder = rt.encoder
        if encoder is None:
            encoder = await anyio.to_thread.run_sync(load_encoder, rt.settings.query_encoder_config())
            rt.encoder = encoder
        await anyio.to_thread.run_sync(encoder.encode, ["warm up the model"])
        await anyio.to_thread.run_sync(encoder.has_known_token, ["and its vocabulary"])  # searches ask it
        rt.embed_batcher = MicroBatcher(lambda texts: list(encoder.encode(texts)), max_batch=32)
        rt.model_ready = True
        log.info("model %s (%s) loaded and warmed%s", encoder.model_id, encoder.backend_name, _checked(encoder))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        rt.model_error = f"the model failed to load ({type(exc).__name__}: {exc})"
        # one line: a setting (the int8 query form's refusal names its own, and what to do)
        hint = "" if isinstance(exc, QueryFormRefused) else ": check PLINQY_MODEL"
        log.error("%s%s (readyz says the same)", rt.model_error, hint)
        log.debug("model load failed", exc_info=True)


def _checked(encoder: Encoder) -> str:
    if encoder.checked_cosine is None:
        return ""
    return f"; its load check: cosine to fp32 ≥ {encoder.checked_cosine:.4f}"
