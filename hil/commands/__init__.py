"""Subcommands of the ``hil`` command that outgrew hil/cli.py, one module each."""
