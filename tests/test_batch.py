"""Scoring an archive from the command line (`python -m pneumonia.batch`): a folder,
a zip and a CSV of files; the answers as the app gives them; a bad file a row
with its reason; a second run resumes; Ctrl-C leaves the files whole."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from conftest import EXAMPLES, MODEL_DIR, ROOT

from pneumonia.batch.answers import Answers
from pneumonia.batch.inputs import ArchiveError, items

XRAYS = sorted(EXAMPLES.glob("*.jp*g")) + sorted(EXAMPLES.glob("ADULT*.png"))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def cli(*args: str, timeout: int = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pneumonia.batch", *args, "--model", str(MODEL_DIR), "--quiet"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout, **kw)


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A folder as people keep them: X-rays in subfolders, one file that is no image, one text file."""
    root = tmp_path_factory.mktemp("archive")
    for i, path in enumerate(XRAYS):
        (root / ("adults" if path.name.startswith("ADULT") else "children")).mkdir(exist_ok=True)
        shutil.copy(path, root / ("adults" if path.name.startswith("ADULT") else "children") / path.name)
    (root / "children" / "scan.png").write_text("not an x-ray")
    (root / "notes.txt").write_text("not listed: not an image suffix")
    return root


def test_a_folder_is_answered_as_the_app_answers_each_xray(archive, tmp_path, shipped_served):
    out = tmp_path / "out"
    proc = cli(str(archive), "--out", str(out), "--overlays")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = read_csv(out / "answers.csv")
    records = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert [r["file"] for r in rows] == [r["file"] for r in records] == [it.name for it in items(archive)]
    assert len(rows) == len(XRAYS) + 1 and not any(r["file"].endswith(".txt") for r in rows)
    bad = next(r for r in rows if r["file"] == "children/scan.png")
    assert bad["answered"] == "False" and bad["reason"] == "not_an_image" and "not an image" in bad["message"]
    for record in records:
        if not record["answered"]:
            continue
        path = archive / record["file"]
        alone = shipped_served.predictor.analyze(path)   # the app's path, one X-ray at a time
        assert record["decision"] == alone["decision"], record["file"]
        assert abs(record["probability_pneumonia"] - alone["probability_pneumonia"]) < 0.02, record["file"]
        assert record["threshold"] == pytest.approx(alone["threshold"], abs=0.02)
        assert (out / "overlays" / (record["file"].replace("/", "__") + ".jpg")).stat().st_size > 5000
    assert "answered" in proc.stderr and "/s" in proc.stderr


def test_a_zip_and_a_csv_name_the_same_xrays(archive, tmp_path):
    zipped = tmp_path / "films.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for path in sorted(archive.rglob("*.png")):
            z.write(path, path.relative_to(archive).as_posix())
    listed = tmp_path / "films.csv"
    listed.write_text("file,site\n" + "".join(f"{p},{i % 2}\n" for i, p in enumerate(sorted(archive.rglob("*.png")))))
    a, b = [it.name for it in items(zipped)], items(listed)
    assert a == sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*.png"))
    assert [it.read() for it in b] == [p.read_bytes() for p in sorted(archive.rglob("*.png"))]
    for bad, why in ((tmp_path / "none", "does not exist"), (archive / "notes.txt", "not a folder"),
                     (tmp_path / "x.csv", "no 'file' column")):
        if bad.suffix == ".csv":
            bad.write_text("path\na.png\n")
        with pytest.raises(ArchiveError, match=why):
            items(bad)
    proc = cli(str(tmp_path / "none"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_a_second_run_resumes_and_a_cut_line_is_dropped(archive, tmp_path):
    out = tmp_path / "out"
    first = sorted(archive.rglob("*.jp*g"))[:3]
    part = archive / "part.csv"   # names relative to the folder, as a run over the folder names them
    part.write_text("file\n" + "".join(f"{p.relative_to(archive).as_posix()}\n" for p in first))
    assert cli(str(part), "--out", str(out)).returncode == 0
    part.unlink()
    # a run killed mid-line: the cut line goes, the CSV follows the JSON lines
    with open(out / "answers.jsonl", "a") as f:
        f.write('{"file": "cut')
    answers = Answers(out)
    assert len(answers.done) == 3 and len(read_csv(out / "answers.csv")) == 3
    answers.close()
    proc = cli(str(archive), "--out", str(out))
    assert proc.returncode == 0 and f"{len(XRAYS) + 1} X-rays" in proc.stderr and "3 answered before" in proc.stderr
    again = cli(str(archive), "--out", str(out))
    assert again.returncode == 0 and f"{len(XRAYS) + 1} answered before, 0 to go" in again.stderr
    rows = read_csv(out / "answers.csv")
    assert len(rows) == len(XRAYS) + 1 and len({r["file"] for r in rows}) == len(rows)


def test_on_ray_two_local_workers_write_the_same_files(archive, tmp_path):
    """--ray in local mode: Ray Data maps the batches over two workers, each
    holding the model; the files equal one machine's, a second run resumes."""
    alone, on_ray = tmp_path / "alone", tmp_path / "ray"
    assert cli(str(archive), "--out", str(alone)).returncode == 0
    part = archive / "first.csv"
    part.write_text("file\n" + "".join(f"{it.name}\n" for it in items(archive)[:2]))
    proc = cli(str(part), "--out", str(on_ray), "--ray", "--workers", "2", "--batch-size", "2")
    part.unlink()
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = cli(str(archive), "--out", str(on_ray), "--ray", "--workers", "2", "--batch-size", "2")
    assert proc.returncode == 0 and "2 answered before" in proc.stderr, proc.stderr[-3000:]
    a, b = read_csv(alone / "answers.csv"), read_csv(on_ray / "answers.csv")
    assert [r["file"] for r in b] == [r["file"] for r in a]
    for x, y in zip(a, b):   # batches are cut elsewhere: the same answers, floats to rounding
        assert {k: x[k] for k in ("answered", "decision", "reason", "answered_by")} == \
            {k: y[k] for k in ("answered", "decision", "reason", "answered_by")}, x["file"]
        if x["probability_pneumonia"]:
            assert float(x["probability_pneumonia"]) == pytest.approx(float(y["probability_pneumonia"]), abs=1e-3)
    bad = next(r for r in read_csv(on_ray / "answers.csv") if r["file"] == "children/scan.png")
    assert bad["reason"] == "not_an_image"


def test_ctrl_c_leaves_whole_files_and_the_next_run_finishes(tmp_path):
    many = tmp_path / "many"
    many.mkdir()
    for i in range(120):
        shutil.copy(XRAYS[i % len(XRAYS)], many / f"{i:03d}{XRAYS[i % len(XRAYS)].suffix}")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "pneumonia.batch", str(many), "--out", str(out), "--model",
                             str(MODEL_DIR), "--quiet", "--batch-size", "4"], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not ((out / "answers.jsonl").exists() and
                                          len((out / "answers.jsonl").read_text().splitlines()) >= 8):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    lines = (out / "answers.jsonl").read_text().splitlines()
    assert 8 <= len(lines) < 120 and all(json.loads(line)["file"] for line in lines)   # whole lines only
    assert len(read_csv(out / "answers.csv")) == len(lines)
    assert "stopped by Ctrl-C" in err
    assert cli(str(many), "--out", str(out)).returncode == 0
    rows = read_csv(out / "answers.csv")
    assert [r["file"] for r in rows] == sorted(r["file"] for r in rows) and len(rows) == 120
    assert np.mean([r["answered"] == "True" for r in rows]) > 0.8


def test_labels_give_a_report_on_your_data_from_the_model_cards_code(archive, tmp_path):
    """--labels: report.json's numbers are pneumonia.metrics' on the answered X-rays at
    each one's served threshold, for all and per group; report.html shows the figures."""
    from pneumonia.metrics import evaluate_probs
    from pneumonia.report.archive import LabelsError, read_labels
    labels = tmp_path / "labels.csv"
    names = [it.name for it in items(archive)]
    truth = {n: "PNEUMONIA" if "PNEUMONIA" in n or "pneumonia" in n or n.endswith("_1.png") else "NORMAL"
             for n in names}
    labels.write_text("file,label,site\n" + "".join(f"{n},{truth[n]},{'x' if i % 2 else 'y'}\n"
                                                     for i, n in enumerate(names)))
    out = tmp_path / "out"
    proc = cli(str(archive), "--out", str(out), "--labels", str(labels))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rep = json.loads((out / "report.json").read_text())
    records = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    said = [r for r in records if r["answered"] and r["decision"] != "UNCERTAIN"]   # "can't tell" counted apart
    y = np.array([truth[r["file"]] == "PNEUMONIA" for r in said], int)
    direct = evaluate_probs(y, np.array([r["probability_pneumonia"] for r in said]),
                            np.array([r["threshold"] for r in said]))
    got = rep["all"]["metrics"]
    assert got["roc_auc"] == direct["roc_auc"] and got["at_threshold"] == direct["at_threshold"]
    unsure = sum(r["decision"] == "UNCERTAIN" for r in records)
    assert rep["all"]["refused"] == pytest.approx(1 / len(records))
    assert rep["all"]["cant_tell"] == pytest.approx(unsure / len(records)) and unsure >= 1   # the NIH pneumonia
    assert set(rep["groups"]) == {"site = x", "site = y"}
    assert sum(g["films"] for g in rep["groups"].values()) == len(records)
    page = (out / "report.html").read_text()
    assert "How the model does on your data" in page and page.count("<img") == 4
    assert all((out / f).stat().st_size > 5000 for f in ("report_roc.png", "report_pr.png"))
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\na.png,maybe\n")
    with pytest.raises(LabelsError, match="NORMAL/PNEUMONIA or 0/1"):
        read_labels(bad)


def test_an_uploaded_zip_is_unpacked_within_bounds(tmp_path):
    from pneumonia.batch.inputs import unpack_zip
    zipped = tmp_path / "x.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for i, path in enumerate(XRAYS[:3]):
            z.write(path, f"d/{i}{path.suffix}")
        z.writestr("notes.txt", "not an X-ray")
        z.writestr("__MACOSX/d/._0.jpeg", b"resource fork")
    pairs = unpack_zip(zipped)
    assert [n for n, _ in pairs] == [f"d/{i}{p.suffix}" for i, p in enumerate(XRAYS[:3])]
    assert all(open(f, "rb").read() == p.read_bytes() for (_, f), p in zip(pairs, XRAYS[:3]))
    with pytest.raises(ArchiveError, match="more than 2"):
        unpack_zip(zipped, max_files=2)            # refused before anything is written
    with pytest.raises(ArchiveError, match="not a readable zip"):
        (tmp_path / "bad.zip").write_text("no")
        unpack_zip(tmp_path / "bad.zip")
