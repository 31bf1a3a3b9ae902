"""A model that fails to load is one log line naming it and the setting (it was ~30 lines of traceback in `serve`'s
log, where /readyz already said it in one). The line says "check PLINQY_MODEL" only where the model's files failed
and the error does not name it already: an error naming another setting stands alone."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import pytest

from embeddings.encoder import EncoderConfig, resolve_model_dir
from search_service.api.runtime import Runtime
from search_service.settings import Settings


def logged_load_failure(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> str:
    """The one error line the runtime logs as the model from `env` fails to load."""
    rt = Runtime.build(Settings.from_env({**os.environ, **env}))
    with caplog.at_level(logging.INFO, logger="search_service.api"):
        asyncio.run(rt._load_model())
    assert rt.model_error is not None and not rt.model_ready
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None, [r.getMessage() for r in errors]
    assert errors[0].getMessage().startswith(f"{rt.model_error}"), errors[0].getMessage()
    return errors[0].getMessage()


def test_a_model_that_fails_to_load_is_one_line_naming_the_setting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    line = logged_load_failure({"PLINQY_MODEL": str(tmp_path)}, caplog)  # a directory with no model in it
    assert line.startswith("the model failed to load (ModelFilesError: PLINQY_MODEL=") and (
        line.endswith(": point it at one, or unset it to use the bundled model) (readyz says the same)")
    ), line  # the error names the setting: no "check PLINQY_MODEL" after it


def _copy_of_the_model(tmp_path: Path, *, leave_out: tuple[str, ...] = ()) -> Path:
    """The bundled model's files linked into a directory of its own, its modules.json a copy (to be edited)."""
    model = tmp_path / "model"
    model.mkdir()
    for item in resolve_model_dir(EncoderConfig()).iterdir():
        if item.name == "modules.json":
            (model / item.name).write_text(item.read_text())
        elif not item.name.endswith(leave_out):
            (model / item.name).symlink_to(item)
    return model


def test_a_failure_naming_another_setting_is_not_blamed_on_the_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model with a Dense layer, which the onnx backend cannot reproduce: the error says to use torch, and the log
    line said "check PLINQY_MODEL" after it."""
    model = _copy_of_the_model(tmp_path)
    modules = json.loads((model / "modules.json").read_text())
    modules.append({"idx": len(modules), "name": "9", "path": "9_Dense", "type": "sentence_transformers.models.Dense"})
    (model / "modules.json").write_text(json.dumps(modules))
    line = logged_load_failure({"PLINQY_MODEL": str(model), "PLINQY_ENCODER_BACKEND": "onnx"}, caplog)
    assert line == (
        f"the model failed to load (EncoderError: {model}: the onnx backend supports Transformer + mean Pooling + "
        "Normalize only (found sentence_transformers.models.Dense): set PLINQY_ENCODER_BACKEND=torch) "
        "(readyz says the same)"
    ), line


def test_model_files_that_cannot_be_read_say_check_plinqy_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model directory without its weights: the error names the directory, the line the setting to check."""
    model = _copy_of_the_model(tmp_path, leave_out=(".safetensors", ".bin"))
    env = {"PLINQY_MODEL": str(model), "PLINQY_ENCODER_BACKEND": "onnx", "PLINQY_CACHE_DIR": str(tmp_path / "cache")}
    line = logged_load_failure(env, caplog)
    assert line.startswith(f"the model failed to load (ModelFilesError: cannot load the model from {model}: "), line
    assert line.endswith("): check PLINQY_MODEL (readyz says the same)"), line
