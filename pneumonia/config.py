"""The project's settings, in one place."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Model input: RGB pixels in [0, 255] at this size; ResNet50's own
# preprocessing runs inside the saved graph.
IMAGE_SIZE = 224
CLASS_NAMES = ("NORMAL", "PNEUMONIA")
POSITIVE_CLASS = "PNEUMONIA"

# Keras's ResNet50 "caffe" preprocessing: RGB -> BGR, minus the ImageNet mean.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)

# Grad-CAM target: the backbone's last convolutional block.
LAST_CONV_LAYER = "conv5_block3_out"
# Training caches activations up to here and fine-tunes what comes after.
CACHE_LAYER = "conv4_block6_out"

# Lung segmentation: the segmenter reads the canonical 224 image shrunk to
# this size (a small fraction of the classifier's cost), its probability map
# is brought back to 224 and post-processed there.
SEG_SIZE = 128
SEG_WIDTH = 8             # filters of the U-Net's first level (doubling per level); 16 doubled the time
SEGMENTER_FILE = "lungs.keras"
NO_LUNGS = "No lung fields found: upload a frontal chest X-ray"
# What the classifier sees of the lungs (pneumonia.serve.lung_view): "full" (the
# whole image, the earlier models), "crop" (the lungs' bounding box with a
# margin) or "crop+mask" (the same, with everything outside the dilated lung
# mask set to black) or "crop+blur" (the same, with the outside blurred
# instead of blacked out: coarse context kept, no sharp outline, no fine
# detail). Margin, dilation and blur are fractions of the box / image side.
LUNG_VARIANTS = ("full", "crop", "crop+mask", "crop+blur")
LUNG_VIEW = "crop+blur"   # the shipped model's, named by SCREEN_RULE and TRAIN_RULE (6)
LUNG_MARGIN = 0.08
LUNG_DILATION = 0.04
LUNG_BLUR = 0.04          # "crop+blur": Gaussian sigma outside the dilated lungs
# The rules that choose every model, written before the runs they judge: pneumonia.rules.
# The validity terms that choose a model under TRAIN_RULE (6): what the model uses (the swap test).
RELIANCE_TESTS = ("swap_lungs_auc", "swap_surroundings_auc")

# Files of a model folder.
MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
CARD_FILE = "README.md"

# The embedded default model, committed in the repo.
EMBEDDED_MODEL_DIR = ROOT / "model"

# Operating point rule, applied on the validation split only.
TARGET_SENSITIVITY = 0.95
# Stressed copies of each validation image (pneumonia.train.augment.stressed): the
# temperature is fitted on them with the clean ones, and models are compared on them.
STRESS_COPIES = 2
TEMPERATURE_RULE = ("minimises NLL on the validation split plus {copies} stressed copies "
                    "of each of its images (pneumonia.augment.stressed)")

# Dataset attribution (CC BY 4.0), shown wherever its images are used.
DATASET_CITATION = (
    'Kermany, Daniel; Zhang, Kang; Goldbaum, Michael (2018), "Labeled Optical '
    "Coherence Tomography (OCT) and Chest X-Ray Images for Classification\", "
    "Mendeley Data, V2, doi:10.17632/rscbjbr9sj.2, licensed CC BY 4.0. "
    "Distributed on Kaggle as \"Chest X-Ray Images (Pneumonia)\" "
    "(paultimothymooney/chest-xray-pneumonia)."
)
DATASET_PAPER = (
    'Kermany et al., "Identifying Medical Diagnoses and Treatable Diseases by '
    'Image-Based Deep Learning", Cell 172(5), 2018.'
)
DISCLAIMER = (
    "Research demo, not a medical device. It must not be used to diagnose, "
    "treat or triage anyone. Its outputs have not been clinically validated."
)

# The Hub repo the app serves by default, and the Space it is deployed to.
HUB_MODEL_REPO = "pneumonia-xray-demo/pneumonia-resnet50"
HUB_SPACE_REPO = "pneumonia-xray-demo/pneumonia-xray"
# Where the code is published (the notebook's "Open in Colab" badge and its clone).
GITHUB_REPO = "pneumonia-xray-demo/pneumonia-xray"
NOTEBOOK_FILE = "Pneumonia_Xray_Classification.ipynb"
# Seconds to wait for the Hub to accept a connection before serving the
# committed model instead (reads of a large file may take longer).
HUB_CONNECT_TIMEOUT = 4.0
HUB_READ_TIMEOUT = 30.0
# What a Space needs from this repo, besides the files of model/ the app serves
# (hub.SERVED_PATTERNS: the exported networks, not the Keras files).
# The Space gets the serving wing and the ground floor only: what it runs cannot reach training code.
SPACE_FILES = ["app.py", "requirements.txt", "README.md", "pneumonia/*.py", "pneumonia/serve/*.py", "pneumonia/batch/*.py", "examples/*",
               "docs/screenshot.jpg"]
# The Hub's patterns match across folders ("pneumonia/*.py" takes pneumonia/train/x.py too).
SPACE_EXCLUDE = ["pneumonia/train/*", "pneumonia/report/*"]

# Serving limits: requests waiting in the queue (more get "Queue is full"),
# requests run at once (their networks run together: pneumonia.serve.batching),
# and the largest upload accepted.
QUEUE_MAX_SIZE = 32
CONCURRENCY = 8
MAX_UPLOAD = "25mb"
MAX_UPLOAD_BYTES = 25 * 2**20   # the same limit for POST /v1/analyze (pneumonia.serve.http_api)
# The forward-only runtime (pneumonia.serve.runtime): OpenVINO's inference precision
# on the CPU, and the most requests one network call takes together. fp32 was
# measured first (exact); bf16 serves because it meets the agreement bar on
# validation (bench/precision.py: decisions 99.73%, ROC AUC -0.0000, CAM
# correlation 0.996; test reports 99.84%) and fp32 missed the memory goal (584 MB under 8 clients,
# goal 500). CPUs without bf16 arithmetic run fp32. Batches of 4 serve as fast
# as 8 here with less memory.
RUNTIME_PRECISION = "bf16"
RUNTIME_MAX_BATCH = 4
# Which precision serves is chosen by the machine at load (pneumonia.serve.runtime):
# of those this CPU runs and that passed PRECISION_BAR, by its capabilities
# (bf16: fp32 dropped; no bf16 but int8 dot products: int8), then the fastest
# of what is left to answer one image alone and then a batch of
# RUNTIME_MAX_BATCH, each timed TIMING_REPEATS times (the best kept).
# PNEUMONIA_PRECISION=f32|bf16|int8 forces one.
TIMING_REPEATS = 3
# What a precision other than the exact fp32 must keep, on the patient-grouped
# validation part's lung views, against the fp32 reference (bench/precision.py
# reports it against Keras on validation and test; pneumonia.train.quantize
# chooses the int8 export by it): decisions agreeing, ROC AUC difference,
# Grad-CAM map correlation (mean, 1st percentile), 99th percentile of the
# change in P(PNEUMONIA).
PRECISION_BAR = {"decisions_agree": 0.995, "auc_within": 0.002, "cam_mean": 0.98, "cam_p1": 0.90,
                 "dp_p99": 0.05}
# int8 (pneumonia.train.quantize, NNCF post-training quantisation): calibrated
# on lung views of INT8_CALIBRATION_IMAGES training-part X-rays, each clean
# and as one stressed copy. The first stage sets of INT8_FLOAT_STAGES kept in
# float whose export passes PRECISION_BAR is kept (fewest float layers first:
# the fastest that passes); none passing, no int8 export. Why stages: the last
# try quantised everything and one validation probability moved by 0.35.
INT8_CALIBRATION_IMAGES = 600
INT8_FLOAT_STAGES = (("conv1",), ("conv1", "conv2"), ("conv1", "conv2", "conv3"))
# The overlay users see: at the upload's own size up to this longer side
# (the page shows it at 340 px, twice that on a sharp screen), as a JPEG of
# this quality written once per answer. PNG cost 13 ms a 224 px image in
# Pillow and 0.7 s at 2000x2400; a JPEG takes 0.2 ms / 11 ms. Programs that
# want the map at full resolution get its cells as numbers in the JSON.
OVERLAY_MAX_SIDE = 1024
OVERLAY_JPEG_QUALITY = 90
