"""An int8 form's speed against fp32's, measured as it loads (encoder._checked_int8), beside its cosine check.

The forms were measured faster than fp32 only on a CPU with AVX-512 VNNI (the query form 0.94 against 2.48 ms a
query at 100k). Elsewhere ONNX Runtime may compute the query form's 8-bit blocks in fp32 from their codes (10.8 ms
a query here with accuracy level 1): correct vectors, slower searches, which the cosine check cannot see. So each
form is timed on its check texts as it is used (the query form one query a call, the backend one batch), best of
a few passes, and a form clearly slower than fp32 is logged as a warning saying to unset the setting. It still
loads: its vectors are right, and a timing at start-up is too noisy to refuse a service on. "Clearly": the two are
timed apart (never both sessions at once), and beside a busy neighbour the query form read 4.5 against fp32's 5.0 ms
here, where it takes 0.4x fp32 on a quiet machine; without int8 kernels it takes ~4x."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from embeddings.query_check import Embeds

TIMED_PASSES = 3  # best of: a load is often beside other start-up work
SLOWER_MARGIN = 1.25  # the form is "slower" past this many times fp32's time (module docstring)


@dataclass(frozen=True)
class FormSpeed:
    """Milliseconds a text: the int8 form's and fp32's, on the same texts the same way."""

    form_ms: float
    fp32_ms: float

    @property
    def slower(self) -> bool:
        return self.form_ms > SLOWER_MARGIN * self.fp32_ms


def ms_a_text(form: Embeds, texts: Sequence[str], *, one_by_one: bool) -> float:
    """The best of TIMED_PASSES passes over `texts` (a call a text, or one batch), in milliseconds a text. The
    caller has embedded them once already (its check), so no pass pays the session's first run."""
    best = float("inf")
    for _ in range(TIMED_PASSES):
        start = time.perf_counter()
        if one_by_one:
            for text in texts:
                form.encode([text])
        else:
            form.encode(texts)
        best = min(best, time.perf_counter() - start)
    return best * 1000 / max(1, len(texts))


def slower_warning(setting: str, unset: str, speed: FormSpeed) -> str | None:
    """One line where the form is slower than fp32 on this CPU: the setting, both timings, what to do."""
    if not speed.slower:
        return None
    return (
        f"{setting}: the int8 form is slower than fp32 on this CPU ({speed.form_ms:.2f} against "
        f"{speed.fp32_ms:.2f} ms a text, measured as it loaded); its vectors are right but it costs more CPU "
        f"(a CPU without AVX-512 VNNI is the likely cause): {unset}"
    )
