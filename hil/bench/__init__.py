"""Bench configuration, device types, and the Bench that opens them."""
