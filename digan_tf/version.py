"""The package version, importable without the rest of the package's
modules."""

__version__ = "0.1.0"
