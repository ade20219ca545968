"""The training tools (training/)."""
