"""The int8 rows kernels of a large shared vector copy (engine/rows_kernels.py): CPU a call, by batch, for MLAS
(ONNX Runtime's MatMulInteger, the zero point taken off by the kernel), SimSIMD's int8 dot products, and the
form MLAS's replaced (the zero point taken off in numpy), in the same run.

    python -m benchmarks.bench_rows_kernel --rows 1000000 --name rows-kernel-2026-12-04

A shared generation stores its codes as uint8 rows (code + ROW_ZERO_POINT). MLAS computes 16 query columns
whatever the batch; SimSIMD each query on its own. Every form runs on the same random rows and queries, in turn,
and must give identical integers; each call's CPU is this process's (the kernels run on the calling thread).
Medians of `--repeats` calls per batch size; `simsimd_batch` is what `RowsKernel.calibrate` chose here.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.output import measured_run, save_and_show
from search_service.engine import quantizer, rows_kernels

RESULTS = Path(__file__).resolve().parent / "results"
DIM = 384


def _raw_session(dim: int) -> Any:
    """The replaced form: the raw products of the stored rows, the zero point left in."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    node = helper.make_node("MatMulInteger", ["rows", "queries"], ["dots"])
    a = helper.make_tensor_value_info("rows", TensorProto.UINT8, ["rows", dim])
    b = helper.make_tensor_value_info("queries", TensorProto.INT8, [dim, "batch"])
    y = helper.make_tensor_value_info("dots", TensorProto.INT32, ["rows", "batch"])
    graph = helper.make_graph([node], "raw", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _timed(call: Any) -> tuple[float, np.ndarray]:
    before = time.process_time()
    out = call()
    return (time.process_time() - before) * 1000, out


def measure(rows: int, batches: list[int], repeats: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    rows8 = rng.integers(1, 128, size=(rows, DIM), dtype=np.uint8)  # codes ±63 + 64, as a generation stores them
    test = quantizer._test_codes(DIM)
    kernel, raw = rows_kernels.onnx_rows_session(DIM, test), _raw_session(DIM)
    if kernel is None or not rows_kernels.simsimd_is_exact(test):
        raise SystemExit("a kernel failed its self-test on this machine: nothing to compare")
    by_batch: dict[str, Any] = {}
    for batch in batches:
        q8 = rng.integers(-127, 128, size=(batch, DIM), dtype=np.int8)
        queries = np.ascontiguousarray(q8.T)
        out = np.empty((batch, rows), dtype=np.float32)

        def replaced(q8: np.ndarray = q8, queries: np.ndarray = queries) -> np.ndarray:
            dots = raw.run(None, {"rows": rows8, "queries": queries})[0].T
            return np.asarray(dots - rows_kernels.ROW_ZERO_POINT * q8.sum(axis=1, dtype=np.int32)[:, None])

        def mlas(queries: np.ndarray = queries) -> np.ndarray:
            return np.asarray(kernel.run(None, {"rows": rows8, "queries": queries})[0].T)

        def simsimd(q8: np.ndarray = q8, out: np.ndarray = out) -> np.ndarray:
            rows_kernels.simsimd_into(out, q8, rows8)
            return out

        forms = {"replaced": replaced, "mlas": mlas, "simsimd": simsimd}
        times: dict[str, list[float]] = {name: [] for name in forms}
        for i in range(repeats + 1):  # the first round warms up
            got = {name: _timed(form) for name, form in forms.items()}
            want = got["mlas"][1]
            if not all(np.array_equal(out.astype(np.int64), want) for _, out in got.values()):
                raise SystemExit(f"batch {batch}: the forms gave different integers")
            if i:
                for name, (t, _) in got.items():
                    times[name].append(t)
        medians = {name: float(np.median(values)) for name, values in times.items()}
        by_batch[str(batch)] = {"median_cpu_ms": medians, "simsimd_to_mlas": medians["simsimd"] / medians["mlas"]}
    return by_batch


def _calibrated_batch() -> int:
    chosen = rows_kernels.RowsKernel(DIM, quantizer._test_codes(DIM))
    chosen.calibrate()
    return chosen.simsimd_batch


def _markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# The int8 rows kernels: {result['rows']:,} rows x {DIM}, {result['when']}",
        "",
        f"Load {result['load_before']} before, {result['load_after']} after; medians of {result['repeats']} calls. "
        f"`RowsKernel.calibrate` sends batches of up to {result['simsimd_batch']} queries to SimSIMD here.",
        "",
        "| queries a call | zero point in numpy (replaced) | MLAS | SimSIMD | SimSIMD / MLAS |",
        "|---|---|---|---|---|",
    ]
    for batch, row in result["by_batch"].items():
        m = row["median_cpu_ms"]
        lines.append(
            f"| {batch} | {m['replaced']:.1f} ms | {m['mlas']:.1f} ms | {m['simsimd']:.1f} ms "
            f"| {row['simsimd_to_mlas']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", default="1,2,4,8", help="queries a call, comma-separated")
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default=None, help="file stem (default rows-kernel-<date>)")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    result = measured_run(
        "bench_rows_kernel",
        lambda: {
            "rows": args.rows,
            "repeats": args.repeats,
            "simsimd_batch": _calibrated_batch(),
            "by_batch": measure(args.rows, batches, args.repeats),
        },
    )
    save_and_show(result, _markdown(result), args.out, args.name or f"rows-kernel-{datetime.now(UTC):%Y-%m-%d}")
    return result


if __name__ == "__main__":
    main()
