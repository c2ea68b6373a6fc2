"""What the benchmarks share: which app to start (this tree, the TensorFlow
variant, or any git revision side by side) and the server's readings from /proc."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def app_dir(app: str, keep: list) -> tuple[Path, str, dict]:
    """Where an app's app.py lives, the script that serves it, and its
    environment: this tree ("served"; "served@int8" forces that precision;
    "keras" through TensorFlow, with the launcher that plugs it in), or a git
    revision checked out into a temporary worktree (removed by `cleanup(keep)`)."""
    name, _, precision = app.partition("@")
    extra = {"PNEUMONIA_RUNTIME": "openvino", "PNEUMONIA_PRECISION": precision}
    if name in ("served", "keras"):
        return ROOT, "bench/keras_app.py" if name == "keras" else "app.py", extra
    tmp = tempfile.mkdtemp(prefix="pneumonia-bench-")
    subprocess.run(["git", "worktree", "add", "--detach", tmp, name], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    keep.append(tmp)
    return Path(tmp), "app.py", extra


def cleanup(keep: list) -> None:
    for tmp in keep:
        subprocess.run(["git", "worktree", "remove", "--force", tmp], cwd=ROOT, check=False)
