"""The distribution's version, in a module of its own so any module can name it without importing the
package root (which imports everything: that would be an upward import). The one source of the version:
``pyproject.toml`` reads it from here."""

__version__ = "0.1.0"
