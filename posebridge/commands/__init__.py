"""Sub-commands of the posebridge CLI, one module each (see posebridge.cli)."""
