"""The app served through TensorFlow (the Keras files), for side-by-side benchmarks.

    PNEUMONIA_MODEL=model python bench/keras_app.py

The app itself never imports the training wing; this launcher plugs its Keras
runtime in and then runs app.py unchanged.
"""
import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

from pneumonia.train import keras_runtime  # noqa: E402

keras_runtime.register()
os.environ["PNEUMONIA_RUNTIME"] = "keras"
runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
