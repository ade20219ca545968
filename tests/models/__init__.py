"""Networks, bins, checkpoints, importers and ONNX export (posebridge.models)."""
