"""The int8 rows kernels of a large shared vector copy (engine/rows_kernels.py): CPU a call, by batch, for MLAS
(ONNX Runtime's MatMulInteger, the zero point taken off by the kernel), SimSIMD's int8 dot products, the native
kernel (engine/native_rows.py, where it loads) and the form MLAS's replaced (the zero point taken off in numpy),
in the same run; then one query over rows picked by their numbers (a gather's candidates): gathered a chunk at a
time for SimSIMD (the path without the native kernel) against scored in place by the native kernel.

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
from search_service.engine.native_rows import native_rows

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
    native = native_rows(DIM)
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
        if native is not None:
            offsets = (rows_kernels.ROW_ZERO_POINT * q8.sum(axis=1, dtype=np.int64)).astype(np.float32)[:, None]

            def in_place(q8: np.ndarray = q8, out: np.ndarray = out, offsets: np.ndarray = offsets) -> np.ndarray:
                native.into(out, q8, rows8)
                out -= offsets
                return out

            forms["native"] = in_place
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


def _picked_call(kernel: Any, out: np.ndarray, q8: np.ndarray, rows8: np.ndarray, picked: np.ndarray) -> Any:
    def call() -> np.ndarray:
        kernel.picked_into(out, q8, rows8, picked)
        return out

    return call


def measure_picked(rows: int, sizes: list[int], repeats: int, seed: int = 1) -> dict[str, Any]:
    """One query over `size` rows picked at random (sorted, as candidate sets give them): RowsKernel.picked_into
    with the native kernel and without it (the gather), the same integers."""
    rng = np.random.default_rng(seed)
    rows8 = rng.integers(1, 128, size=(rows, DIM), dtype=np.uint8)
    kernel = rows_kernels.RowsKernel(DIM, quantizer._test_codes(DIM))
    kernel.calibrate()
    forms = {"gathered": None, "native": kernel.native} if kernel.native is not None else {"gathered": None}
    by_size: dict[str, Any] = {}
    for size in sizes:
        picked = np.sort(rng.choice(rows, min(size, rows), replace=False))
        q8 = rng.integers(-127, 128, size=(1, DIM), dtype=np.int8)
        times: dict[str, list[float]] = {name: [] for name in forms}
        for i in range(repeats + 1):
            got = {}
            for name, native in forms.items():
                kernel.native = native
                out = np.empty((1, len(picked)), dtype=np.float32)
                got[name] = _timed(_picked_call(kernel, out, q8, rows8, picked))
            if not all(np.array_equal(out, got["gathered"][1]) for _, out in got.values()):
                raise SystemExit(f"{size} picked rows: the forms gave different integers")
            if i:
                for name, (t, _) in got.items():
                    times[name].append(t)
        by_size[str(size)] = {name: float(np.median(values)) for name, values in times.items()}
    return by_size


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
        "| queries a call | zero point in numpy (replaced) | MLAS | SimSIMD | native | SimSIMD / MLAS |",
        "|---|---|---|---|---|---|",
    ]
    for batch, row in result["by_batch"].items():
        m = row["median_cpu_ms"]
        native = f"{m['native']:.1f} ms" if "native" in m else "not loaded"
        lines.append(
            f"| {batch} | {m['replaced']:.1f} ms | {m['mlas']:.1f} ms | {m['simsimd']:.1f} ms | {native} "
            f"| {row['simsimd_to_mlas']:.2f}x |"
        )
    lines += [
        "",
        "One query over picked rows (CPU a call):",
        "",
        "| rows picked | gathered + SimSIMD | native, in place |",
    ]
    lines.append("|---|---|---|")
    for size, m in result["picked"].items():
        native = f"{m['native']:.2f} ms" if "native" in m else "not loaded"
        lines.append(f"| {int(size):,} | {m['gathered']:.2f} ms | {native} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", default="1,2,4,8", help="queries a call, comma-separated")
    parser.add_argument("--picked", default="20000,136000,400000", help="rows picked for one query, comma-separated")
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
            "picked": measure_picked(args.rows, [int(p) for p in args.picked.split(",") if p.strip()], args.repeats),
        },
    )
    save_and_show(result, _markdown(result), args.out, args.name or f"rows-kernel-{datetime.now(UTC):%Y-%m-%d}")
    return result


if __name__ == "__main__":
    main()
