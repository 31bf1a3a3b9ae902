"""Why an encoder cannot be loaded, each a one-line, user-facing message that every command prints as one line (no
traceback) and the API logs once. Here, apart from encoder.py, so that model_files.py can raise them too."""

from __future__ import annotations


class EncoderError(RuntimeError):
    """A one-line, user-facing reason the model cannot be loaded."""


class ModelFilesError(EncoderError):
    """The model's directory or files (PLINQY_MODEL, the bundled package) are missing or cannot be read."""


class CachedFileError(EncoderError):
    """A cached ONNX file (model_files.py) cannot be loaded, re-made once or not: the cache, not the model, is at
    fault, and the message says to remove its directory and check the disk and PLINQY_CACHE_DIR."""


class QueryFormRefused(EncoderError):
    """The int8 query form strays from fp32 on this CPU (query_check.py): the message says to embed in fp32."""


class Int8BackendRefused(EncoderError):
    """The onnx-int8 backend strays from fp32 on this CPU (int8_check.py): the message says to use onnx."""
