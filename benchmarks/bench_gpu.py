"""Encoder throughput on a CUDA GPU: the torch backend (fp16) at several batch sizes, fp32 for comparison.

    python -m benchmarks.bench_gpu --model .gpu-model --n 40000 --out results-dir
    python -m benchmarks.bench_gpu --make-ref .gpu-ref/ref-fp32.npz --ref-n 2000   # on the CPU, bundled fp32 model

Measures, on `product_texts(n)` (the texts bench_encoder uses):
- end to end: `Encoder.encode` (tokenising on the CPU, forward on the GPU, vectors back as float32) in texts/s,
  median of `--runs` passes per batch size after a warm-up, with torch.cuda.synchronize around each pass;
- model forward only: the same batches tokenised and moved to the GPU beforehand, so the gap between the two
  is the host side (tokenising, Python, copies);
- fp32 at one batch size (the same weights, upcast) and the cosine of the fp16 vectors to those, on the GPU;
- with `--ref`, the cosine of both to vectors made on the CPU by the original fp32 checkpoint (the model that
  travels to the GPU machine may be an fp16 copy, so fp16 vs fp32 on the GPU alone hides the weight rounding).
Writes `<stem>.json` and `<stem>.md` under `--out`. Exits 2 with "no CUDA device" when CUDA was asked for and
there is none; `--device cpu` runs the same code on the CPU (a smoke test: the figures mean nothing there).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_encoder import product_texts, write_report
from embeddings.encoder import EncoderConfig, TorchEncoder, load_encoder, resolve_model_dir

# Non-embedding parameters of all-MiniLM-L6-v2 per layer (4 d² attention projections + 2 d·4d feed-forward), x6
# layers, 2 FLOP each: the matrix work per real token, ignoring attention scores and padding (a lower bound).
_FLOP_PER_TOKEN = 2 * 6 * (4 * 384 * 384 + 2 * 384 * 1536)


def _texts_digest(texts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn: Callable[[], Any], device: str, runs: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(runs):
        _sync(device)
        t0 = time.perf_counter()
        result = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times, result


def _cosines(a: np.ndarray, b: np.ndarray, device: str) -> dict[str, float]:
    """Row-wise cosine of two (n, d) matrices, computed on `device`."""
    import torch

    ta = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)
    tb = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32)).to(device)
    cos = torch.nn.functional.cosine_similarity(ta, tb, dim=1)
    return {
        "mean": round(float(cos.mean()), 6),
        "min": round(float(cos.min()), 6),
        "below_0_999": int((cos < 0.999).sum()),
        "n": int(cos.numel()),
    }


def _dtype(encoder: TorchEncoder) -> str:
    return str(next(encoder._model.parameters()).dtype).removeprefix("torch.")


def _forward_only(encoder: TorchEncoder, texts: Sequence[str], batch: int, device: str, runs: int) -> dict[str, Any]:
    """Tokenise and copy every batch to the device first, then time only the transformer + mean pooling."""
    import torch

    tokenizer = encoder._model.tokenizer
    auto_model: Any = encoder._model[0].auto_model
    order = np.argsort([len(t) for t in texts], kind="stable")
    t0 = time.perf_counter()
    batches = []
    for start in range(0, len(order), batch):
        chunk = [texts[i] for i in order[start : start + batch]]
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=encoder.max_seq_length, return_tensors="pt")
        batches.append({k: v.to(device) for k, v in enc.items()})
    _sync(device)
    prepare_s = time.perf_counter() - t0

    def run() -> None:
        with torch.inference_mode():
            for feats in batches:
                hidden = auto_model(**feats).last_hidden_state
                mask = feats["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                torch.nn.functional.normalize(pooled.float(), dim=1)

    run()  # warm-up
    times, _ = _timed(run, device, runs)
    padded = sum(int(b["input_ids"].numel()) for b in batches)
    return {
        "batch_size": batch,
        "texts_per_s": round(len(texts) / statistics.median(times), 1),
        "run_s": [round(t, 4) for t in times],
        "tokenise_and_copy_s": round(prepare_s, 3),
        "padded_tokens": padded,
    }


def _measure_encode(encoder: TorchEncoder, texts: Sequence[str], batch: int, device: str, runs: int) -> dict[str, Any]:
    import torch

    encoder.config = replace(encoder.config, batch_size=batch)
    encoder.encode(list(texts[: min(len(texts), max(8 * batch, 2000))]))  # warm-up: kernels for these shapes
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times, vectors = _timed(lambda: encoder.encode(texts), device, runs)
    row: dict[str, Any] = {
        "batch_size": batch,
        "dtype": _dtype(encoder),
        "texts_per_s": round(len(texts) / statistics.median(times), 1),
        "run_s": [round(t, 3) for t in times],
    }
    if device.startswith("cuda"):
        row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return {"row": row, "vectors": vectors}


def _single_text_latency(encoder: TorchEncoder, texts: Sequence[str], device: str, n: int = 300) -> dict[str, Any]:
    """`encode_one` per query-sized call, as the API embeds a search query: milliseconds, after a warm-up."""
    picks = [texts[(i * 37) % len(texts)] for i in range(n)]
    for text in picks[:30]:
        encoder.encode_one(text)
    times = []
    for text in picks:
        _sync(device)
        t0 = time.perf_counter()
        encoder.encode_one(text)
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "dtype": _dtype(encoder),
        "n": n,
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (n - 1))], 2),
        "max_ms": round(times[-1], 2),
    }


def _environment(device: str) -> dict[str, Any]:
    import sentence_transformers
    import torch
    import transformers

    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "device": device,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu=torch.cuda.get_device_name(device),
            gpu_memory_mib=round(props.total_memory / 2**20),
            gpu_sms=props.multi_processor_count,
            gpu_capability=f"{props.major}.{props.minor}",
        )
    return env


def make_reference(path: Path, n: int, model_path: str | None) -> int:
    """CPU, original fp32 checkpoint: the vectors the GPU runs are compared with (`--ref`)."""
    texts = product_texts(n)
    encoder = load_encoder(EncoderConfig(model_path=model_path, backend="torch", device="cpu"))
    assert isinstance(encoder, TorchEncoder)
    t0 = time.perf_counter()
    vectors = encoder.encode(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        vectors=vectors.astype(np.float32),
        texts_digest=np.array(_texts_digest(texts)),
        model_id=np.array(encoder.model_id),
        dtype=np.array(_dtype(encoder)),
    )
    elapsed = time.perf_counter() - t0
    print(f"wrote {path}: {n} vectors from {encoder.model_id} ({_dtype(encoder)}, cpu) in {elapsed:.1f} s")
    return 0


def _markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [f"# Encoder throughput on a GPU, {report['date']}", ""]
    lines += [f"- {note}" for note in report["notes"]]
    lines += [
        f"- GPU: {env.get('gpu', 'none')} ({env.get('gpu_memory_mib', '?')} MiB, {env.get('gpu_sms', '?')} SMs, "
        f"sm_{str(env.get('gpu_capability', '?')).replace('.', '')}); torch {env['torch']} (CUDA {env['torch_cuda']}), "
        f"transformers {env['transformers']}, sentence-transformers {env['sentence_transformers']}, "
        f"Python {env['python']}, {env['cpu_count']} CPUs.",
        f"- Model: `{report['model_id']}` from `{report['model_dir']}` (weights stored as {report['weights_dtype']}); "
        f"load {report['load_s']} s.",
        f"- Texts: {report['n_texts']} `product_texts` (mean {report['mean_chars']} chars, "
        f"{report['mean_tokens']} word pieces); median of {report['runs']} passes after a warm-up; "
        f"tokenising all texts alone on the CPU: {report['tokenise_texts_per_s']} texts/s.",
        "",
        "## End to end (`Encoder.encode`: tokenise on the CPU, forward on the GPU, float32 vectors back)",
        "",
        "| batch | dtype | texts/s | passes s | peak GPU MiB | ≈ TFLOP/s (useful) |",
        "|---:|---|---:|---|---:|---:|",
    ]
    for r in report["encode"]:
        lines.append(
            f"| {r['batch_size']} | {r['dtype']} | {r['texts_per_s']:,.0f} | {', '.join(map(str, r['run_s']))} "
            f"| {r.get('peak_gpu_mib', '-')} | {r['useful_tflops']} |"
        )
    lat = report["single_text"]
    lines += [
        "",
        f"One text per call (`encode_one`, as a search query is embedded), {lat['dtype']}: "
        f"p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, max {lat['max_ms']} ms over {lat['n']} calls.",
    ]
    lines += [
        "",
        f"## Model forward only (batches tokenised and on the device beforehand; {report['encode'][0]['dtype']})",
        "",
        "| batch | texts/s | passes s | padded tokens | ≈ TFLOP/s (useful) |",
        "|---:|---:|---|---:|---:|",
    ]
    for r in report["forward_only"]:
        lines.append(
            f"| {r['batch_size']} | {r['texts_per_s']:,.0f} | {', '.join(map(str, r['run_s']))} "
            f"| {r['padded_tokens']:,} | {r['useful_tflops']} |"
        )
    lines += ["", "## Agreement", "", "| vectors | compared with | cosine mean | cosine min | rows < 0.999 | n |"]
    lines += ["|---|---|---:|---:|---:|---:|"]
    for c in report["cosine"]:
        lines.append(f"| {c['a']} | {c['b']} | {c['mean']:.6f} | {c['min']:.6f} | {c['below_0_999']} | {c['n']} |")
    lines += [
        "",
        "*useful TFLOP/s*: texts/s × mean word pieces × "
        f"{_FLOP_PER_TOKEN / 1e6:.1f} MFLOP (the linear layers per real token; attention scores and padding "
        "not counted), so a lower bound on the work the GPU does.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="sentence-transformers model dir (default: bundled model)")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu for a smoke test")
    parser.add_argument("--n", type=int, default=40000, help="number of product texts")
    parser.add_argument("--batch-sizes", default="64,256,1024", help="comma-separated, fp16")
    parser.add_argument("--fp32-batch", type=int, default=256, help="batch size of the fp32 comparison")
    parser.add_argument("--runs", type=int, default=3, help="timed passes per batch size (median reported)")
    parser.add_argument("--ref", type=Path, default=None, help="reference vectors from --make-ref")
    parser.add_argument("--make-ref", type=Path, default=None, help="write CPU fp32 reference vectors and exit")
    parser.add_argument("--ref-n", type=int, default=2000, help="texts in the reference (--make-ref)")
    parser.add_argument("--note", action="append", default=[], help="a line for the report's header (repeatable)")
    parser.add_argument("--stem", default=None, help="output file name without suffix (default gpu-<date>)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)

    if args.make_ref:
        return make_reference(args.make_ref, args.ref_n, args.model)

    import torch

    device: str = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: torch.cuda.is_available() is False (use --device cpu for a smoke test)", file=sys.stderr)
        return 2
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    texts = product_texts(args.n)

    t0 = time.perf_counter()
    config = EncoderConfig(model_path=args.model, backend="torch", device=device)
    encoder = load_encoder(config)
    load_s = time.perf_counter() - t0
    assert isinstance(encoder, TorchEncoder)

    tokenizer = encoder._model.tokenizer
    t0 = time.perf_counter()
    token_counts = [
        len(ids)
        for start in range(0, len(texts), 1024)
        for ids in tokenizer(texts[start : start + 1024], truncation=True, max_length=encoder.max_seq_length)[
            "input_ids"
        ]
    ]
    tokenise_s = time.perf_counter() - t0
    mean_tokens = sum(token_counts) / len(token_counts)

    def useful_tflops(rate: float) -> float:
        return round(rate * mean_tokens * _FLOP_PER_TOKEN / 1e12, 2)

    encode_rows, fp16_vectors = [], {}
    for batch in batch_sizes:
        measured = _measure_encode(encoder, texts, batch, device, args.runs)
        measured["row"]["useful_tflops"] = useful_tflops(measured["row"]["texts_per_s"])
        encode_rows.append(measured["row"])
        fp16_vectors[batch] = measured["vectors"]
        print(json.dumps(measured["row"]), flush=True)
    latency = _single_text_latency(encoder, texts, device)
    print(json.dumps({"single_text": latency}), flush=True)
    forward_rows = []
    for batch in batch_sizes:
        row = _forward_only(encoder, texts, batch, device, args.runs)
        row["useful_tflops"] = useful_tflops(row["texts_per_s"])
        forward_rows.append(row)
        print(json.dumps({"forward_only": row}), flush=True)

    # fp32: a second instance of the same weights, upcast (on a GPU TorchEncoder would make it fp16).
    fp32 = TorchEncoder(resolve_model_dir(config), replace(config, batch_size=args.fp32_batch))
    fp32._model.float()
    measured = _measure_encode(fp32, texts, args.fp32_batch, device, args.runs)
    measured["row"]["useful_tflops"] = useful_tflops(measured["row"]["texts_per_s"])
    encode_rows.append(measured["row"])
    fp32_vectors = measured["vectors"]
    print(json.dumps(measured["row"]), flush=True)

    label16 = f"{_dtype(encoder)} {device}"
    label32 = f"{_dtype(fp32)} {device}"
    compare_batch = args.fp32_batch if args.fp32_batch in fp16_vectors else batch_sizes[0]
    cosine: list[dict[str, Any]] = [{"a": f"{label16} (batch {compare_batch})", "b": f"{label32} (same weights)"}]
    cosine[0].update(_cosines(fp16_vectors[compare_batch], fp32_vectors, device))
    if len(batch_sizes) > 1:
        first, last = batch_sizes[0], batch_sizes[-1]
        cosine.append(
            {"a": f"{label16} (batch {first})", "b": f"{label16} (batch {last})"}
            | _cosines(fp16_vectors[first], fp16_vectors[last], device)
        )
    if args.ref:
        ref = np.load(args.ref)
        k_ref = len(ref["vectors"])
        k = min(k_ref, len(texts))  # product_texts(n) is a prefix of product_texts(m) for n < m
        if str(ref["texts_digest"]) != _texts_digest(product_texts(k_ref)):
            print(f"{args.ref}: reference texts differ from product_texts({k_ref}); skipping it", file=sys.stderr)
        else:
            b = f"{ref['dtype']} cpu, original checkpoint (`{ref['model_id']}`)"
            for a, vectors in ((label16, fp16_vectors[compare_batch]), (label32, fp32_vectors)):
                cosine.append({"a": a, "b": b} | _cosines(vectors[:k], ref["vectors"][:k], device))
    for c in cosine:
        print(json.dumps(c), flush=True)

    with open(encoder.model_dir / "model.safetensors", "rb") as fh:
        header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
    weights_dtype = sorted({v["dtype"] for k, v in header.items() if k != "__metadata__"})
    report = {
        "date": date.today().isoformat(),
        "notes": args.note,
        "environment": _environment(device),
        "model_id": encoder.model_id,
        "model_dir": args.model or str(encoder.model_dir),
        "weights_dtype": "/".join(weights_dtype),
        "load_s": round(load_s, 2),
        "n_texts": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts)),
        "mean_tokens": round(mean_tokens, 1),
        "tokenise_texts_per_s": round(len(texts) / tokenise_s, 1),
        "runs": args.runs,
        "encode": encode_rows,
        "forward_only": forward_rows,
        "single_text": latency,
        "cosine": cosine,
    }
    if device.startswith("cuda"):
        report["peak_gpu_mib_overall"] = max(r["peak_gpu_mib"] for r in encode_rows)
    write_report(args.out / (args.stem or f"gpu-{report['date']}"), report, _markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
