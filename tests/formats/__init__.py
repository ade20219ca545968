"""Wire protocol, session files and rotation conventions (posebridge.formats)."""
