"""ViML: language-guided music recommendation for video.

The installed package maps the repository folders `engine/`, `catalog/`, `export_onnx/` and `desktop/`
to `viml.engine`, `viml.catalog`, `viml.export_onnx` and `viml.desktop`.
"""

__version__ = "0.1.0"
