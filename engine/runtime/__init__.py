"""The torch-free run time: open a model bundle and run its encoders and towers with onnxruntime.

Nothing in this package imports torch or the catalog (tests/test_layers.py checks both).
"""

from viml.engine.runtime.bundle import NoPicturesError, RuntimeBundle, open_bundle

__all__ = ["NoPicturesError", "RuntimeBundle", "open_bundle"]
