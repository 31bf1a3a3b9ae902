"""A burst of distinct semantic queries while the query encoder is busy: each search took its pooled connection
before its embedding resolved, so with the model busy for seconds the pool's connections sat idle, held, and the
other searches got 503 "all database connections are busy" (pool_exhausted) with the database idle. A search whose
embedding waits behind another batch now waits for it before taking a connection; a lone one still overlaps."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from embeddings.encoder import Encoder
from tests.test_api import AT_CENTER, app_settings, load_test_encoder, running_client, seed_catalogue

MODEL_CALL_S = 0.6  # each model call: far longer than the pool's acquire timeout below


class SlowEncoder:
    """The real encoder, with every model call as slow as a busy CPU makes it."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    def __getattr__(self, name: str) -> Any:
        return getattr(self.encoder, name)

    def encode(self, texts: list[str]) -> np.ndarray:
        time.sleep(MODEL_CALL_S)
        return self.encoder.encode(texts)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_test_encoder()


def test_searches_waiting_for_the_encoder_hold_no_connection(db_url: str, encoder: Encoder) -> None:
    seed_catalogue(db_url, encoder)
    settings = app_settings(db_url, pool_min_size=1, pool_max_size=2, pool_acquire_timeout_s=0.3)
    with running_client(settings, SlowEncoder(encoder)) as client:  # type: ignore[arg-type]
        queries = [f"something to fix a dripping tap {n}" for n in range(8)]  # distinct: no cache hit

        def search(q: str) -> tuple[int, str]:
            answer = client.get("/v1/search", params={"q": q, "mode": "semantic", **AT_CENTER})
            return answer.status_code, answer.text

        with ThreadPoolExecutor(len(queries)) as pool:
            answers = list(pool.map(search, queries))
        assert [status for status, _ in answers] == [200] * len(queries), answers
        assert 'reason="pool_exhausted"' not in client.get("/metrics").text
