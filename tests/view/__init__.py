"""The live page (posebridge.view) without a browser."""
