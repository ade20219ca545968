"""posebridge training: the seed's HopeNet-style experiments (multi-loss, binned heads) end to end.

Entry points: `python -m training.train`, `python -m training.evaluate`, `python -m training.study`.
See training/README.md for the config keys and how to register a dataset.
"""
