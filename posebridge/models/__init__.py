"""PyTorch side of the models: networks, checkpoints, importers (HopeNet, WHENet), ONNX export and
int8 quantization, the PyTorch backends. Nothing in the per-frame runtime imports from here."""
