"""The `onnx-int8` backend's check of itself as it loads (`PLINQY_ENCODER_BACKEND=onnx-int8`), as the int8 query form
checks itself (query_check.py): its vectors of a few product texts against the fp32 vectors of the same ONNX export,
the lowest cosine held to `INT8_BACKEND_MIN_COSINE`.

This backend's vectors are the ones the embedding worker and `reembed` STORE. ONNX Runtime documents that on an x86
CPU without VNNI its u8s8 int8 kernels can saturate: there the stored vectors would stray from what this backend
gives on a VNNI CPU (and from fp32), every later search against them silently worse, so the encoder refuses to load
instead (`encoder.Int8BackendRefused`), saying to use the onnx backend."""

from __future__ import annotations

import contextlib
import ctypes

from embeddings.text import compose_text

# Measured here (AMD EPYC, AVX-512 VNNI, ONNX Runtime 1.32; docs/performance.md): this backend's cosine to fp32 over
# the demo city's 5,000 product texts, embedded as the worker embeds them, min 0.906 (1st percentile 0.927, median
# 0.954); on CHECK_PRODUCTS below, embedded as one batch, min 0.9155 (the sparkling water); over the benchmark's 400
# queries min 0.884. The bound sits 0.035 below the check's value here and 0.026 below the catalogue's weakest text,
# at the weakest this backend gives anything on a VNNI CPU: a refusal means the CPU, not a text that happens to be weak.
INT8_BACKEND_MIN_COSINE = 0.88

# Product texts as the worker composes them (text.py): packs with sizes and units, a book, a non-ASCII brand, a bare
# name, a GTIN among the attributes, descriptions; the first three among the backend's weakest kinds here.
CHECK_PRODUCTS = tuple(
    compose_text(name=name, brand=brand, category_path=path.split(" > "), attributes=attributes, description=text)
    for name, brand, path, attributes, text in (
        ("Nappies Size 3 (6-10 kg) 22 pack", "Kinderglück", "Baby & Toddler > Nappies & Wipes",
         {"size": "22 pack", "size_range": "Size 3 (6-10 kg)"},
         "Up to 12 hours of dryness and a snug, leak-free fit. Gentle on delicate skin; dermatologically tested."),
        ("Lightly Sparkling Water 500 ml", "Orchard Press", "Drinks > Soft Drinks & Water > Water", {"size": "500 ml"},
         "Naturally low in sodium. Comes in a recyclable 500 ml container."),
        ("Thinking in Systems: A Primer (Paperback)", "Penfold", "Books & Stationery > Non-Fiction",
         {"format": "Paperback"}, "Clear, engaging and thoroughly researched. Printed on FSC-certified paper."),
        ("Oat Drink Barista 1 L", "Oatly", "Dairy, Eggs & Plant-Based > Plant-Based Milk",
         {"size": "1 L", "type": "Barista"}, "Foams like milk for coffee; dairy-free and vegan."),
        ("Claw Hammer 16 oz", "Stahlwerk", "Hardware & Tools > Hand Tools", {}, None),
        ("USB-C Fast Charger 65 W, White", "Voltix", "Electronics & Phones > Chargers & Cables",
         {"colour": "White", "gtin": "8712345678906"},
         "Charges a laptop, tablet or phone at full speed. Foldable plug; 2-year warranty."),
        ("Fresh Antiperspirant Spray 50 ml", "Aqua Vita", "Beauty & Personal Care > Deodorants",
         {"scent": "Fresh", "size": "50 ml"}, "48-hour protection against odour and wetness."),
        ("Sandpit Toy Set, Green", "Wooden Wonders", "Toys & Games > Outdoor & Active Toys", {"colour": "Green"},
         "Gets kids outside, moving and playing. Not suitable for children under 3 years (small parts)."),
    )
)  # fmt: skip


def backend_refusal(cosine: float, text: str, bound: float) -> str:
    """Why the onnx-int8 backend is refused, in one line: the setting, what was measured, the likely cause, what to
    do. The product is named by its name (a text's first sentence), not its whole text."""
    product = text.split(". ", 1)[0]
    return (
        f"PLINQY_ENCODER_BACKEND=onnx-int8: the int8 encoder's vectors strayed from fp32 on this CPU (cosine "
        f"{cosine:.4f} for the product text of {product!r}, below the bound {bound:g}); this CPU's int8 kernels are "
        "the likely cause (ONNX Runtime's int8 arithmetic can saturate on x86 CPUs without VNNI), and the product "
        "vectors it stores would silently make searches worse: set PLINQY_ENCODER_BACKEND=onnx to embed in fp32 "
        "(then `reembed --stale` re-embeds what onnx-int8 stored)"
    )


def hand_back_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's malloc_trim) once a check's fp32 session is dropped:
    its ~90 MB of weights stayed resident in the process that checked (the worker's supervisor, whose jobs fork from
    it, or reembed), +80 MiB after the load against +12 MiB trimmed, for ~15 ms. Elsewhere than glibc, nothing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
