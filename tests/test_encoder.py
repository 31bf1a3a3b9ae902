"""The encoder: the production backend gives the reference's vectors, offline, normalised, in order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embeddings.encoder import Encoder, EncoderConfig, EncoderError, load_encoder
from embeddings.text import compose_text, text_hash
from tests.test_int8_backend import load_int8_backend

PRODUCT_TEXTS = [
    "Oat Drink Barista Edition. Brand: Oatly. Category: Dairy & Plant-Based > Plant-Based Milk. Size: 1 L",
    "Tap washer set, 12 rubber washers for dripping faucets. Brand: FixIt. Category: Hardware > Plumbing",
    "Paracetamol 500 mg tablets, 20 pack. Category: Pharmacy > Pain Relief",
    "Ibuprofen 200mg",
    "USB-C fast charger 20 W",
    "Dog food, adult, chicken & rice, 12 kg bag. Brand: Happy Paws",
    "Claw hammer 450 g, fibreglass handle",
    "Shampoo for dry hair 250 ml. Brand: Nivea",
    "Sourdough rye bread 750 g, baked daily",
    "Bio Hafermilch 1 l – ohne Zucker",
    "Lait d'avoine bio, sans sucre ajouté",
    "Crème brûlée dessert, 2 × 100 g",
    "日本の緑茶 ティーバッグ 50袋",
    "LED bulb E27 9.5 W warm white 806 lm, dimmable",
    "Garden hose 20 m with spray nozzle",
    "Baby wipes sensitive, 4 × 56",
    "Lego City fire station 60320",
    "Running shoes men's size 44, breathable mesh",
    "iPhone 15 silicone case, midnight blue",
    "A5 spiral notebook, dotted, 120 pages",
    "x",
    "a " * 400,
    "Extra virgin olive oil 500 ml, cold pressed, Greece",
    "Toilet cleaner gel 750 ml, lemon",
    "Cat litter clumping 10 l",
    "Yoga mat 6 mm, non-slip, purple",
    "Screwdriver set 32 pieces with bit holder",
    "Vitamin D3 1000 IU, 90 capsules",
    "Fresh basil pot",
    "Organic bananas, 1 kg, Fairtrade",
]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A fresh cache per session exercises the export itself (~7 s once); all tests then share it.
    return tmp_path_factory.mktemp("encoder-cache")


@pytest.fixture(scope="module")
def onnx_encoder(cache_dir: Path) -> Encoder:
    return load_encoder(EncoderConfig(backend="onnx", cache_dir=cache_dir))


@pytest.fixture(scope="module")
def torch_encoder(cache_dir: Path) -> Encoder:
    return load_encoder(EncoderConfig(backend="torch", device="cpu", cache_dir=cache_dir))


def test_onnx_matches_the_torch_reference(onnx_encoder: Encoder, torch_encoder: Encoder) -> None:
    fast = onnx_encoder.encode(PRODUCT_TEXTS)
    reference = torch_encoder.encode(PRODUCT_TEXTS)
    cosines = (fast * reference).sum(axis=1)
    assert cosines.min() >= 0.999, cosines
    assert onnx_encoder.model_id == torch_encoder.model_id


def test_vectors_are_normalised_float32_and_in_input_order(onnx_encoder: Encoder) -> None:
    vectors = onnx_encoder.encode(PRODUCT_TEXTS)
    assert vectors.shape == (len(PRODUCT_TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Length sorting happens inside; each row must still belong to its own text.
    singles = np.stack([onnx_encoder.encode_one(t) for t in PRODUCT_TEXTS[:6]])
    np.testing.assert_allclose((singles * vectors[:6]).sum(axis=1), 1.0, atol=1e-4)
    assert onnx_encoder.encode([]).shape == (0, 384)
    # Reversed input: the inverse permutation of the internal length sort must still put rows back.
    np.testing.assert_allclose(onnx_encoder.encode(PRODUCT_TEXTS[::-1]), vectors[::-1], atol=1e-5)
    assert onnx_encoder.dim == 384 and onnx_encoder.backend_name == "onnx"


def test_auto_on_an_explicit_cpu_device_is_onnx(cache_dir: Path, onnx_encoder: Encoder) -> None:
    assert load_encoder(EncoderConfig(backend="auto", device="cpu", cache_dir=cache_dir)).backend_name == "onnx"


@pytest.mark.skipif(any(Path("/dev").glob("nvidia[0-9]*")), reason="a GPU machine: auto rightly imports torch")
def test_auto_without_a_gpu_never_imports_torch(cache_dir: Path, onnx_encoder: Encoder) -> None:
    """torch costs ~140 MiB in every API worker; without an NVIDIA device auto picks ONNX without importing it."""
    code = (
        "import sys; from pathlib import Path; from embeddings.encoder import EncoderConfig, load_encoder; "
        f"e = load_encoder(EncoderConfig(backend='auto', cache_dir=Path({str(cache_dir)!r}))); "
        "e.encode(['oat milk']); print(e.backend_name, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["onnx", "False"], out.stdout + out.stderr


def test_semantics_survive_the_export(onnx_encoder: Encoder) -> None:
    query = onnx_encoder.encode_one("milk for people who avoid dairy")
    scores = onnx_encoder.encode(PRODUCT_TEXTS) @ query
    assert int(np.argmax(scores)) in (0, 9, 10)  # one of the oat drinks


def test_int8_is_opt_in_with_its_own_model_id(onnx_encoder: Encoder, cache_dir: Path) -> None:
    int8 = load_int8_backend(EncoderConfig(backend="onnx-int8", cache_dir=cache_dir))  # checked (test_int8_backend)
    assert int8.model_id != onnx_encoder.model_id and int8.model_id.endswith("+int8")
    cosines = (int8.encode(PRODUCT_TEXTS[:10]) * onnx_encoder.encode(PRODUCT_TEXTS[:10])).sum(axis=1)
    assert 0.8 < cosines.mean() < 0.9999


def test_bad_model_path_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match=r"PLINQY_MODEL=.* is not a sentence-transformers model directory"):
        load_encoder(EncoderConfig(model_path=str(tmp_path / "nope")))


def test_onnx_refuses_a_pipeline_it_cannot_reproduce(tmp_path: Path, onnx_encoder: Encoder) -> None:
    # A copy of the model with an extra Dense layer: onnx would silently give other vectors, so it must refuse.
    for item in onnx_encoder.model_dir.iterdir():
        (tmp_path / item.name).symlink_to(item)
    (tmp_path / "modules.json").unlink()
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(EncoderError, match=r"PLINQY_ENCODER_BACKEND=torch"):
        load_encoder(EncoderConfig(model_path=str(tmp_path), backend="onnx", cache_dir=tmp_path / "cache"))


def test_compose_text_is_deterministic_and_hash_tracks_every_field() -> None:
    base = dict(
        name="Oat Drink Barista",
        brand="Oatly",
        category_path=["Dairy & Plant-Based", "Plant-Based Milk"],
        description="Creamy  oat drink\nfor coffee.",
        attributes={"size": "1 L", "flavour": "original"},
    )
    text = compose_text(**base)  # type: ignore[arg-type]
    assert text == (
        "Oat Drink Barista. Brand: Oatly. Category: Dairy & Plant-Based > Plant-Based Milk. Flavour: original. "
        "Size: 1 L. Creamy oat drink for coffee"
    )
    reordered = dict(base, attributes={"flavour": "original", "size": "1 L"})
    assert text_hash(compose_text(**reordered)) == text_hash(text)  # type: ignore[arg-type]
    for key, value in [
        ("name", "Oat Drink"),
        ("brand", "Alpro"),
        ("category_path", ["Dairy & Plant-Based"]),
        ("description", "Light oat drink"),
        ("attributes", {"size": "250 ml"}),
    ]:
        changed = dict(base, **{key: value})
        assert text_hash(compose_text(**changed)) != text_hash(text), key  # type: ignore[arg-type]


def test_compose_text_truncates_long_descriptions_but_keeps_the_name() -> None:
    text = compose_text(name="Garden hose", description="very long " * 500)
    assert text.startswith("Garden hose") and len(text) <= 1000


def test_compose_text_normalises_unicode_and_skips_empty_attributes() -> None:
    composed = compose_text(name="Crème brûlée", attributes={"colour": ["red", "blue"], "size": "", "note": None})
    decomposed = compose_text(name="Cre\u0300me bru\u0302le\u0301e", attributes={"colour": ["red", "blue"]})
    assert composed == decomposed == "Crème brûlée. Colour: red, blue"


def test_one_thread_encoder_gives_the_same_vectors(onnx_encoder: Encoder, cache_dir: Path) -> None:
    # The API's query encoder runs one ONNX thread (PLINQY_QUERY_ENCODER_THREADS); vectors must not change.
    single = load_encoder(EncoderConfig(backend="onnx", cache_dir=cache_dir, threads=1))
    assert single._session.get_session_options().intra_op_num_threads == 1  # type: ignore[attr-defined]
    np.testing.assert_allclose(single.encode(PRODUCT_TEXTS), onnx_encoder.encode(PRODUCT_TEXTS), atol=1e-5)


def test_loading_draws_no_bar_into_a_log(tmp_path: Path) -> None:
    """The ONNX export (a fresh cache: the first `reembed`, `serve` or `worker`) and the torch backend wrote
    transformers' own "Loading weights" bar, `\\r`-separated, into stderr sent to a file; on a terminal only now."""
    code = (
        "from pathlib import Path; from embeddings.encoder import EncoderConfig, load_encoder; "
        f"cache = Path({str(tmp_path / 'cache')!r}); "
        "print(load_encoder(EncoderConfig(backend='onnx', cache_dir=cache)).backend_name); "
        "print(load_encoder(EncoderConfig(backend='torch', device='cpu', cache_dir=cache)).backend_name)"
    )
    with (tmp_path / "stderr.log").open("w+") as log:
        out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=log, text=True, timeout=300)
        log.seek(0)
        err = log.read()
    assert out.returncode == 0 and out.stdout.split() == ["onnx", "torch"], out.stdout + err
    assert any((tmp_path / "cache").glob("*/model.onnx")), "the export ran"
    assert "Loading weights" not in err and "\r" not in err, err
