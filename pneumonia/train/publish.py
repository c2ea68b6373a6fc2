"""Publish to the Hugging Face Hub: a model folder to a model repo, or the app to a Space.

    python -m pneumonia.train.publish push DIR REPO_ID [--private]
    python -m pneumonia.train.publish deploy-space SPACE_ID [--private]

The token comes from HF_TOKEN or the cached `hf auth login`; HF_ENDPOINT
points the client at another Hub.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

from huggingface_hub import HfApi

from pneumonia.config import CARD_FILE, CONFIG_FILE, METRICS_FILE, MODEL_FILE, ROOT, SPACE_EXCLUDE, SPACE_FILES
from pneumonia.folder import ModelFolderError, read_config
from pneumonia.serve.hub import SERVED_PATTERNS, HubError, explain
from pneumonia.serve.runtime import ir_files

PUBLISHED_FILES = (MODEL_FILE, CONFIG_FILE, METRICS_FILE, CARD_FILE)


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
                       f"run python -m pneumonia.train.export --model {folder}")
    return folder


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
        raise explain(e, repo_id) from None
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
                                 ignore_patterns=SPACE_EXCLUDE,
                                 commit_message="Deploy the pneumonia X-ray demo")
    except Exception as e:
        raise explain(e, space_id) from None
    return info.commit_url, info.oid


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
