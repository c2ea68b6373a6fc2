"""The report on your labels for the page: the archive report
(`pneumonia.report.archive`, the model card's code) with its figures inline,
so the page can show it as it is, and its files to download."""
from __future__ import annotations

import base64
from pathlib import Path
import re


def labelled_report(folder: str | Path, labels_csv: str | Path) -> tuple[str, list[str]]:
    """(report.html's body with its PNGs as data URIs, [report.html, report.json]).
    Raises pneumonia.report.archive.LabelsError (a ValueError) for a labels file it cannot read."""
    from pneumonia.report.archive import write_report   # scikit-learn and matplotlib: only when asked
    folder = Path(folder)
    page = write_report(folder, labels_csv)
    body = re.search(r"<body>(.*)</body>", page.read_text(), re.S).group(1)

    def inline(m: re.Match) -> str:
        data = base64.b64encode((folder / m.group(1)).read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'
    body = re.sub(r'src="([\w.-]+\.png)"', inline, body)
    return body, [str(page), str(folder / "report.json")]
