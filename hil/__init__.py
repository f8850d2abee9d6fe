"""hil: hardware-in-the-loop test and certification for a person x car x home ecosystem."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hil")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"
