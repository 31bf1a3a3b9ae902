"""Encoder throughput: torch reference vs ONNX (production) vs ONNX int8, on realistic product texts.

    python -m benchmarks.bench_encoder --n 2000 --out benchmarks/results

Each backend runs in its own spawned process, so its peak RSS is its own and not the sum of all three.
Rates are texts/s over the whole list (median of `runs` timed passes after a warm-up); cosine is to the
torch fp32 reference, row by row. `measure_encoder_rates(texts)` is the reusable part (the end-to-end worker
benchmark builds on it); `product_texts(n)` gives the same texts for the same n and seed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.encoder import DEFAULT_CACHE_DIR, EncoderConfig, load_encoder
from embeddings.text import compose_text

BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8")
REFERENCE = "torch"

# (name, brand, category path, description, attributes): ~50 shapes of listing, from terse to wordy.
# "{n}" is filled with a number and "{c}" with a colour so that texts differ between repeats.
_TEMPLATES: list[tuple[str, str | None, list[str], str | None, dict[str, object]]] = [
    (
        "Oat Drink Barista Edition",
        "Oatly",
        ["Dairy & Plant-Based", "Plant-Based Milk"],
        "A creamy oat drink that foams like milk, made for coffee.",
        {"size": "1 L"},
    ),
    ("Organic whole milk 3.8%", "Weihenstephan", ["Dairy & Plant-Based", "Milk"], None, {"size": "{n}00 ml"}),
    ("Greek yoghurt 10% fat", "Fage", ["Dairy & Plant-Based", "Yoghurt"], "Thick strained yoghurt.", {"size": "500 g"}),
    (
        "Sourdough rye bread",
        None,
        ["Bakery", "Bread"],
        "Baked daily in store with a 24-hour rye sourdough.",
        {"weight": "750 g"},
    ),
    ("Croissant, butter", "Bäckerei Müller", ["Bakery", "Pastries"], None, {"pack": "{n} pieces"}),
    ("Bananas, Fairtrade", None, ["Fruit & Vegetables", "Fruit"], None, {"origin": "Ecuador", "weight": "1 kg"}),
    ("Fresh basil in a pot", None, ["Fruit & Vegetables", "Herbs"], None, {}),
    (
        "Extra virgin olive oil, cold pressed",
        "Kalamata Gold",
        ["Pantry", "Oils & Vinegar"],
        "Single-estate Koroneiki olives, harvested early for a peppery finish.",
        {"size": "500 ml", "origin": "Greece"},
    ),
    ("Spaghetti n.5", "Barilla", ["Pantry", "Pasta & Rice"], None, {"weight": "500 g"}),
    (
        "Basmati rice",
        "Tilda",
        ["Pantry", "Pasta & Rice"],
        "Aged long-grain rice, fluffy and fragrant.",
        {"weight": "{n} kg"},
    ),
    (
        "Espresso beans, dark roast",
        "Lavazza",
        ["Drinks", "Coffee"],
        "Intense, chocolatey blend for espresso machines.",
        {"weight": "1 kg", "roast": "dark"},
    ),
    ("Green tea, 50 bags", "日本茶園", ["Drinks", "Tea"], "日本の緑茶 ティーバッグ 50袋", {}),
    ("Mineral water, sparkling", "Gerolsteiner", ["Drinks", "Water"], None, {"pack": "6 × 1.5 L"}),
    (
        "Bio Hafermilch ohne Zucker",
        "Alnatura",
        ["Molkerei & Pflanzlich", "Pflanzendrinks"],
        "Hafermilch aus deutschem Anbau, ungesüßt.",
        {"größe": "1 l"},
    ),
    ("Lait d'avoine bio, sans sucre ajouté", "Bjorg", ["Crèmerie", "Boissons végétales"], None, {"taille": "1 L"}),
    ("Crème brûlée dessert", "La Laitière", ["Dairy & Plant-Based", "Desserts"], None, {"pack": "2 × 100 g"}),
    (
        "Paracetamol 500 mg tablets",
        "ratiopharm",
        ["Pharmacy", "Pain Relief"],
        "For headaches, toothache and fever. Read the leaflet.",
        {"pack": "{n}0 tablets"},
    ),
    ("Ibuprofen 400 mg", None, ["Pharmacy", "Pain Relief"], None, {}),
    ("Vitamin D3 1000 IU capsules", "Doppelherz", ["Pharmacy", "Vitamins"], None, {"pack": "90 capsules"}),
    ("Plasters, assorted sizes", "Hansaplast", ["Pharmacy", "First Aid"], None, {"pack": "{n}0 strips"}),
    (
        "Shampoo for dry hair",
        "Nivea",
        ["Beauty", "Hair Care"],
        "Repairs and protects with argan oil.",
        {"size": "250 ml"},
    ),
    ("Toothpaste sensitive", "Sensodyne", ["Beauty", "Oral Care"], None, {"size": "75 ml"}),
    ("Baby wipes sensitive", "Pampers", ["Baby", "Changing"], "Fragrance-free, 99% water.", {"pack": "4 × 56"}),
    ("Nappies size {n}", "Pampers", ["Baby", "Nappies"], None, {"count": "44"}),
    (
        "Dog food adult, chicken & rice",
        "Happy Paws",
        ["Pets", "Dog Food"],
        "Complete dry food for adult dogs of all breeds, with no added sugar.",
        {"weight": "12 kg"},
    ),
    ("Cat litter, clumping", "Catsan", ["Pets", "Cat Care"], None, {"volume": "10 l"}),
    ("Toilet cleaner gel, lemon", "Domestos", ["Household", "Cleaning"], None, {"size": "750 ml"}),
    ("Dishwasher tablets all-in-one", "Finish", ["Household", "Dishwashing"], None, {"count": "{n}0"}),
    (
        "Laundry detergent, colour",
        "Persil",
        ["Household", "Laundry"],
        "Liquid detergent for coloured fabrics.",
        {"loads": "40", "size": "2 L"},
    ),
    (
        "Tap washer set",
        "FixIt",
        ["Hardware", "Plumbing"],
        "Rubber washers for dripping taps and faucets.",
        {"count": "12", "material": "rubber"},
    ),
    ("Claw hammer, fibreglass handle", "Stanley", ["Hardware", "Hand Tools"], None, {"weight": "450 g"}),
    (
        "Screwdriver set with bit holder",
        "Wera",
        ["Hardware", "Hand Tools"],
        "Slotted, Phillips and Torx bits in a compact case.",
        {"pieces": "32"},
    ),
    (
        "Cordless drill 18 V",
        "Bosch",
        ["Hardware", "Power Tools"],
        "Two-speed drill driver with two batteries, charger and carry case. Torque up to 54 Nm.",
        {"voltage": "18 V", "colour": "{c}"},
    ),
    (
        "LED bulb E27 warm white, dimmable",
        "Philips",
        ["Hardware", "Lighting"],
        None,
        {"power": "9.5 W", "lumen": "806 lm"},
    ),
    ("Garden hose with spray nozzle", "Gardena", ["Garden", "Watering"], None, {"length": "{n}0 m"}),
    ("Potting soil, peat-free", "Compo", ["Garden", "Soil"], None, {"volume": "40 l"}),
    ("USB-C fast charger", "Anker", ["Electronics", "Chargers"], None, {"power": "20 W", "colour": "{c}"}),
    ("iPhone 15 silicone case", "Apple", ["Electronics", "Phone Cases"], None, {"colour": "{c}"}),
    (
        "Wireless earbuds with noise cancelling",
        "Sony",
        ["Electronics", "Audio"],
        "Up to 24 hours of battery with the case, IPX4 splash resistant, multipoint Bluetooth 5.3.",
        {"colour": "{c}"},
    ),
    ("AA batteries alkaline", "Duracell", ["Electronics", "Batteries"], None, {"pack": "{n}"}),
    ("Running shoes men's, breathable mesh", "Asics", ["Sports", "Running"], None, {"size": "44", "colour": "{c}"}),
    ("Yoga mat non-slip", "Gaiam", ["Sports", "Fitness"], None, {"thickness": "6 mm", "colour": "{c}"}),
    ("A5 spiral notebook, dotted", "Leuchtturm", ["Stationery", "Notebooks"], None, {"pages": "120"}),
    ("Ballpoint pens, blue", "Bic", ["Stationery", "Pens"], None, {"pack": "{n}0"}),
    ("Lego City fire station 60320", "LEGO", ["Toys", "Building Sets"], None, {"age": "6+"}),
    ("Jigsaw puzzle 1000 pieces, alpine lake", "Ravensburger", ["Toys", "Puzzles"], None, {}),
    (
        "Cotton T-shirt, crew neck",
        "Uniqlo",
        ["Clothing", "T-Shirts"],
        None,
        {"size": "M", "colour": "{c}", "material": "100% cotton"},
    ),
    ("Wool socks, hiking", "Falke", ["Clothing", "Socks"], None, {"size": "39-42", "material": "merino"}),
    ("Frozen pizza margherita", "Dr. Oetker", ["Frozen", "Pizza"], None, {"weight": "350 g"}),
    ("Vanilla ice cream", "Ben & Jerry's", ["Frozen", "Ice Cream"], None, {"size": "465 ml"}),
    (
        "Cast iron skillet, pre-seasoned",
        "Lodge",
        ["Home", "Cookware"],
        "Even heat from stovetop to oven to campfire. "
        "Hand wash, dry promptly and rub with a little oil to keep the seasoning. " * 3,
        {"diameter": "26 cm"},
    ),
    ("x", None, [], None, {}),
]
_COLOURS = ["black", "white", "midnight blue", "red", "sage green", "grey", "yellow", "purple"]


def product_texts(n: int, seed: int = 7) -> list[str]:
    """n composed product texts cycling through the templates, varied by number and colour."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        name, brand, path, description, attributes = _TEMPLATES[i % len(_TEMPLATES)]
        num, colour = str(rng.randint(1, 9)), rng.choice(_COLOURS)

        def fill(value: str, num: str = num, colour: str = colour) -> str:
            return value.replace("{n}", num).replace("{c}", colour)

        texts.append(
            compose_text(
                name=fill(name),
                brand=brand,
                category_path=path,
                description=fill(description) if description else None,
                attributes={k: fill(str(v)) for k, v in attributes.items()},
            )
        )
    return texts


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux: the process's high-water mark, which is why each backend gets its own process.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_backend(backend: str, texts: Sequence[str], runs: int, cache_dir: Path) -> dict[str, Any]:
    """Runs in a child process: load (timed, includes any ONNX export), warm up, time `runs` passes."""
    started = time.perf_counter()
    encoder = load_encoder(EncoderConfig(backend=backend, cache_dir=cache_dir))  # type: ignore[arg-type]
    load_s = time.perf_counter() - started
    encoder.encode(list(texts[:64]))  # warm-up: first-call allocations and graph setup stay out of the timing
    times = []
    vectors = np.empty((0, encoder.dim), dtype=np.float32)
    for _ in range(runs):
        t0 = time.perf_counter()
        vectors = encoder.encode(texts)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {
        "backend": encoder.backend_name,
        "model_id": encoder.model_id,
        "load_s": round(load_s, 2),
        "run_s": [round(t, 3) for t in times],
        "texts_per_s": round(len(texts) / median, 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "vectors": vectors,
    }


def measure_encoder_rates(
    texts: Sequence[str],
    *,
    backends: Sequence[str] = BACKENDS,
    runs: int = 3,
    cache_dir: Path = DEFAULT_CACHE_DIR,
) -> dict[str, Any]:
    """{backend: {texts_per_s, run_s, load_s, peak_rss_mib, model_id, cosine_mean, cosine_min, speedup}}.

    The torch reference is always measured, since cosine and speedup are relative to it.
    """
    order = [REFERENCE, *(b for b in backends if b != REFERENCE)]
    results: dict[str, dict[str, Any]] = {}
    context = get_context("spawn")  # a fresh interpreter per backend: no shared torch/ORT state, honest RSS
    for backend in order:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            results[backend] = pool.submit(_run_backend, backend, list(texts), runs, cache_dir).result()
    reference = results[REFERENCE].pop("vectors")
    base_rate = results[REFERENCE]["texts_per_s"]
    for backend in order:
        vectors = reference if backend == REFERENCE else results[backend].pop("vectors")
        cosines = (vectors * reference).sum(axis=1)
        results[backend]["cosine_mean"] = round(float(cosines.mean()), 6)
        results[backend]["cosine_min"] = round(float(cosines.min()), 6)
        results[backend]["speedup"] = round(results[backend]["texts_per_s"] / base_rate, 2)
    return results


def _markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        f"# Encoder throughput, {report['date']}",
        "",
        f"{report['n_texts']} product texts (mean {report['mean_chars']} chars), batch size {report['batch_size']}, "
        f"median of {report['runs']} runs; {env['cpu_count']} CPUs, {env['platform']}.",
        "",
        "| backend | texts/s | × torch | cosine mean | cosine min | load s | peak RSS MiB | model_id |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in report["backends"].items():
        lines.append(
            f"| {name} | {r['texts_per_s']} | {r['speedup']} | {r['cosine_mean']:.6f} | {r['cosine_min']:.6f} "
            f"| {r['load_s']} | {r['peak_rss_mib']} | `{r['model_id']}` |"
        )
    lines += ["", "load s includes the one-time ONNX export / quantisation when the cache was empty.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="number of product texts")
    parser.add_argument("--runs", type=int, default=3, help="timed passes per backend (median reported)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated; torch is always run")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)

    texts = product_texts(args.n)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    results = measure_encoder_rates(texts, backends=backends, runs=args.runs, cache_dir=args.cache_dir)
    import onnxruntime
    import torch

    report = {
        "date": date.today().isoformat(),
        "n_texts": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts)),
        "runs": args.runs,
        "batch_size": EncoderConfig().batch_size,
        "environment": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "backends": results,
    }
    write_report(args.out / f"encoder-{report['date']}", report, _markdown(report))
    return 0


def write_report(stem: Path, report: dict[str, Any], markdown: str) -> None:
    """`stem`.json and `stem`.md, and the Markdown on stdout."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)
    print(f"wrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    raise SystemExit(main())
