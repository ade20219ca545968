"""The command-line commands (posebridge.commands): bench, estimate."""
