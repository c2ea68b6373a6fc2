"""Pneumonia chest X-ray classifier: the shared ground floor (config, calibration arithmetic, image and folder checks).

`pneumonia.serve` is what the app imports, `pneumonia.train` what fits the
networks, `pneumonia.report` what measures them; the UI is `app.py`, the
training command `train.py`.
"""
