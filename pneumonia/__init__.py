"""Pneumonia chest X-ray classifier: data, model, calibration, Grad-CAM.

Everything but the UI (`app.py`) and the training CLI (`train.py`) lives here.
"""
