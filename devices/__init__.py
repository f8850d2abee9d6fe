"""The device catalogue: one package per device type."""
