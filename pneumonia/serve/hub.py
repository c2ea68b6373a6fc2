"""The Hugging Face Hub as the app meets it: fetch the served model, or say clearly why not.

HF_ENDPOINT points the client at another Hub; publishing is `pneumonia.train.publish`.
"""
from __future__ import annotations

import os
from pathlib import Path

import httpx2
from huggingface_hub import set_client_factory, snapshot_download
from huggingface_hub.errors import (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled,
                                    RepositoryNotFoundError, RevisionNotFoundError)
# The library's own client (its request hooks), only given timeouts here.
from huggingface_hub.utils._http import default_client_factory

from pneumonia.config import CARD_FILE, CONFIG_FILE, HUB_CONNECT_TIMEOUT, HUB_READ_TIMEOUT, METRICS_FILE
from pneumonia.serve.guard import OOD_FILE
from pneumonia.serve.routing import POPULATION_FILE, READER_FILE
from pneumonia.serve.runtime import RUNTIME_FILES
from pneumonia.serve.subtypes import SUBTYPES_FILE

# What the app downloads: the exported networks and what it shows about them
# (the Keras files stay in the repo for training and evaluation, not for serving).
SERVED_PATTERNS = [*RUNTIME_FILES, CONFIG_FILE, METRICS_FILE, CARD_FILE, OOD_FILE, POPULATION_FILE, SUBTYPES_FILE,
                   READER_FILE]


class HubError(RuntimeError):
    """A Hub operation that failed for a reason the user can act on."""


def _offline() -> bool:
    """HF_HUB_OFFLINE set to a true value (as huggingface_hub reads it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def explain(e: Exception, repo_id: str) -> HubError:
    """A Hub failure as one message the user can act on."""
    if isinstance(e, (httpx2.ConnectError, httpx2.TimeoutException, OfflineModeIsEnabled)):
        return HubError(f"Could not reach the Hugging Face Hub ({e}). Check the network, or unset HF_HUB_OFFLINE.")
    if isinstance(e, HfHubHTTPError) and e.response is not None:
        status = e.response.status_code
        if status == 401:
            return HubError("No valid Hugging Face token: set HF_TOKEN or run `hf auth login` with a write token.")
        if status == 403:
            return HubError(f"This token cannot write to {repo_id}: the namespace belongs to someone else, "
                            "or the token is read-only.")
        return HubError(f"The Hub refused the request for {repo_id} (HTTP {status}): {e}")
    return HubError(f"Hub error for {repo_id}: {e}")


def _use_short_timeouts() -> None:
    """Fail fast when the Hub is unreachable, instead of httpx's no-timeout default."""
    def factory() -> httpx2.Client:
        client = default_client_factory()
        client.timeout = httpx2.Timeout(HUB_READ_TIMEOUT, connect=HUB_CONNECT_TIMEOUT)
        return client
    set_client_factory(factory)


def fetch_model(repo_id: str, revision: str | None = None) -> tuple[Path, str]:
    """Download (or reuse from the Hugging Face cache) a model folder.

    Returns (local folder, commit id). Respects HF_HUB_OFFLINE. Raises HubError
    when neither the Hub nor the cache can provide it.
    """
    _use_short_timeouts()
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=SERVED_PATTERNS,
                                        etag_timeout=HUB_CONNECT_TIMEOUT))
    except (RepositoryNotFoundError, RevisionNotFoundError) as e:
        raise HubError(f"{repo_id}@{revision or 'main'} was not found on the Hub ({type(e).__name__}).") from None
    except LocalEntryNotFoundError:
        if _offline():
            raise HubError(f"HF_HUB_OFFLINE is set and {repo_id} is not in the local cache.") from None
        raise HubError(f"The Hub could not be reached and {repo_id} is not in the local cache.") from None
    except Exception as e:
        raise explain(e, repo_id) from None
    return folder, folder.name
