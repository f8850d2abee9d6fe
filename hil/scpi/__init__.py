"""The instrument side of SCPI: a command-tree dispatcher for emulated instruments."""

from hil.scpi.server import (
    Call,
    ScpiError,
    ScpiServer,
    format_nr3,
    match_choice,
    parse_bool,
    parse_number,
)

__all__ = [
    "Call",
    "ScpiError",
    "ScpiServer",
    "format_nr3",
    "match_choice",
    "parse_bool",
    "parse_number",
]
