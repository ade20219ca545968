"""Helpers shared by the tests: paths, subprocess daemons, stream watchers, clips, rendered-clip support."""
