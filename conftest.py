"""Project-wide pytest setup: the device fixtures for tests and plans."""

pytest_plugins = ("fixtures.devices",)
