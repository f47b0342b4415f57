"""The package version, in one place: ``pyproject.toml`` reads it, and so does every module that
records it (prototype banks, exports), without importing the whole package."""
__version__ = "0.1.0"
