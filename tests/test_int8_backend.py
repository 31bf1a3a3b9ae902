"""PLINQY_ENCODER_BACKEND=onnx-int8: the opt-in backend whose vectors the worker and `reembed` store checks itself
against fp32 as it loads (embeddings/int8_check.py) and refuses a CPU whose int8 kernels make it stray, in one line
through the worker's and reembed's commands (real model, real subprocesses). Where this CPU has no VNNI and the
backend refuses it, the test of the check passing skips, saying why (here it must run)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from embeddings.encoder import (
    DEFAULT_CACHE_DIR,
    Encoder,
    EncoderConfig,
    EncoderError,
    Int8BackendRefused,
    load_encoder,
)
from embeddings.int8_check import CHECK_PRODUCTS, INT8_BACKEND_MIN_COSINE
from search_service.settings import Settings
from tests.test_runtime_model_log import logged_load_failure

UNREACHABLE = 1.01  # a cosine is at most 1: the load check refuses whatever the CPU
CONFIG = EncoderConfig(backend="onnx-int8", cache_dir=DEFAULT_CACHE_DIR)


def cpu_has_vnni() -> bool:
    """Whether this is an x86 CPU with VNNI (AVX-512 or AVX), where ONNX Runtime's int8 kernels do not saturate."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text().split() if cpuinfo.exists() else []
    return "avx512_vnni" in flags or "avx_vnni" in flags


def load_int8_backend(config: EncoderConfig) -> Encoder:
    """The onnx-int8 backend; on a CPU without VNNI that it refuses, the test skips, saying why."""
    try:
        return load_encoder(config)
    except Int8BackendRefused as exc:
        if cpu_has_vnni():  # where it was measured (0.9155 on its check texts): a refusal there is a fault
            raise
        pytest.skip(f"the onnx-int8 backend refuses this CPU (no VNNI), as it should where it strays: {exc}")


def test_the_backend_checks_itself_against_fp32_as_it_loads() -> None:
    encoder = load_int8_backend(CONFIG)
    cosine = encoder.checked_cosine
    assert cosine is not None and INT8_BACKEND_MIN_COSINE <= cosine < 0.99, cosine  # checked, passed, int8 indeed
    assert encoder.model_id.endswith("+int8") and len(CHECK_PRODUCTS) >= 5


def _refusal_is_one_line_saying_what_to_do(message: str) -> None:
    assert message.startswith("PLINQY_ENCODER_BACKEND=onnx-int8: the int8 encoder's vectors strayed from fp32 "), (
        message
    )
    assert re.search(r"\(cosine 0\.\d{4} for the product text of '[^']+', below the bound 1\.01\); ", message), message
    assert "this CPU's int8 kernels are the likely cause" in message and "without VNNI" in message
    assert message.endswith("set PLINQY_ENCODER_BACKEND=onnx to embed in fp32 (then `reembed --stale` re-embeds what "
                            "onnx-int8 stored)") and "\n" not in message  # fmt: skip


def test_a_backend_below_the_bound_is_refused_saying_what_to_do() -> None:
    with pytest.raises(Int8BackendRefused) as refused:
        load_encoder(dataclasses.replace(CONFIG, int8_min_cosine=UNREACHABLE))
    _refusal_is_one_line_saying_what_to_do(str(refused.value))
    assert isinstance(refused.value, EncoderError)  # what every command turns into one line


def test_the_bound_can_be_raised_for_tests_never_lowered() -> None:
    assert Settings.from_env({}).encoder.int8_min_cosine == INT8_BACKEND_MIN_COSINE
    raised = Settings.from_env({"PLINQY_ENCODER_INT8_MIN_COSINE": str(UNREACHABLE)})
    assert raised.encoder.int8_min_cosine == UNREACHABLE
    assert raised.query_encoder_config().int8_min_cosine == UNREACHABLE  # the API's queries: the same backend
    with pytest.raises(Exception, match=r"PLINQY_ENCODER_INT8_MIN_COSINE=0.5 is out of range 0.88\.\.2"):
        Settings.from_env({"PLINQY_ENCODER_INT8_MIN_COSINE": "0.5"})


def test_the_worker_and_reembed_refuse_in_one_line(db_url: str) -> None:
    """The commands that store this backend's vectors: one line naming the setting and what to do, exit 1, no
    traceback, before any job starts."""
    env = {**os.environ, "DATABASE_URL": db_url, "PLINQY_ENCODER_BACKEND": "onnx-int8",
           "PLINQY_ENCODER_INT8_MIN_COSINE": str(UNREACHABLE)}  # fmt: skip
    for command in (("worker", "--drain", "--only", "embed"), ("reembed", "--missing")):
        run = subprocess.run([sys.executable, "-m", "search_service", *command], env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        assert run.returncode == 1 and "Traceback" not in run.stderr, (command, run.stderr[-3000:])
        [said] = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
        _refusal_is_one_line_saying_what_to_do(said.removeprefix("error: "))


def test_the_api_says_the_refusal_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """The API embeds queries with the same backend: its log line is the refusal, not blamed on PLINQY_MODEL."""
    env = {"PLINQY_ENCODER_BACKEND": "onnx-int8", "PLINQY_ENCODER_INT8_MIN_COSINE": str(UNREACHABLE)}
    line = logged_load_failure(env, caplog)
    assert line.startswith("the model failed to load (Int8BackendRefused: PLINQY_ENCODER_BACKEND=onnx-int8: "), line
    assert line.endswith("re-embeds what onnx-int8 stored)) (readyz says the same)"), line
