"""Fine-tune ImageNet ResNet50 on Chest X-Ray Images (Pneumonia), then report it.

    python train.py --data path/to/chest_xray --segmenter lungs.keras --out runs/model

DATA holds the Kaggle layout: train/{NORMAL,PNEUMONIA} and test/{NORMAL,PNEUMONIA}
(a val/ folder, if present, is ignored: validation is carved out of train,
grouped by patient). By default the classifier reads the lungs only: pass
--lung-masks (a lung_masks folder, to train the segmenter first) or
--segmenter (a trained lungs.keras). Writes a model folder: model.keras,
lungs.keras (the segmenter), config.json, history.json, the
chest-X-ray guard ood.npz (with --adults also population.npz: the population
score and the adult head), subtypes.npz (bacterial or viral; with
--hospitals, tuberculosis signs), metrics.json, figures, the model card README.md,
and the networks exported for serving (classifier.xml/.bin, lungs.xml/.bin,
head.npz: OpenVINO, forward only; classifier.int8.xml/.bin where int8 keeps
the answers: pneumonia.train.quantize).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pneumonia.config import LUNG_VARIANTS, SEGMENTER_FILE
from pneumonia.train.data import DataError
from pneumonia.train.model import STAGES
from pneumonia.serve.lungs import SegmenterError
from pneumonia.train.cli import log
from pneumonia.train.devices import PRECISIONS
from pneumonia.train.phases import EpochHook
from pneumonia.train.training import TrainOptions, train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = TrainOptions(data_dir="")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset folder (Kaggle layout)")
    p.add_argument("--out", default=d.out_dir, help="model folder to write (default %(default)s)")
    p.add_argument("--weights", default="imagenet",
                   help="'imagenet' (Keras download), 'none', or a ResNet50 notop .h5 file")
    p.add_argument("--head-epochs", type=int, default=d.head_epochs, help="phase 1 epochs (head only)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="phase 2 epochs (fine-tuning)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--fine-tune-from", default=d.fine_tune_from, choices=list(STAGES)[1:],
                   help="first ResNet50 stage to fine-tune (default %(default)s)")
    p.add_argument("--views", type=int, default=d.views, help="augmented views cached per training image")
    p.add_argument("--stress-copies", type=int, default=d.stress_copies,
                   help="stressed copies per validation image, for the temperature (default %(default)s)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--lr", type=float, default=d.lr, help="fine-tuning learning rate")
    p.add_argument("--head-lr", type=float, default=d.head_lr)
    p.add_argument("--lung-view", default=d.lung_view, choices=list(LUNG_VARIANTS),
                   help="what the classifier reads: the lungs' box, the box with the rest blacked out or "
                        "blurred, or the whole image (default %(default)s)")
    p.add_argument("--lung-dilation", type=float, default=d.lung_dilation,
                   help="how far the lung mask is grown, as a fraction of the image side (default %(default)s)")
    p.add_argument("--precision", default=d.precision, choices=["auto", *PRECISIONS],
                   help="compute precision while training; auto: mixed_float16 on a GPU, mixed_bfloat16 on a "
                        "CPU with bf16 instructions, else float32 (weights and the saved model stay float32; "
                        "default %(default)s)")
    p.add_argument("--lung-masks", metavar="DIR", help="lung_masks folder: train the segmenter first, into --out")
    p.add_argument("--segmenter", metavar="FILE", help="an already trained lungs.keras (instead of --lung-masks)")
    p.add_argument("--seg-epochs", type=int, default=16, help="segmenter epochs with --lung-masks")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--limit", type=int, default=None, help="at most N images per class and split (smoke runs)")
    p.add_argument("--no-eval", action="store_true", help="skip the test-split report")
    p.add_argument("--adults", metavar="DIR", help="adult_cxr folder: fit the guard on children and adults, "
                   "the population score and the adult head (pneumonia.train.population), and report adults")
    p.add_argument("--hospitals", metavar="DIR", help="lung_masks folder (with --adults): Shenzhen's and "
                   "Montgomery's X-rays join P(adult) and the adult head, and are reported")
    p.add_argument("--push-to-hub", metavar="REPO_ID", default=None, help="upload the model folder to the Hub")
    p.add_argument("--private", action="store_true", help="create the Hub repo as private")
    return p.parse_args(argv)


def main(argv: list[str] | None = None, on_epoch: EpochHook | None = None) -> int:
    """The command; `on_epoch` sees each training epoch's row as it comes (the notebook draws the curves)."""
    args = parse_args(argv)
    if args.lung_view != "full" and not (args.lung_masks or args.segmenter):
        print("error: a lung view needs --lung-masks DIR (to train the segmenter) or --segmenter FILE",
              file=sys.stderr)
        return 2
    opts = TrainOptions(
        data_dir=args.data, out_dir=args.out,
        weights=None if args.weights.lower() == "none" else args.weights,
        head_epochs=args.head_epochs, epochs=args.epochs, batch_size=args.batch_size,
        fine_tune_from=args.fine_tune_from, views=args.views, stress_copies=args.stress_copies, val_fraction=args.val_fraction,
        head_lr=args.head_lr, lr=args.lr, seed=args.seed, limit=args.limit,
        segmenter=args.segmenter, lung_view=args.lung_view, lung_dilation=args.lung_dilation,
        precision=args.precision,
    )
    try:
        if args.lung_view != "full" and args.lung_masks:
            from pneumonia.train.lung_training import SHEET_FILE, contact_sheet, train_segmenter
            seg, _ = train_segmenter(args.lung_masks, args.out, args.seg_epochs, seed=args.seed, log=log)
            if not args.no_eval:
                contact_sheet(seg, args.data, Path(args.out) / SHEET_FILE)
            opts.segmenter = str(Path(args.out) / SEGMENTER_FILE)
        folder = train(opts, on_epoch)
        if args.adults:  # the guard on children and adults, the population score, the adult head
            from pneumonia.train.population import fit_folder
            fit_folder(folder, args.data, args.adults, args.hospitals)
        else:
            from pneumonia.train.guard_fit import fit_folder
            fit_folder(folder, args.data)
        # The heads under the answer: bacterial or viral; with --hospitals, tuberculosis signs.
        from pneumonia.train.subtypes import fit_folder as fit_subtypes
        fit_subtypes(folder, args.data, args.hospitals)
        if not args.no_eval:
            from pneumonia.report.evaluate import evaluate_folder
            evaluate_folder(folder, args.data, args.limit, adults_dir=args.adults, hospitals_dir=args.hospitals)
        from pneumonia.train.export import export_folder  # what the app serves: forward-only networks
        export_folder(folder)
        from pneumonia.train.quantize import quantize_folder  # int8, kept only if it keeps the answers
        quantize_folder(folder, args.data)
    except (DataError, FileNotFoundError, SegmenterError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.push_to_hub:
        from pneumonia.serve.hub import HubError
        from pneumonia.train.publish import push_folder
        try:
            url = push_folder(folder, args.push_to_hub, private=args.private)
        except HubError as e:
            print(f"error: {e}", file=sys.stderr)
            return 3
        log(f"Pushed to {url}")
    log(f"Done: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
