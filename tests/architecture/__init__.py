"""The package's shape: the import map's layers and circles, and the torch-free runtime."""
