"""The int8 query form's check of itself as it loads (`PLINQY_QUERY_ENCODER=int8`): its vectors of a few shopper
queries against the fp32 vectors of the same ONNX export, the lowest cosine held to `QUERY_INT8_MIN_COSINE`.

Measured here (AMD EPYC, AVX-512 VNNI) the form is ≥ 0.9992 from fp32 on the benchmark's 400 queries, 0.9993 on
these. On another CPU ONNX Runtime's int8 kernels differ (on x86 without VNNI its u8s8 products can saturate):
there the query vectors could stray far from fp32 and every search get silently worse, so the encoder refuses to
load instead (`encoder.QueryFormRefused`), saying to embed queries in fp32."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

# The lowest cosine to fp32 the query form may give (tests/test_query_encoder.py holds its own queries to it too).
QUERY_INT8_MIN_COSINE = 0.995

# What shoppers type: needs, paraphrases, a brand, a product name, a typo, a GTIN (the form's weakest kind here).
CHECK_QUERIES = (
    "something to fix a dripping tap",
    "milk for people who avoid dairy",
    "charger for my phone",
    "pasta for dinner tonight",
    "Claw hammer 16 oz",
    "Screwdrievr set",
    "anything from Voltix",
    "8712345678906",
)


class Embeds(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def worst_agreement(form: Embeds, reference: np.ndarray, queries: Sequence[str] = CHECK_QUERIES) -> tuple[float, str]:
    """The lowest cosine between `form`'s vector of a query and its `reference` (fp32) vector, and that query."""
    cosines = (form.encode(queries) * reference).sum(axis=1)
    worst = int(np.argmin(cosines))
    return float(cosines[worst]), queries[worst]


def refusal(cosine: float, query: str, bound: float) -> str:
    """Why the query form is refused, in one line: the setting, what was measured, the likely cause, what to do."""
    return (
        f"PLINQY_QUERY_ENCODER=int8: the int8 query encoder's vectors strayed from fp32 on this CPU (cosine "
        f"{cosine:.4f} for {query!r}, below the bound {bound:g}); this CPU's int8 kernels are the likely cause "
        "(ONNX Runtime's int8 arithmetic can saturate on x86 CPUs without VNNI), and searches would silently get "
        "worse: unset PLINQY_QUERY_ENCODER (or set it to fp32) to embed queries in fp32"
    )
