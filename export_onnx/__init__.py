"""viml.export_onnx"""
