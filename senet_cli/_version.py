"""The package version, kept apart so `senet --version` imports nothing heavy."""

__version__ = "0.1.0"
