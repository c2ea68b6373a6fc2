"""A tiny real training run through the CLI, then the evaluation CLI."""
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import DATA, MODEL_DIR, ROOT
from huggingface_hub import ModelCard

from pneumonia.report import card
from pneumonia.train.model import load_model_folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "model"
    proc = subprocess.run(
        [sys.executable, "train.py", "--data", str(DATA), "--out", str(out), "--weights", "none",
         "--limit", "6", "--head-epochs", "1", "--epochs", "1", "--views", "1",
         "--batch-size", "8", "--val-fraction", "0.34", "--segmenter", str(MODEL_DIR / "lungs.keras"),
         "--adults", str(ROOT / "tests" / "data" / "adults"), "--hospitals", str(ROOT / "tests" / "data" / "hospitals"),
         "--lung-view", "crop+blur", "--precision", "mixed_bfloat16"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


def test_run_writes_a_loadable_model_folder(trained):
    out, log = trained
    assert "Phase 1" in log and "Phase 2" in log and "Test (12 images)" in log
    for name in ("model.keras", "lungs.keras", "config.json", "history.json", "metrics.json", "README.md", "ood.npz",
                 "classifier.xml", "classifier.bin", "lungs.xml", "lungs.bin", "head.npz", "population.npz", "subtypes.npz",
                 "confusion_matrix.png", "roc_curve.png", "reliability_diagram.png", "training_curves.png"):
        assert (out / name).is_file(), name
    net, config = load_model_folder(out)
    assert config["class_names"] == ["NORMAL", "PNEUMONIA"]
    assert config["temperature"] > 0 and 0 <= config["threshold"] <= 1
    assert config["training"]["limit"] == 6
    # The classifier reads the lungs; the segmenter travels inside the folder.
    assert config["lungs"]["variant"] == "crop+blur" and config["lungs"]["file"] == "lungs.keras"
    assert "Lung view 'crop+blur'" in log and config["training"]["precision"] == "mixed_bfloat16"
    x = np.zeros((1, 224, 224, 3), np.float32)
    assert net(x).shape == (1, 1)


def test_the_int8_classifier_is_made_by_its_rule_or_said_missing(trained):
    """train.py quantises after export: every candidate of the rule is recorded
    with the bar's numbers; the file exists exactly when one passed, and the
    app offers it exactly then."""
    from pneumonia.config import INT8_FLOAT_STAGES
    from pneumonia.serve.runtime import candidates
    out, log = trained
    config = json.loads((out / "config.json").read_text())
    q = config["runtime"]["int8"]
    assert "int8, conv1 in float" in log and q["calibration_views"] > 0
    tried = [tuple(t["float_stages"]) for t in q["tried"]]
    assert tried == list(INT8_FLOAT_STAGES[:len(tried)]) and all("dp_p99" in t for t in q["tried"])
    assert [t["passes"] for t in q["tried"]] == [False] * (len(tried) - 1) + [q["passed"]]
    assert (out / "classifier.int8.xml").is_file() == q["passed"] == ("int8" in candidates(out, config))


def test_the_heads_under_the_answer_are_fitted_or_say_why_not(trained):
    """On the tiny run a part may hold one class only: each head is fitted by its
    rule or recorded as skipped with the reason, and the folder serves either way."""
    out, log = trained
    sub = json.loads((out / "config.json").read_text())["subtypes"]
    assert "Validation only" in sub["rule"] and "Subtypes:" in log
    for name in ("bacterial", "tuberculosis"):
        assert "threshold" in sub[name] or sub[name]["skipped"].startswith("not fitted:"), name
    from pneumonia.serve.loader import load_folder
    served = load_folder(out, str(out), "tiny")
    result = served.predictor.analyze(DATA / "test" / "PNEUMONIA" / sorted((DATA / "test" / "PNEUMONIA").iterdir())[0].name)
    assert {"pneumonia_type", "tuberculosis"} <= set(result)
    for key in ("pneumonia_type", "tuberculosis"):
        assert (result[key]["probability"] is None) == (result[key]["reason"] is not None)


def test_adults_fit_the_guard_p_adult_and_the_adult_head(trained):
    out, log = trained
    config = json.loads((out / "config.json").read_text())
    pop = config["population"]
    assert (out / "population.npz").is_file() and pop["adults"]["images"]["fit"] >= 6
    assert "NIH, Shenzhen, Montgomery fit parts" in config["ood"]["fitted_on"]
    assert pop["routing"] in ("hard", "blend") and set(pop["routing_log_loss"]) == {"hard", "blend"}
    assert pop["adults"]["fit"]["adult_head_adults"] < pop["adults"]["fit"]["adults"]   # TB left out of the head
    assert "P(adult) threshold" in log
    a = json.loads((out / "metrics.json").read_text())["adult_transfer"]
    assert a["part"] == "report" and {"served", "pediatric_head"} <= set(a)
    assert any(k.startswith("Shenzhen") for k in a["hospitals"])


def test_metrics_json_has_every_reported_number(trained):
    m = json.loads((trained[0] / "metrics.json").read_text())
    for key in ("roc_auc", "pr_auc", "brier", "ece_15"):
        assert 0 <= m[key] <= 1
    for at in ("at_threshold", "at_0.5"):
        for key in ("accuracy", "precision", "sensitivity", "specificity", "f1", "confusion_matrix"):
            assert key in m[at]
    assert set(m["ci95_at_threshold"]) == {"accuracy", "sensitivity", "specificity", "roc_auc"}
    assert m["n"] == 12


def test_model_card_parses_and_matches_metrics(trained):
    out = trained[0]
    loaded = ModelCard.load(out / "README.md")
    # The segmenter learnt from CC BY-NC-SA masks: the folder says so in its licence.
    assert loaded.data.license == "cc-by-nc-sa-4.0" and "CC BY-NC-SA 4.0" in loaded.text
    assert "not a medical device" in loaded.text.lower()
    assert "CC BY 4.0" in loaded.text and "Limitations" in loaded.text
    metrics = json.loads((out / "metrics.json").read_text())
    expected = card.metric_values(metrics)
    got = {r.metric_type: r.metric_value for r in loaded.data.eval_results}
    for key, mtype, _ in card.CARD_METRICS:
        assert got[mtype] == pytest.approx(expected[key], abs=5e-5)


def test_evaluate_cli_reports_and_fails_cleanly(trained, tmp_path):
    out = trained[0]
    ok = subprocess.run([sys.executable, "-m", "pneumonia.report.evaluate", "--model", str(out),
                         "--data", str(DATA), "--limit", "3", "--bootstrap", "50"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "Test (6 images)" in ok.stdout and "Validity (test)" in ok.stdout
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["validity"]) == {"masks_from", "goals", "test", "validation", "silhouette"}
    assert {"swap_lungs_auc", "swap_surroundings_auc", "hidden_auc", "heat_in_lungs", "deletion", "road",
            "pointing_game"} <= set(m["validity"]["test"])
    assert {"validation", "test"} <= set(m["validity"]["silhouette"])
    only = subprocess.run([sys.executable, "-m", "pneumonia.report.evaluate", "--model", str(out), "--data", str(DATA),
                           "--validity-only", "--deletion", "3"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert only.returncode == 0, only.stderr[-2000:]
    assert "Validity (test)" in only.stdout and "Silhouette" in only.stdout
    assert json.loads((out / "metrics.json").read_text()) == m   # --validity-only writes nothing
    bad = subprocess.run([sys.executable, "-m", "pneumonia.report.evaluate", "--model", str(out),
                          "--data", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Missing folder" in bad.stderr and "Traceback" not in bad.stderr


def test_train_cli_names_a_missing_data_folder(tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "--data", str(tmp_path / "nope"), "--weights", "none",
                           "--segmenter", str(MODEL_DIR / "lungs.keras")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "Missing folder" in proc.stderr and "nope" in proc.stderr and "Traceback" not in proc.stderr


def test_temperature_comes_from_validation_and_its_stressed_copies(trained):
    out = trained[0]
    config = json.loads((out / "config.json").read_text())
    assert "stressed copies" in config["temperature_rule"]
    assert config["validation"]["stress_copies"] == 2
    assert 0 <= config["validation"]["auc_stressed"] <= 1
    history = json.loads((out / "history.json").read_text())
    assert all("val_auc_stressed" in row for row in history)


def test_validation_cli_compares_and_refits(trained, tmp_path):
    import shutil
    folder = tmp_path / "copy"
    shutil.copytree(trained[0], folder)
    before = json.loads((folder / "config.json").read_text())
    proc = subprocess.run([sys.executable, "-m", "pneumonia.report.validation", "--data", str(DATA),
                           str(folder), "--refit-temperature"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "validation ROC AUC" in proc.stdout and "stressed" in proc.stdout
    after = json.loads((folder / "config.json").read_text())
    assert after["refit"]["temperature_before"] == before["temperature"]
    # Same split, same stressed copies, same model: the refit reproduces training's fit
    # up to float16 caching of activations.
    assert after["temperature"] == pytest.approx(before["temperature"], rel=0.05)
    card.write_card(folder, after, json.loads((folder / "metrics.json").read_text()))
    text = ModelCard.load(folder / "README.md").text
    assert "refitted after training" in text and "stressed copies" in text
    bad = subprocess.run([sys.executable, "-m", "pneumonia.report.validation", "--data", str(tmp_path), str(folder)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Missing folder" in bad.stderr and "Traceback" not in bad.stderr


def test_exported_evaluation_measures_the_served_last_layer(trained, tmp_path):
    """A folder whose head.npz was refitted after export is measured through the
    exported network (pneumonia.report.exported_eval): its logits are the Keras
    model's while the layer is unchanged, and it keeps metrics.json's other sections."""
    import shutil

    from pneumonia.folder import read_config
    from pneumonia.report import evaluate, exported_eval
    from pneumonia.serve.lung_view import LungReader
    from pneumonia.train import data
    folder = tmp_path / "model"
    shutil.copytree(trained[0], folder)
    config = read_config(folder)
    images, _, _ = data.load_images(data.list_split(DATA, "test")[0])
    views, _, _, found = LungReader.exported(folder, config, "f32").read(images)
    net, _ = load_model_folder(folder)
    keras_logits = evaluate.keras_functions(net, config)[0](views[found])
    exported = exported_eval.exported_functions(folder, config)
    assert np.allclose(exported[0](views[found]), keras_logits, atol=0.05 + 0.02 * np.abs(keras_logits).max())
    before = json.loads((folder / "metrics.json").read_text())
    m = exported_eval.evaluate_exported(folder, DATA, bootstrap=50, n_deletion=3)
    assert m["measured_with"] == exported_eval.MEASURED_WITH and m["n"] == int(found.sum())
    assert {k for k in before if k not in m} == set() and "swap_lungs_auc" in m["validity"]["test"]
    assert "exported fp32 classifier" in (folder / "README.md").read_text()
