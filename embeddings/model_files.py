"""The files an ONNX encoder runs, made once from the model and cached on disk (`onnx_model_file`): the fp32
export, the opt-in int8 form of the `onnx-int8` backend, and the int8 form that embeds the API's queries only
(`PLINQY_QUERY_ENCODER=int8`, docs/performance.md). Each is written to a temporary name and renamed, so concurrent
processes never read a half-written file. A cached file that cannot be loaded all the same (truncated by an older
version's full disk, copied, edited) is made again, once (`onnx_session`)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from embeddings.errors import CachedFileError

log = logging.getLogger("plinqy.model")

# The query form's file, named by its recipe: a changed recipe gets a new name rather than an old file.
QUERY_INT8_FILE = "model-query-int8-nb8b32.onnx"


def loader_bars_on_a_terminal_only() -> None:
    """transformers draws a "Loading weights" bar of its own while it loads the weights (the torch backend, the ONNX
    export): stderr sent to a log or a pipe got each redraw, `\\r`-separated. Call after importing transformers."""
    if not sys.stderr.isatty():
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


@contextlib.contextmanager
def _written_then_renamed(target: Path) -> Iterator[Path]:
    """A temporary name of this process's own for `target`, renamed to it once written (atomic: concurrent processes
    never see a half-written file); removed where writing it fails (a full disk keeps none of it)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def _export_onnx(model_dir: Path, target: Path) -> None:
    """torch.onnx.export of the bare transformer (optimum would downgrade transformers and break the stack)."""
    import torch
    from transformers import AutoModel

    loader_bars_on_a_terminal_only()
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager", local_files_only=True).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    dummy = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad(), warnings.catch_warnings(), _written_then_renamed(target) as tmp:
        warnings.simplefilter("ignore")  # tracer chatter about shapes we fix as dynamic axes anyway
        torch.onnx.export(
            LastHiddenState(model),
            (dummy, dummy, torch.zeros_like(dummy)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,
        )


def _quantise(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _written_then_renamed(target) as tmp:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)


def _quantise_for_queries(source: Path, target: Path) -> None:
    """Weight-only 8-bit blocks (MatMulNBits: 32 weights a scale and zero point along the input) with int8 compute
    (`accuracy_level` 4: each token's activations rounded per block of 32 as the product runs). Cosine to fp32 ≥
    0.999 on the benchmark's queries at ~0.4x fp32's CPU a query (docs/performance.md); the dynamic int8 form it
    replaced (one scale a channel, one a run's activations) fell to 0.985 and made a query's vector depend on the
    queries batched with it."""
    import onnx

    quantizer = _nbits_quantizer()(onnx.load(str(source)), bits=8, block_size=32, is_symmetric=False, accuracy_level=4)
    quantizer.process()
    with _written_then_renamed(target) as tmp:
        quantizer.model.save_model_to_file(str(tmp))


def _nbits_quantizer() -> Any:
    """ONNX Runtime's MatMulNBits quantizer, imported without its module's `logging.basicConfig(level=INFO)` taking
    over this process's root logger (a worker's log would change format), and without its line per MatMul."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger(MatMulNBitsQuantizer.__module__).setLevel(logging.WARNING)
    return MatMulNBitsQuantizer


def onnx_model_file(cache_dir: Path, model_dir: Path, *, int8: bool, query_int8: bool) -> Path:
    """The ONNX file of this form of the model, made (exported, quantised) where `cache_dir` lacks it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    fp32 = cache_dir / "model.onnx"
    if not fp32.exists():
        _export_onnx(model_dir, fp32)
    if not (int8 or query_int8):
        return fp32
    path = cache_dir / ("model-int8.onnx" if int8 else QUERY_INT8_FILE)
    if not path.exists():
        (_quantise if int8 else _quantise_for_queries)(fp32, path)
    return path


def onnx_session(cache_dir: Path, model_dir: Path, options: Any, *, int8: bool, query_int8: bool) -> Any:
    """An ONNX Runtime session of this form's cached file (`onnx_model_file`). A file ONNX Runtime cannot make a
    session of (truncated, overwritten, ...) is mended: one warning naming it and why, the file moved out of the way
    (`_move_aside`), made again as on a cold cache, loaded again. Once: what fails then is a CachedFileError."""
    import onnxruntime as ort

    def made() -> Path:
        return onnx_model_file(cache_dir, model_dir, int8=int8, query_int8=query_int8)

    def session(path: Path) -> Any:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    path = made()
    seen = _identity(path)
    try:
        return session(path)
    except _unloadable() as exc:
        log.warning("the cached ONNX file %s cannot be loaded (%s): making it again", path, _reason(exc))
    _move_aside(path, seen)
    try:
        path = made()
    except Exception as exc:  # the export's and the quantisers' errors are many (torch, onnx; OSError: disk full)
        raise CachedFileError(_unmendable(path, "cannot be made again", exc, cache_dir)) from None
    try:
        return session(path)
    except _unloadable() as exc:
        raise CachedFileError(_unmendable(path, "was made again and still cannot be loaded", exc, cache_dir)) from None


def _unloadable() -> tuple[type[Exception], ...]:
    """ONNX Runtime's errors for a file it cannot make a session of: not a protobuf (InvalidProtobuf), no graph or
    one that does not check (InvalidArgument, InvalidGraph, Fail), an operator it does not know (NotImplemented),
    no file (NoSuchFile: another process moved it aside)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoModel", "NoSuchFile", "NotImplemented")
    return tuple(getattr(ort_state, name) for name in names if hasattr(ort_state, name))


def _identity(path: Path) -> tuple[int, ...] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _move_aside(path: Path, seen: tuple[int, ...] | None) -> None:
    """Take the file that failed to load here out of `path` (`seen`: its device, inode, size and mtime before the
    load). Safe where several processes mend the same file at once, each writing its own temporary file and renaming
    it into place: whatever is at `path` now is renamed to this process's own name (atomic: the others find the whole
    file there or none, and one that finds none makes it, as on a cold cache). If it is not the file that failed here
    (another process mended it already), it is linked back, and os.link never replaces a file renamed into place
    since; otherwise it is deleted. So a good file is never deleted (at worst, where hard links are refused, it is
    made again) and none is read half-written."""
    aside = path.with_name(f".{path.name}.corrupt-{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:  # another process moved it aside first
        return
    try:
        if _identity(aside) != seen:
            with contextlib.suppress(OSError):  # FileExistsError: another process made it meanwhile
                os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)


def _reason(exc: BaseException) -> str:
    """An error's first line, without ONNX Runtime's "[ONNXRuntimeError] : 7 : " prefix."""
    lines = str(exc).strip().splitlines()
    return re.sub(r"^\[ONNXRuntimeError\] : \d+ : ", "", lines[0]) if lines else type(exc).__name__


def _unmendable(path: Path, what: str, exc: BaseException, cache_dir: Path) -> str:
    return (
        f"the cached ONNX file {path} could not be loaded and {what} ({type(exc).__name__}: {_reason(exc)}): "
        f"remove the directory {cache_dir}, check its disk's free space and that PLINQY_CACHE_DIR is writable, "
        "then start again (the files are made again)"
    )
