"""Bytes and frames only: CAN, serial and VISA, each with a capture."""
