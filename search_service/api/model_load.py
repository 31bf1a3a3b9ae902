"""The API's query model, loaded and warmed off the event loop as the runtime starts (`Runtime._load_model`). A
model that cannot be loaded is one log line and /readyz's reason (`model: failed`), never a traceback. The error
names the setting to change (PLINQY_QUERY_ENCODER where the int8 query form refused this CPU, PLINQY_ENCODER_BACKEND
where the onnx-int8 backend did or the model needs torch, ...); the log adds "check PLINQY_MODEL" only to a failure
of the model's files that does not name it already (`_advice`)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from embeddings.encoder import Encoder, EncoderError, ModelFilesError, load_encoder
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
        log.error("%s%s (readyz says the same)", rt.model_error, _advice(exc))
        log.debug("model load failed", exc_info=True)


def _advice(exc: Exception) -> str:
    """What the log line adds to the error: "check PLINQY_MODEL" where the model's directory or files failed (or
    something unforeseen, most likely a file of the model's) and the error does not say it already; nothing where
    the error is one of the encoder's own, which says what to do (another setting: the backend, the query form)."""
    about_the_files = isinstance(exc, ModelFilesError) or not isinstance(exc, EncoderError)
    return ": check PLINQY_MODEL" if about_the_files and "PLINQY_MODEL" not in str(exc) else ""


def _checked(encoder: Encoder) -> str:
    if encoder.checked_cosine is None:
        return ""
    speed = encoder.checked_speed
    timed = f", {speed.form_ms:.2f} ms a query against fp32's {speed.fp32_ms:.2f}" if speed else ""
    return f"; its load check: cosine to fp32 ≥ {encoder.checked_cosine:.4f}{timed}"
