"""A cached ONNX file that cannot be loaded (truncated, overwritten) mends itself: one warning naming it and ONNX
Runtime's reason, the file made again as on a cold cache, the same vectors; made again and still not loadable, it is
one line (CachedFileError) saying to remove the cache directory, not a traceback, not "check PLINQY_MODEL". Real
files, real ONNX Runtime; the cache is made once (the project's, as the other encoder tests make it) and copied."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
import pytest

from embeddings import model_files
from embeddings.encoder import DEFAULT_CACHE_DIR, Encoder, EncoderConfig, ModelFilesError, load_encoder
from embeddings.errors import CachedFileError, EncoderError
from embeddings.model_files import QUERY_INT8_FILE
from tests.test_runtime_model_log import logged_load_failure

TEXTS = ["oat milk for coffee", "Claw hammer 16 oz", "8712345678906"]


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # as a full disk left it


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(7).bytes(1 << 16))


@pytest.fixture(scope="module")
def clean() -> dict[str, Encoder]:
    """The fp32 encoder and the int8 query form, of the project's cache (made where missing)."""
    return {
        "fp32": load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR)),
        "query": load_encoder(EncoderConfig(backend="onnx", query_int8=True, cache_dir=DEFAULT_CACHE_DIR)),
    }


def _copied_cache(clean: dict[str, Encoder], root: Path, *names: str) -> Path:
    """`root`, a cache dir holding a copy of these files of the clean cache; the copies' directory returned."""
    subdir = clean["fp32"].model_id.replace("@", "-")  # <model>-<fingerprint>, as OnnxEncoder names it
    target = root / subdir
    target.mkdir(parents=True)
    for name in names:
        shutil.copyfile(DEFAULT_CACHE_DIR / subdir / name, target / name)
    return target


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "plinqy.model" and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("corrupt", [_truncated, _garbage], ids=["truncated", "garbage"])
def test_a_corrupt_export_is_made_again_once_with_a_warning(
    clean: dict[str, Encoder], tmp_path: Path, caplog: pytest.LogCaptureFixture, corrupt: Callable[[Path], None]
) -> None:
    files = _copied_cache(clean, tmp_path, "model.onnx")
    corrupt(files / "model.onnx")
    with caplog.at_level(logging.INFO):
        mended = load_encoder(EncoderConfig(backend="onnx", cache_dir=tmp_path))
    np.testing.assert_allclose(mended.encode(TEXTS), clean["fp32"].encode(TEXTS), atol=1e-5)
    [warning] = _warnings(caplog)
    assert warning.startswith(f"the cached ONNX file {files / 'model.onnx'} cannot be loaded (INVALID_PROTOBUF : ")
    assert warning.endswith("Protobuf parsing failed.): making it again"), warning
    assert sorted(p.name for p in files.iterdir()) == ["model.onnx"]  # no .corrupt-<pid>, no temporary file left


def test_a_corrupt_query_form_is_made_again(
    clean: dict[str, Encoder], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = _copied_cache(clean, tmp_path, "model.onnx", QUERY_INT8_FILE)
    _truncated(files / QUERY_INT8_FILE)
    with caplog.at_level(logging.INFO):
        mended = load_encoder(EncoderConfig(backend="onnx", query_int8=True, cache_dir=tmp_path))
    assert mended.backend_name == "onnx-int8-query" and mended.checked_cosine is not None  # its load check passed
    np.testing.assert_allclose(mended.encode(TEXTS), clean["query"].encode(TEXTS), atol=1e-5)
    [warning] = _warnings(caplog)
    assert warning.startswith(f"the cached ONNX file {files / QUERY_INT8_FILE} cannot be loaded ("), warning


def test_the_int8_check_mends_the_fp32_export_it_loads(
    clean: dict[str, Encoder], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The int8 forms' load check embeds with a session of model.onnx first: a corrupt one is mended there too."""
    files = _copied_cache(clean, tmp_path, "model.onnx", QUERY_INT8_FILE)
    _garbage(files / "model.onnx")
    with caplog.at_level(logging.INFO):
        mended = load_encoder(EncoderConfig(backend="onnx", query_int8=True, cache_dir=tmp_path))
    np.testing.assert_allclose(mended.encode(TEXTS), clean["query"].encode(TEXTS), atol=1e-5)
    [warning] = _warnings(caplog)
    assert warning.startswith(f"the cached ONNX file {files / 'model.onnx'} cannot be loaded ("), warning


def _still_garbage(model_dir: Path, target: Path) -> None:
    """An export that writes a file ONNX Runtime cannot load, as a disk that keeps corrupting it would."""
    target.write_bytes(b"not a model")


def test_a_file_made_again_that_still_fails_is_one_line_saying_what_to_do(
    clean: dict[str, Encoder], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    files = _copied_cache(clean, tmp_path / "models", "model.onnx")
    _truncated(files / "model.onnx")
    monkeypatch.setattr(model_files, "_export_onnx", _still_garbage)
    with pytest.raises(CachedFileError) as failed:
        load_encoder(EncoderConfig(backend="onnx", cache_dir=tmp_path / "models"))
    message = str(failed.value)
    assert message == (
        f"the cached ONNX file {files / 'model.onnx'} could not be loaded and was made again and still cannot be "
        f"loaded (InvalidProtobuf: INVALID_PROTOBUF : Load model from {files / 'model.onnx'} failed:Protobuf parsing "
        f"failed.): remove the directory {files}, check its disk's free space and that PLINQY_CACHE_DIR is writable, "
        "then start again (the files are made again)"
    )
    assert isinstance(failed.value, EncoderError) and not isinstance(failed.value, ModelFilesError)
    # the API's log line: the error alone, not blamed on the model ("check PLINQY_MODEL")
    line = logged_load_failure({"PLINQY_CACHE_DIR": str(tmp_path), "PLINQY_ENCODER_BACKEND": "onnx"}, caplog)
    assert line == f"the model failed to load (CachedFileError: {message}) (readyz says the same)", line


def test_a_file_that_cannot_be_made_again_is_one_line(
    clean: dict[str, Encoder], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _copied_cache(clean, tmp_path, "model.onnx")
    _garbage(files / "model.onnx")

    def disk_full(model_dir: Path, target: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_files, "_export_onnx", disk_full)
    said = r"^the cached ONNX file .*/model\.onnx could not be loaded and cannot be made again \(OSError: \[Errno 28\] "
    with pytest.raises(CachedFileError, match=said + r"No space left on device\): remove the directory "):
        load_encoder(EncoderConfig(backend="onnx", cache_dir=tmp_path))


def test_a_file_whose_writing_fails_leaves_no_part_of_it(tmp_path: Path) -> None:
    """A re-make that fails half-way (a full disk) leaves no temporary file behind to fill the disk further."""
    target = tmp_path / "model.onnx"
    with pytest.raises(OSError, match="No space"), model_files._written_then_renamed(target) as tmp:
        tmp.write_bytes(b"half a model")
        raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    with model_files._written_then_renamed(target) as tmp:
        tmp.write_bytes(b"a whole model")
    assert list(tmp_path.iterdir()) == [target] and target.read_bytes() == b"a whole model"


def test_moving_aside_never_takes_a_file_another_process_mended(tmp_path: Path) -> None:
    """Several processes may find the same bad file: the one that failed here goes, another's new one stays."""
    path = tmp_path / "model.onnx"
    path.write_bytes(b"bad")
    seen = model_files._identity(path)
    model_files._move_aside(path, seen)  # the file that failed: gone
    assert not path.exists() and list(tmp_path.iterdir()) == []
    model_files._move_aside(path, seen)  # gone already (another process moved it): nothing to do
    path.write_bytes(b"bad")
    failed_here = model_files._identity(path)
    mended = tmp_path / ".model.onnx.123.tmp"
    mended.write_bytes(b"a good one")
    os.replace(mended, path)  # another process renamed its new file into place since this one failed to load it
    model_files._move_aside(path, failed_here)
    assert path.read_bytes() == b"a good one" and list(tmp_path.iterdir()) == [path]


def test_the_worker_mends_a_corrupt_export_and_embeds(clean: dict[str, Encoder], tmp_path: Path, db_url: str) -> None:
    """`worker --drain --only embed` with a truncated cached export: one warning, the product embedded, exit 0, no
    traceback."""
    files = _copied_cache(clean, tmp_path / "models", "model.onnx")
    _truncated(files / "model.onnx")
    env = {**os.environ, "DATABASE_URL": db_url, "PLINQY_CACHE_DIR": str(tmp_path), "PLINQY_ENCODER_BACKEND": "onnx"}
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO product_master (name) VALUES ('Garden hose 10 m')")  # queues its embedding
        run = subprocess.run([sys.executable, "-m", "search_service", "worker", "--drain", "--only", "embed"], env=env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
        [warning] = [line for line in run.stderr.splitlines() if " WARNING " in line]
        assert f"plinqy.model: the cached ONNX file {files / 'model.onnx'} cannot be loaded (" in warning, warning
        embedded = conn.execute("SELECT ai_model FROM product_master WHERE ai_vector IS NOT NULL").fetchall()
    assert embedded == [(clean["fp32"].model_id,)], run.stderr[-3000:]
    assert load_encoder(EncoderConfig(backend="onnx", cache_dir=tmp_path / "models")).dim == 384  # mended for good


def test_reembed_says_the_mend_in_the_log_format(clean: dict[str, Encoder], tmp_path: Path, db_url: str) -> None:
    """`reembed` configured no logging: the mend's warning came out as a bare line, without its time, level and
    logger, unlike every other command's."""
    files = _copied_cache(clean, tmp_path / "models", "model.onnx")
    _garbage(files / "model.onnx")
    env = {**os.environ, "DATABASE_URL": db_url, "PLINQY_CACHE_DIR": str(tmp_path), "PLINQY_ENCODER_BACKEND": "onnx"}
    run = subprocess.run([sys.executable, "-m", "search_service", "reembed", "--missing"], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    [warning] = [line for line in run.stderr.splitlines() if "cannot be loaded" in line]
    assert re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING \[\d+\] plinqy\.model: the cached ONNX file ", warning
    )
