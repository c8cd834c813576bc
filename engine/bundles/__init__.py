"""Model bundles: a folder of ONNX graphs + tokenizer files + `manifest.json` (see `manifest.py`)."""
