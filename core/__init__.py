"""The bottom layer: errors users read, where data lives, and the one settings file. Imports nothing of
the product (tests/test_layers.py)."""
