"""What the command-line entry points share: a timestamped log line, the code's commit, and a known error as one line, not a traceback."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
import subprocess
import sys
import time

from pneumonia.serve.lungs import SegmenterError
from pneumonia.train.data import DataError
from pneumonia.train.model import ModelFolderError

USER_ERRORS = (DataError, ModelFolderError, SegmenterError, FileNotFoundError)


def run(action: Callable[[], object]) -> int:
    """Run `action`; a data or model-folder problem becomes "error: ..." on stderr and status 2."""
    try:
        action()
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def parser(doc: str | None, required: tuple[str, ...]) -> argparse.ArgumentParser:
    """A command's parser: its module docstring as help, each of `required` a required option."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in required:
        p.add_argument(flag, required=True)
    return p


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
