"""Torch frame and text encoders (training and export side; the run time uses their ONNX exports)."""
