import shutil

import numpy as np
import pytest
from conftest import DATA

from pneumonia.train import data


@pytest.mark.parametrize("name, patient", [
    ("person1000_bacteria_2931.jpeg", "person1000"),
    ("person1000_virus_1681.jpeg", "person1000"),
    ("IM-0629-0001-0002.jpeg", "IM-0629"),
    ("IM-0115-0001.jpeg", "IM-0115"),
    ("NORMAL2-IM-0383-0001.jpeg", "NORMAL2-IM-0383"),
    ("scan.png", "scan"),
])
def test_patient_id(name, patient):
    assert data.patient_id(name) == patient


def _names(n_patients=300, seed=0):
    rng = np.random.default_rng(seed)
    names, labels = [], []
    for p in range(n_patients):
        pneumonia = p % 4 != 0
        for k in range(rng.integers(1, 5)):
            names.append(f"person{p}_bacteria_{k}.jpeg" if pneumonia else f"IM-{p:04d}-000{k}.jpeg")
            labels.append(int(pneumonia))
    return names, np.asarray(labels)


def test_grouped_split_keeps_patients_apart_and_is_stratified():
    names, labels = _names()
    groups = [data.patient_id(n) for n in names]
    train, val = data.grouped_split(labels, groups, 0.15, seed=0)
    assert len(train) + len(val) == len(names)
    assert not {groups[i] for i in train} & {groups[i] for i in val}
    assert abs(len(val) / len(names) - 0.15) < 0.05
    assert abs(labels[val].mean() - labels.mean()) < 0.05


def test_grouped_split_is_seeded():
    names, labels = _names()
    groups = [data.patient_id(n) for n in names]
    a = data.grouped_split(labels, groups, 0.15, seed=1)
    b = data.grouped_split(labels, groups, 0.15, seed=1)
    c = data.grouped_split(labels, groups, 0.15, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_grouped_split_on_real_files():
    paths, labels = data.list_split(DATA, "train")
    groups = [data.patient_id(p.name) for p in paths]
    train, val = data.grouped_split(labels, groups, 0.25, seed=0)
    assert not {groups[i] for i in train} & {groups[i] for i in val}
    assert set(labels[val]) == {0, 1}


def test_list_split_reads_kaggle_layout():
    paths, labels = data.list_split(DATA, "test")
    assert len(paths) == 120 and labels.sum() == 60
    assert all(p.parent.name == ("PNEUMONIA" if y else "NORMAL") for p, y in zip(paths, labels))


def test_missing_split_folder_is_named(tmp_path):
    with pytest.raises(data.DataError, match="Missing folder: .*train"):
        data.list_split(tmp_path, "train")


def test_missing_and_empty_class_are_named(tmp_path):
    (tmp_path / "train" / "NORMAL").mkdir(parents=True)
    shutil.copy(next((DATA / "train" / "NORMAL").iterdir()), tmp_path / "train" / "NORMAL")
    with pytest.raises(data.DataError, match="Missing class folder: .*PNEUMONIA"):
        data.list_split(tmp_path, "train")
    (tmp_path / "train" / "PNEUMONIA").mkdir()
    (tmp_path / "train" / "PNEUMONIA" / "notes.txt").write_text("not an image")
    with pytest.raises(data.DataError, match=r"Empty class folder \(no images\): .*PNEUMONIA"):
        data.list_split(tmp_path, "train")


def test_unreadable_files_are_skipped_and_reported(tmp_path):
    good = sorted((DATA / "train" / "NORMAL").iterdir())[:2]
    bad = tmp_path / "IM-9999-0001.jpeg"
    bad.write_bytes(b"not a jpeg at all")
    images, kept, skipped = data.load_images([good[0], bad, good[1]])
    assert images.shape == (2, 224, 224) and images.dtype == np.uint8
    assert kept.tolist() == [0, 2]
    assert skipped[0][0] == bad and "not an image" in skipped[0][1]


def test_limit_per_class():
    paths, labels = data.list_split(DATA, "test")
    p, y = data.limit_per_class(paths, labels, 5, seed=0)
    assert len(p) == 10 and y.sum() == 5
