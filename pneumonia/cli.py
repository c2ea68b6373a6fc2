"""What the command-line entry points share: a known error is one line, not a traceback."""
from __future__ import annotations

import sys
from collections.abc import Callable

from .data import DataError
from .model import ModelFolderError
from .segmentation import SegmenterError

USER_ERRORS = (DataError, ModelFolderError, SegmenterError, FileNotFoundError)


def run(action: Callable[[], object]) -> int:
    """Run `action`; a data or model-folder problem becomes "error: ..." on stderr and status 2."""
    try:
        action()
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
