"""The package's root modules (posebridge.config, posebridge.extras, ...)."""
