"""Scoring a whole archive of X-rays with the served model: `python -m pneumonia.batch SRC --out DIR`.

`inputs` lists what to read (a folder, a zip, a CSV of files), `answers`
writes and resumes the answer files, `scoring` runs the served networks over
batches of X-rays. Uses the serving wing as the app does; nothing of training.
"""
