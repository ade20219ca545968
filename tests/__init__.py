"""posebridge test suite: one folder per package room (tests/<room>/), plus training, security, end_to_end,
architecture and suite; shared helpers in tests/helpers, data in tests/fixtures and tests/vectors."""
