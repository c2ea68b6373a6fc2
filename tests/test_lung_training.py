"""The segmenter's training command, end to end on a tiny hand-made mask set."""
import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import DATA, ROOT

from pneumonia.train.lung_pairs import split


def make_mask_set(root, n_per=(6, 2, 4, 4), seed=0):
    """lung_masks' layout: images/, masks/ and labels.csv, with dark 'lungs' on a bright body."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(seed)
    kinds = [("Shenzhen", "adult", "CHNCXR"), ("Shenzhen", "pediatric", "CHNCXR"),
             ("Montgomery", "unknown", "MCUCXR"), ("COVID19RadiographyDB-ViralPneumonia(Kermany pediatric)",
                                                   "pediatric", "person")]
    rows, k = [], 0
    for (dataset, age, prefix), count in zip(kinds, n_per):
        for _ in range(count):
            k += 1
            mask = np.zeros((256, 256), np.uint8)
            for cx in (80, 176):
                cv2.ellipse(mask, (cx + int(rng.integers(-8, 8)), 128), (35, 80), 0, 0, 360, 255, -1)
            image = np.where(mask > 0, 60, 190).astype(np.float32) + rng.normal(0, 10, mask.shape)
            name = f"{prefix}_{k:04d}.png"
            cv2.imwrite(str(root / "images" / name), np.clip(image, 0, 255).astype(np.uint8))
            cv2.imwrite(str(root / "masks" / name), mask)
            rows.append({"file": name, "source_repo": "test", "source_path": name, "dataset": dataset,
                         "patient_id": f"{prefix}_{k:04d}", "age_group": age})
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def test_split_holds_out_children_and_adults_by_patient(tmp_path):
    rows = make_mask_set(tmp_path / "masks")
    parts = split(rows, seed=0)
    assert [rows[i]["age_group"] for i in parts["test_children"]] == ["pediatric", "pediatric"]
    assert all(rows[i]["dataset"] == "Shenzhen" for i in parts["test_children"])
    assert all(rows[i]["dataset"] in ("Shenzhen", "Montgomery") for i in parts["test_adults"])
    every = np.concatenate(list(parts.values()))
    assert sorted(every) == list(range(len(rows)))   # each image in exactly one part
    patients = [{rows[i]["patient_id"] for i in v} for v in parts.values()]
    assert all(a.isdisjoint(b) for i, a in enumerate(patients) for b in patients[i + 1:])
    assert split(rows, seed=0)["train"].tolist() == parts["train"].tolist()


def test_training_command_writes_a_segmenter_report_and_contact_sheet(tmp_path):
    make_mask_set(tmp_path / "masks")
    out = tmp_path / "lungs"
    proc = subprocess.run([sys.executable, "-m", "pneumonia.train.lung_training", "--data", str(tmp_path / "masks"),
                           "--out", str(out), "--epochs", "2", "--xrays", str(DATA)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "lungs_report.json").read_text())
    assert report["split"] == {"train": 11, "val": 1, "test_adults": 2, "test_children": 2}
    for part in ("test_adults", "test_children"):
        assert 0.0 <= report[part]["dice_mean"] <= 1.0 and report[part]["n"] == 2
    assert len(report["history"]) == 2 and report["best_epoch"] in (1, 2)
    assert report["contact_sheet"]["test_xrays"] == 120
    sheet = cv2.imread(str(out / "lungs_contact_sheet.jpg"))
    assert sheet.shape[0] == 3 * 224 and sheet.shape[1] == 8 * 224   # NORMAL, PNEUMONIA, stressed rows
    from pneumonia.train.segmenter import load_segmenter
    assert load_segmenter(out / "lungs.keras").probability(np.zeros((1, 224, 224), np.uint8)).shape == (1, 224, 224)


def test_training_command_names_a_missing_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pneumonia.train.lung_training", "--data", str(tmp_path / "nope")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "labels.csv" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--lung-view", "crop"], "needs --lung-masks"),
    (["--segmenter", "missing/lungs.keras"], "Lung segmenter not found"),
])
def test_train_cli_explains_a_missing_segmenter(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "train.py", "--data", str(DATA), "--weights", "none", "--limit", "2",
                           "--val-fraction", "0.5", "--out", str(tmp_path / "m"), "--no-eval", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
