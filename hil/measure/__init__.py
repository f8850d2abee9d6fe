"""Limits, outcomes and statistics for measured values."""
