"""A model that fails to load is one log line naming it and the setting (it was ~30 lines of traceback in `serve`'s
log, where /readyz already said it in one)."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from search_service.api.runtime import Runtime
from search_service.settings import Settings


def test_a_model_that_fails_to_load_is_one_line_naming_the_setting(
    tmp_path: os.PathLike[str], caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env({**os.environ, "PLINQY_MODEL": str(tmp_path)})  # a directory with no model in it
    rt = Runtime.build(settings)
    with caplog.at_level(logging.INFO, logger="search_service.api"):
        asyncio.run(rt._load_model())
    assert rt.model_error is not None and not rt.model_ready
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None, [r.getMessage() for r in errors]
    assert errors[0].getMessage().startswith("the model failed to load (") and "PLINQY_MODEL" in errors[0].getMessage()
