"""The answer files of an archive run, written one X-ray at a time so that a
stopped run leaves them valid and a second run over the same folder resumes.

`answers.jsonl`: one line per X-ray, `{"file": ..., **details}` (the JSON the
API gives). `answers.csv`: the same X-rays, one row each, the fields people
sort and filter by. The JSON lines are the record: on resume, a line cut off
by a killed run is dropped and the CSV is written again from the lines.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

CSV_FIELDS = ("file", "answered", "decision", "probability_pneumonia", "threshold", "answered_by", "opaque_lung",
              "reason", "message", "pneumonia_type", "tuberculosis")


def row(record: dict) -> dict:
    """The CSV row of one answer record."""
    refusal = record.get("refusal") or {}
    under = {k: (record.get(k) or {}).get("decision") for k in ("pneumonia_type", "tuberculosis")}
    return {"file": record["file"], "answered": record["answered"], "decision": record.get("decision"),
            "probability_pneumonia": record.get("probability_pneumonia"), "threshold": record.get("threshold"),
            "answered_by": record.get("answered_by"),
            # The side of a lung the density rule found opaque (it raised the answer), else empty.
            "opaque_lung": (record.get("opacity") or {}).get("side"), "reason": refusal.get("reason"),
            "message": refusal.get("message"), **under}


class Answers:
    """The answer files in `folder`: what is done, and adding one answer."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.jsonl, self.csv = self.folder / "answers.jsonl", self.folder / "answers.csv"
        records = self._read()
        self.done = {r["file"] for r in records}
        with open(self.csv, "w", newline="") as f:   # the CSV follows the record
            writer = csv.DictWriter(f, CSV_FIELDS)
            writer.writeheader()
            writer.writerows(row(r) for r in records)
        self._jsonl = open(self.jsonl, "a")
        self._csv_file = open(self.csv, "a", newline="")
        self._csv = csv.DictWriter(self._csv_file, CSV_FIELDS)

    def _read(self) -> list[dict]:
        if not self.jsonl.exists():
            return []
        records, good = [], 0
        with open(self.jsonl, "rb") as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    break   # cut off by a killed run: everything from here is written again
                good += len(line)
        with open(self.jsonl, "r+b") as f:
            f.truncate(good)
        return records

    def add(self, name: str, details: dict) -> None:
        record = {"file": name, **details}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        self._csv.writerow(row(record))
        self._csv_file.flush()
        self.done.add(name)

    def close(self) -> None:
        self._jsonl.close()
        self._csv_file.close()

    def records(self) -> list[dict]:
        """Every answer written so far, in order."""
        self._jsonl.flush()
        return self._read()
