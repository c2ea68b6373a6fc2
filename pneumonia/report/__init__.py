"""The report wing: evaluation, validity, metrics, figures, the model card, the probe and selection."""
