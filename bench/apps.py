"""What the benchmarks share: which app to start (this tree, the TensorFlow
variant, or any git revision side by side) and the server's readings from /proc."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each of a process's threads so far, by thread id (ended threads are gone)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = cpu_seconds_of(task / "stat")
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def cpu_seconds_of(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_names(pid: int) -> dict[int, str]:
    """Python thread names by thread id, from `py-spy dump` (optional: {} without py-spy).
    Threads it does not list are the runtimes' own (OpenVINO's workers)."""
    import re
    try:
        dump = subprocess.run(["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {int(t): name for t, name in re.findall(r'^Thread (\d+) \([a-z]+\): "(.*)"', dump, re.M)}


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


def first_answer(proc: subprocess.Popen, url: str, image: Path, t0: float, ssl_verify: bool = True,
                 timeout: float = 180):
    """A gradio_client Client once the app at `url` has answered `image` (started at
    perf_counter `t0`); raises if the process dies or `timeout` passes first."""
    from gradio_client import Client, handle_file
    while True:
        try:
            client = Client(url, verbose=False, ssl_verify=ssl_verify)
            client.predict(handle_file(str(image)), api_name="/predict")
            return client
        except Exception:
            if proc.poll() is not None or time.perf_counter() - t0 > timeout:
                raise RuntimeError("app did not start")
            time.sleep(0.2)

