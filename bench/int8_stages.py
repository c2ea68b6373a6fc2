"""Which of ResNet50's stages carries int8's error? Each stage quantised alone
(the others left in float), and each left in float alone (the others
quantised), measured against the fp32 export on training-part lung views that
calibration did not use (so validation, where `pneumonia.train.quantize`
chooses, stays untouched by this scan).

    python bench/int8_stages.py --model model --data path/to/chest_xray [--views 300]

Prints, per variant, the numbers of `config.PRECISION_BAR` (decisions, ROC
AUC difference, Grad-CAM correlation mean / 1st percentile, 99th percentile of
the P(PNEUMONIA) change). For designing the candidates of
`config.INT8_FLOAT_STAGES`; it chooses nothing itself.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pneumonia.calibration import decision_logit  # noqa: E402
from pneumonia.folder import read_config  # noqa: E402
from pneumonia.serve.runtime import Network, core  # noqa: E402
from pneumonia.train.quantize import STAGE_SIZES, agreement, answers, conv_block, float_layers, head_of, views_for  # noqa: E402


def main() -> None:
    import nncf
    import openvino as ov
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "model"))
    p.add_argument("--data", required=True)
    p.add_argument("--views", type=int, default=300, help="calibration views, and as many held-out ones")
    args = p.parse_args()
    folder = Path(args.model)
    config = read_config(folder)
    rt = config["runtime"]
    views, _, _ = views_for(folder, config, args.data)   # training-part views only: calibration, then held out
    half = len(views) // 2    # views_for puts the clean views first, their stressed copies second
    calib = np.concatenate([views[:args.views // 2], views[half:half + args.views // 2]])
    held = np.concatenate([views[args.views // 2:args.views], views[half + args.views // 2:half + args.views]])
    head = head_of(folder, config)
    reference = answers(conv_block(Network(folder / rt["classifier"], "f32"), held), head)
    # No labels on this scan's purpose: the reference's own decisions stand in (AUC against them).
    labels = (reference[0] >= decision_logit(head[2], head[3])).astype(int)
    model = core().read_model(str(folder / rt["classifier"]))
    dataset = nncf.Dataset([calib[i:i + 1] for i in range(len(calib))])
    stages = list(STAGE_SIZES)
    variants = [(f"only {s} int8", tuple(x for x in stages if x != s), True) for s in stages] + \
               [(f"all but {s} int8", (s,), True) for s in stages] + [("all int8", (), True),
                                                                        ("all int8, full bias correction", (), False),
                                                                        ("all but conv1, full bias correction", ("conv1",), False)]
    print(f"{len(calib)} calibration views, {len(held)} held-out training-part views (clean and stressed)\n")
    print("| variant | decisions agree | AUC diff (vs fp32 decisions) | CAM mean / 1st pct | dP 99th / max |")
    print("|---|---|---|---|---|")
    out = folder / "int8_scan.xml"
    try:
        for name, in_float, fast in variants:
            q = nncf.quantize(model.clone(), dataset, subset_size=len(calib), fast_bias_correction=fast,
                              ignored_scope=nncf.IgnoredScope(names=float_layers(model, in_float), validate=False))
            ov.save_model(q, str(out), compress_to_fp16=True)
            m = agreement(reference, conv_block(Network(out, "f32"), held), labels, head)
            print(f"| {name} | {m['decisions_agree']:.2%} | {m['auc_diff']:+.4f} | {m['cam_mean']:.4f} / "
                  f"{m['cam_p1']:.4f} | {m['dp_p99']:.4f} / {m['dp_max']:.4f} |", flush=True)
    finally:
        out.unlink(missing_ok=True)
        out.with_suffix(".bin").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
