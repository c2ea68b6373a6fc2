"""The forward-only runtime: the exported networks give the Keras model's
outputs on real X-rays, batching keeps each caller's answer, and serving
imports no TensorFlow."""
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import EXAMPLES, MODEL_DIR, ROOT

from pneumonia.serve.batching import Batcher
from pneumonia.calibration import decision_logit
from pneumonia.serve.imaging import canonical, grey_to_rgb, load_image

XRAYS = sorted(EXAMPLES.glob("*.jp*g")) + sorted(EXAMPLES.glob("ADULT*.png"))


@pytest.fixture(scope="module")
def views(shipped_served):
    """The lung views the classifier reads, for every example X-ray."""
    canons = np.stack([canonical(load_image(p)) for p in XRAYS])
    return shipped_served.predictor.reader.read(canons)[0]


@pytest.fixture(scope="module")
def reference():
    """What the committed model.keras (on the Hub, not in git) said of the examples'
    lung views (scripts/keras_reference.py), for the export it was exported to."""
    with np.load(ROOT / "tests" / "data" / "keras_reference.npz") as f:
        ref = {k: f[k] for k in f.files}
    exported_from = json.loads((MODEL_DIR / "config.json").read_text())["runtime"]["exported_from"]["model.keras"]
    assert str(ref["model_sha256"]) == exported_from, "stale reference: run python scripts/keras_reference.py"
    assert [str(n) for n in ref["names"]] == [p.name for p in XRAYS]
    return ref


def compare(folder, ref: dict, precision: str) -> dict:
    """The exported classifier at `precision` against the Keras model's outputs
    `ref` on the same views (pneumonia.train.gradcam.keras_reference)."""
    from pneumonia.serve.heatmap import linear_cam
    from pneumonia.serve.runtime import Classifier, Network
    from pneumonia.train.quantize import correlations  # as PRECISION_BAR measures them
    config = json.loads((folder / "config.json").read_text())
    runtime = config["runtime"]
    file = runtime["int8"]["classifier"] if precision == "int8" else runtime["classifier"]
    acts, pooled = Classifier(Network(folder / file, "f32" if precision == "int8" else precision))(grey_to_rgb(ref["views"]))
    # The Keras model's own last layer and operating point where the reference has them (a
    # served head.npz refitted later is judged elsewhere): this measures the network's export.
    with np.load(folder / runtime["head"]) as f:
        w, b = (ref["w"], float(ref["b"])) if "w" in ref else (f["w"], float(f["b"]))
    t, thr = (float(ref["temperature"]), float(ref["threshold"])) if "w" in ref else (config["temperature"], config["threshold"])
    logits = pooled @ w + b
    out = {"pooled": np.abs(pooled - ref["pooled"]).max() / np.abs(ref["pooled"]).max(),
           "logit": np.abs(logits - ref["logits"]).max(), "cam": 0.0}
    for target in (0, 1):
        maps, ref_maps = linear_cam(acts, w, np.full(len(logits), target == 1)), ref[f"maps{target}"]
        out["cam"] = max(out["cam"], np.abs(maps - ref_maps).max())
    cut = decision_logit(t, thr)  # the decided class, as served
    decided = ref["logits"] >= cut
    out["same_side"] = bool(np.all((logits >= cut) == decided))
    # Correlation of the decided class's maps (the page's default, and what PRECISION_BAR
    # judges): the other class's map of a confidently decided X-ray is a few faint
    # cells scaled to a peak of 1, where rounding alone moves the correlation.
    maps, ref_maps = linear_cam(acts, w, decided), np.where(decided[:, None, None], ref["maps1"], ref["maps0"])
    out["corr"] = float(correlations(maps, ref_maps).min())
    out["dp"] = float(np.abs(1 / (1 + np.exp(-logits / t)) - 1 / (1 + np.exp(-ref["logits"] / t))).max())
    return out


def test_fp32_export_equals_the_keras_model_on_real_xrays(untrained_model, views, tmp_path):
    """The conversion itself is exact (the real graph, seeded weights): pooled
    features within 1e-5 of their scale, logits within 1e-3, Grad-CAM maps within 1e-4."""
    from pneumonia.train.export import export_folder
    from pneumonia.train.gradcam import keras_reference
    untrained_model.save(tmp_path / "model.keras")
    config = json.loads((MODEL_DIR / "config.json").read_text())
    config.pop("lungs")
    (tmp_path / "config.json").write_text(json.dumps(config))
    export_folder(tmp_path, fp16_weights=False)
    ref = {"views": views, **keras_reference(untrained_model, grey_to_rgb(views))}
    d = compare(tmp_path, ref, "f32")
    assert d["pooled"] < 1e-5 and d["logit"] < 1e-3 and d["cam"] < 1e-4, d


def test_committed_export_is_within_its_stated_tolerance(reference):
    """fp16 weights: at fp32 arithmetic pooled features within 5e-3 of their
    scale, logits within 0.05, both classes' maps within 0.03; at bf16 (as served on CPUs
    with it) the same decisions and the decided class's maps correlating >= 0.99 (bench/precision.py:
    all 624 test X-rays)."""
    f32 = compare(MODEL_DIR, reference, "f32")
    assert f32["pooled"] < 5e-3 and f32["logit"] < 0.05 and f32["cam"] < 0.03 and f32["same_side"], f32
    bf16 = compare(MODEL_DIR, reference, "bf16")
    assert bf16["same_side"] and bf16["corr"] >= 0.99 and bf16["logit"] < 1.0, bf16


def test_committed_int8_export_keeps_the_answers_or_is_never_offered(reference):
    """The int8 classifier (the stages its rule kept in float stay float)
    decides every example as Keras does, its map of the decided class
    correlates >= 0.95 with Keras's on each and P(PNEUMONIA) moves by < 0.1 (bench/precision.py: the
    bar on all validation X-rays). Judged again with a refitted last layer and missing the bar,
    it is never offered to the machine's choice."""
    from pneumonia.config import PRECISION_BAR
    from pneumonia.serve.runtime import candidates
    config = json.loads((MODEL_DIR / "config.json").read_text())
    again = config["runtime"]["int8"].get("white_lung_head")
    if again is not None and not again["passes"]:
        assert not config["runtime"]["int8"]["passed"] and "int8" not in candidates(MODEL_DIR, config)
        assert again["dp_p99"] > PRECISION_BAR["dp_p99"] or again["decisions_agree"] < PRECISION_BAR["decisions_agree"]
    assert config["runtime"]["int8"]["passed"] or again is not None, config["runtime"]["int8"]
    d = compare(MODEL_DIR, reference, "int8")
    assert d["same_side"] and d["corr"] >= 0.95 and d["dp"] < 0.1, d


def _tiny_folder(tmp_path):
    """A one-conv classifier exported like a model folder's."""
    import keras

    from pneumonia.train.export import export_folder
    keras.utils.set_random_seed(0)
    inputs = keras.Input((224, 224, 3))
    x = keras.layers.AveragePooling2D(32)(inputs)
    x = keras.layers.Conv2D(4, 1, activation="relu", name="conv5_block3_out")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(1, name="logit")(x))
    model.save(tmp_path / "model.keras")
    (tmp_path / "config.json").write_text(json.dumps({"class_names": ["NORMAL", "PNEUMONIA"], "threshold": 0.5,
                                                      "temperature": 1.0, "input_size": [224, 224, 3]}))
    export_folder(tmp_path, fp16_weights=False)
    return model, json.loads((tmp_path / "config.json").read_text())


def test_the_machine_chooses_by_its_capabilities_then_by_timing(tmp_path):
    """Offered: fp32 always, bf16 only on a CPU that computes in it, int8 only
    when its export passed the bar. Where bf16 exists fp32 is dropped and the
    rest timed; without it, int8 dot products mean int8; the timed choice is
    the fastest (one image alone plus a full batch); a forced one is obeyed or
    refused by name."""
    from pneumonia.config import RUNTIME_MAX_BATCH
    from pneumonia.serve.runtime import Network, bf16_arithmetic, candidates, choose, fastest, shortlist
    assert shortlist(["f32", "int8"], ["FP32", "INT8"])[0] == ["int8"]
    assert shortlist(["f32", "bf16", "int8"], ["FP32", "BF16", "INT8"])[0] == ["bf16", "int8"]
    assert shortlist(["f32", "bf16"], ["FP32", "BF16"])[0] == ["bf16"]
    assert shortlist(["f32", "int8"], ["FP32"])[0] == ["f32", "int8"]      # no int8 dot products: timed
    assert shortlist(["f32"], ["FP32", "INT8"])[0] == ["f32"]
    _, config = _tiny_folder(tmp_path)
    expected = {"f32", "bf16"} if bf16_arithmetic() else {"f32"}
    assert set(candidates(tmp_path, config)) == expected
    config["runtime"]["int8"] = {"passed": False, "classifier": config["runtime"]["classifier"]}
    assert set(candidates(tmp_path, config)) == expected      # int8 that missed the bar is never offered
    config["runtime"]["int8"]["passed"] = True
    assert set(candidates(tmp_path, config)) == expected | {"int8"}
    net, info = choose(tmp_path, config)
    assert info["precision"] == ("bf16" if bf16_arithmetic() else "int8") or info["timings"], info
    assert info["cpu_bf16"] == bf16_arithmetic()
    path = tmp_path / config["runtime"]["classifier"]
    name, timings = fastest({"a": Network(path, "f32"), "b": Network(path, "f32")})
    score = {k: v["alone_ms"] + RUNTIME_MAX_BATCH * v["batched_ms_per_image"] for k, v in timings.items()}
    assert set(timings) == {"a", "b"} and name == min(score, key=score.get)
    net, info = choose(tmp_path, config, "f32")
    assert info == {"precision": "f32", "chosen": "forced by PNEUMONIA_PRECISION", "timings": None,
                    "cpu_bf16": bf16_arithmetic()} and net.precision == "f32"
    if not bf16_arithmetic():
        with pytest.raises(ValueError, match="'bf16' is not available here"):
            choose(tmp_path, config, "bf16")


def test_a_wrong_precision_override_is_named(monkeypatch):
    from pneumonia.serve import loader
    monkeypatch.setenv("PNEUMONIA_PRECISION", "fp8")
    with pytest.raises(ValueError, match="PNEUMONIA_PRECISION must be auto or one of f32, bf16, int8, not 'fp8'"):
        loader.load_folder(MODEL_DIR, str(MODEL_DIR), "committed model")


def test_exported_segmenter_finds_the_same_lungs():
    """The export finds the lungs the Keras segmenter finds: the same X-rays found,
    the same masks and the same box the classifier's view is cut from. Raw
    probabilities are held only at f32 (the conversion's exactness): at bf16 a
    pixel near 0.5 moves by 0.11 on an AMX Xeon, with masks unchanged."""
    from pneumonia.serve.lung_view import lung_box
    from pneumonia.serve.runtime import SegmenterNet
    from pneumonia.serve.lungs import Segmenter, postprocess
    from pneumonia.train.segmenter import dice, load_segmenter
    canons = np.stack([canonical(load_image(p)) for p in XRAYS])
    ref = load_segmenter(MODEL_DIR / "lungs.keras").probability(canons)
    exported = MODEL_DIR / json.loads((MODEL_DIR / "config.json").read_text())["runtime"]["segmenter"]
    # f32: the export keeps fp16 weights; the opacity-trained finder differs from Keras by up to 0.016 at a
    # pixel (probability near 0.5), its masks' Dice >= 0.9997 on every example.
    for precision, overlap in (("f32", 0.999), ("bf16", 0.99)):
        got = Segmenter(SegmenterNet(exported, precision)).probability(canons)
        if precision == "f32":
            assert np.abs(got - ref).max() < 0.02
        assert np.abs(got - ref).mean() < 0.005, precision
        for p, q in zip(ref, got):
            want, have = postprocess(p), postprocess(q)
            assert want.found == have.found, precision
            if want.found:  # pixels near 0.5 may fall either side
                assert dice(want.mask, have.mask) > overlap, precision
                a, b = lung_box(want.mask), lung_box(have.mask)
                edges = np.abs(np.subtract([a.x0, a.y0, a.x1, a.y1], [b.x0, b.y0, b.x1, b.y1]))
                assert edges.max() <= 0.02, precision   # the classifier's crop moves by <= 2% of the side


def test_export_records_what_it_wrote(tmp_path):
    from pneumonia.serve.runtime import Classifier, Network, ir_files
    model, config = _tiny_folder(tmp_path)
    runtime = config["runtime"]
    assert "segmenter" not in runtime and "int8" not in runtime
    assert all((tmp_path / f).is_file() for f in ir_files(config))
    x = np.random.default_rng(0).uniform(0, 255, (3, 224, 224, 3)).astype(np.float32)
    acts, pooled = Classifier(Network(tmp_path / runtime["classifier"], "f32"))(x)
    with np.load(tmp_path / runtime["head"]) as f:
        np.testing.assert_allclose(pooled @ f["w"] + f["b"], model(x).numpy()[:, 0], rtol=1e-5, atol=1e-5)


def test_batcher_gives_each_caller_its_row_and_batches_under_load():
    calls = []

    def slow_square(x):
        calls.append(len(x))
        time.sleep(0.02)
        return x * x, x + 1

    batcher = Batcher(slow_square, max_batch=4)
    assert [v.tolist() for v in batcher.submit(np.array([3.0]))] == [[9.0], [4.0]]  # alone: at once, batch 1
    results = {}

    def call(i):
        results[i] = batcher.submit(np.array([float(i)]))
    threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i][0][0] == i * i and results[i][1][0] == i + 1 for i in range(12))
    assert max(calls) > 1 and max(calls) <= 4 and sum(calls) == 13


def test_batcher_error_reaches_the_callers_and_the_worker_lives_on():
    def picky(x):
        if (x < 0).any():
            raise ValueError("negative")
        return x

    batcher = Batcher(picky)
    with pytest.raises(ValueError, match="negative"):
        batcher.submit(np.array([-1.0]))
    assert batcher.submit(np.array([2.0]))[0] == 2.0


def test_serving_path_imports_no_tensorflow():
    code = ("import sys; from pneumonia.serve.loader import load_folder; "
            "s = load_folder('model', 'model', 'local'); "
            "r = s.predictor.analyze('examples/PNEUMONIA-viral_person10_virus_35.jpeg'); "
            "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'scipy', 'matplotlib') if m in sys.modules]; "
            "print(r['decision'], heavy)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "PNEUMONIA []"


def test_the_keras_reference_runtime_plugs_in_from_the_training_wing(untrained_model, tmp_path, monkeypatch):
    """The benchmarks' TensorFlow runtime reaches the served predictor as a plain
    callable (the serving wing never imports it) and answers as the exported
    networks do: the committed folder with a Keras classifier of the real graph
    (seeded weights: the committed model.keras is on the Hub, not in git), exported at fp32."""
    import shutil

    from pneumonia.serve import loader
    from pneumonia.train import keras_runtime
    from pneumonia.train.export import export_folder
    import json
    for name in ("config.json", "metrics.json", "lungs.keras", "ood.npz", "population.npz", "subtypes.npz"):
        shutil.copy(MODEL_DIR / name, tmp_path / name)
    # the children's classifier is what the two runtimes compare: the folder without the adult reader
    config = json.loads((tmp_path / "config.json").read_text())
    config.pop("adult_reader")
    (tmp_path / "config.json").write_text(json.dumps(config))
    untrained_model.save(tmp_path / "model.keras")
    export_folder(tmp_path, fp16_weights=False)
    with pytest.raises(ValueError, match="keras_runtime.register"):
        loader.load_folder(tmp_path, str(tmp_path), "test folder", runtime="tensorflow")
    keras_runtime.register()
    keras_served = loader.load_folder(tmp_path, str(tmp_path), "test folder", runtime="keras")
    monkeypatch.setenv("PNEUMONIA_PRECISION", "f32")
    served = loader.load_folder(tmp_path, str(tmp_path), "test folder")
    for path in XRAYS:
        ref, got = keras_served.predictor.analyze(path), served.predictor.analyze(path)
        assert ref["is_chest_xray"] == got["is_chest_xray"] and ref["decision"] == got["decision"], path.name
        for key in ("ood_score", "adult_probability", "probability_pneumonia"):
            if ref[key] is not None:
                assert abs(ref[key] - got[key]) <= 1e-3 * max(1.0, abs(ref[key])), (path.name, key)
