"""The Hugging Face Hub: publish a model folder or the Space, fetch the served model.

    python -m pneumonia.hub push DIR REPO_ID [--private]
    python -m pneumonia.hub deploy-space SPACE_ID [--private]

The token comes from HF_TOKEN or the cached `hf auth login`; HF_ENDPOINT
points the client at another Hub.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import httpx2
from huggingface_hub import HfApi, set_client_factory, snapshot_download
from huggingface_hub.errors import (HfHubHTTPError, LocalEntryNotFoundError,
                                    OfflineModeIsEnabled, RepositoryNotFoundError,
                                    RevisionNotFoundError)
# The library's own client (its request hooks), only given timeouts here.
from huggingface_hub.utils._http import default_client_factory

from .config import (CARD_FILE, CONFIG_FILE, HUB_CONNECT_TIMEOUT, HUB_READ_TIMEOUT,
                     METRICS_FILE, MODEL_FILE, ROOT, SPACE_FILES)
from .folder import ModelFolderError, read_config
from .ood import OOD_FILE
from .routing import POPULATION_FILE
from .runtime import RUNTIME_FILES, ir_files

PUBLISHED_FILES = (MODEL_FILE, CONFIG_FILE, METRICS_FILE, CARD_FILE)
# What the app downloads: the exported networks and what it shows about them
# (the Keras files stay in the repo for training and evaluation, not for serving).
SERVED_PATTERNS = [*RUNTIME_FILES, CONFIG_FILE, METRICS_FILE, CARD_FILE, OOD_FILE, POPULATION_FILE]


class HubError(RuntimeError):
    """A Hub operation that failed for a reason the user can act on."""


def check_model_folder(folder: str | Path) -> Path:
    """A publishable model folder has the model, its config, metrics and card."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HubError(f"Not a folder: {folder}")
    try:
        config = read_config(folder, needs=PUBLISHED_FILES)
    except ModelFolderError as e:
        raise HubError(str(e)) from None
    lungs = config.get("lungs")
    if lungs and not (folder / lungs["file"]).is_file():
        raise HubError(f"{folder} is not a model folder: its config names the segmenter {lungs['file']}, "
                       "which is missing")
    missing = [f for f in ir_files(config) if not (folder / f).is_file()] if config.get("runtime") else ["runtime"]
    if missing:
        raise HubError(f"{folder} lacks the exported networks the app serves ({', '.join(missing)}): "
                       f"run python -m pneumonia.export --model {folder}")
    return folder


def _explain(e: Exception, repo_id: str) -> HubError:
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


def _commit_message(folder: Path) -> str:
    try:
        m = json.loads((folder / METRICS_FILE).read_text())
        t = m["at_threshold"]
        return (f"Upload model: test accuracy {t['accuracy']:.3f}, sensitivity {t['sensitivity']:.3f}, "
                f"specificity {t['specificity']:.3f}, ROC AUC {m['roc_auc']:.3f}")
    except (KeyError, ValueError, OSError):
        return "Upload model folder"


def push_folder(folder: str | Path, repo_id: str, private: bool = False,
                token: str | None = None) -> tuple[str, str]:
    """Create `repo_id` if needed and upload the whole model folder in one
    commit. Returns (commit URL, commit id)."""
    folder = check_model_folder(folder)
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message=_commit_message(folder),
                                 ignore_patterns=[".*", "__pycache__/*"])
    except Exception as e:  # every failure becomes one clear message
        raise _explain(e, repo_id) from None
    return info.commit_url, info.oid


def deploy_space(space_id: str, private: bool = False, token: str | None = None,
                 root: str | Path = ROOT) -> tuple[str, str]:
    """Upload the app (code, examples, committed model, README with the Space
    front matter) to a Gradio Space. Returns (commit URL, commit id)."""
    api = HfApi(token=token)
    try:
        api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=root, repo_id=space_id, repo_type="space",
                                 allow_patterns=SPACE_FILES + [f"model/{p}" for p in SERVED_PATTERNS],
                                 commit_message="Deploy the pneumonia X-ray demo")
    except Exception as e:
        raise _explain(e, space_id) from None
    return info.commit_url, info.oid


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
        raise HubError(f"The Hub could not be reached and {repo_id} is not in the local cache.") from None
    except Exception as e:
        raise _explain(e, repo_id) from None
    return folder, folder.name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    push = sub.add_parser("push", help="upload a model folder to a model repo")
    push.add_argument("folder")
    push.add_argument("repo_id")
    push.add_argument("--private", action="store_true")
    space = sub.add_parser("deploy-space", help="upload the app to a Gradio Space")
    space.add_argument("space_id")
    space.add_argument("--private", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.command == "push":
            url, oid = push_folder(args.folder, args.repo_id, args.private)
        else:
            url, oid = deploy_space(args.space_id, args.private)
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Committed {oid}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
