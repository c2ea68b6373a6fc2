"""The serving wing: everything the app and the Space import (no TensorFlow, Keras, scikit-learn, SciPy or Matplotlib)."""
