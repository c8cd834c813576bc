"""The torch-free run time: open a model bundle and encode frames, prompts and queries with onnxruntime.

Nothing in this package imports torch (enforced by tests/test_no_torch_import.py).
"""

from viml.engine.runtime.bundle import NoPicturesError, RuntimeBundle
from viml.engine.runtime.retrieval import load_retrieval, open_retrieval

__all__ = ["NoPicturesError", "RuntimeBundle", "load_retrieval", "open_retrieval"]
