"""Report a model folder on the test split: metrics.json, figures, model card.

    python -m pneumonia.evaluate --model model --data path/to/chest_xray

The threshold and temperature come from the folder's config (fitted on
validation); the test split is only read here, never used to choose anything.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


from . import card, cli, data, figures
from .calibration import sigmoid
from .config import HISTORY_FILE, METRICS_FILE
from .metrics import evaluate_probs
from .model import grey_to_rgb, load_model_folder
from .training import log, predict_logits


def evaluate_folder(model_dir: str | Path, data_dir: str | Path, limit: int | None = None,
                    seed: int = 0, bootstrap: int = 2000) -> dict:
    folder = Path(model_dir)
    net, config = load_model_folder(folder)
    paths, labels = data.list_split(data_dir, "test")
    paths, labels = data.limit_per_class(paths, labels, limit, seed)
    images, kept, skipped = data.load_images(paths)
    labels = labels[kept]
    log(f"Evaluating on {len(kept)} test images ({len(skipped)} unreadable skipped)")
    logits = predict_logits(net, grey_to_rgb(images), batch_size=32)
    probs = sigmoid(logits / config["temperature"])
    metrics = evaluate_probs(labels, probs, config["threshold"], bootstrap, seed)
    metrics.update({"split": "test", "data_dir_name": Path(data_dir).name,
                    "threshold_source": config.get("threshold_rule", "config"),
                    "temperature": config["temperature"], "limit_per_class": limit})
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    history_path = folder / HISTORY_FILE
    history = json.loads(history_path.read_text()) if history_path.is_file() else None
    figures.write_all(folder, labels, probs, metrics, history)
    card.write_card(folder, config, metrics)
    summary(metrics)
    return metrics


def summary(metrics: dict) -> None:
    t, ci = metrics["at_threshold"], metrics["ci95_at_threshold"]
    log(f"Test ({metrics['n']} images) at threshold {t['threshold']:.3f}: "
        f"accuracy {t['accuracy']:.4f} [{ci['accuracy'][0]:.3f}, {ci['accuracy'][1]:.3f}], "
        f"sensitivity {t['sensitivity']:.4f}, specificity {t['specificity']:.4f}, "
        f"F1 {t['f1']:.4f}; ROC AUC {metrics['roc_auc']:.4f}, PR AUC {metrics['pr_auc']:.4f}, "
        f"Brier {metrics['brier']:.4f}, ECE {metrics['ece_15']:.4f}")
    h = metrics["at_0.5"]
    log(f"At 0.5: accuracy {h['accuracy']:.4f}, sensitivity {h['sensitivity']:.4f}, "
        f"specificity {h['specificity']:.4f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder (model.keras + config.json)")
    p.add_argument("--data", required=True, help="dataset folder holding test/NORMAL and test/PNEUMONIA")
    p.add_argument("--limit", type=int, default=None, help="at most N test images per class")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the 95%% intervals")
    args = p.parse_args(argv)
    return cli.run(lambda: evaluate_folder(args.model, args.data, args.limit, bootstrap=args.bootstrap))


if __name__ == "__main__":
    sys.exit(main())
