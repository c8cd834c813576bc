"""The torch side: the ViML model, loss, feature extraction with torch encoders, training, evaluation.

Installed with the `train` extra. Nothing in the run time (core, engine, catalog, search, desktop)
imports this package; the CLI imports it only inside the training commands (tests/test_layers.py).
"""
