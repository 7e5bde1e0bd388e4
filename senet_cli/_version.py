"""The package version, kept apart so that asking for it imports nothing heavy."""

__version__ = "0.1.0"
