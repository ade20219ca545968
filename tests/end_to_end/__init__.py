"""End to end through the command line and real sockets: serve, replay, rendered clips, interop, the
Unity client, the live page in a browser, reported defects."""
