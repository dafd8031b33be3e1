"""Errors of the lines plug-in."""

from pywats_events.errors import DecodeError, TransportError

__all__ = ["BadResultLineError", "LinesError"]


class LinesError(TransportError):
    """The lines transport cannot listen (port in use, bad address)."""


class BadResultLineError(DecodeError):
    """A ``result-csv`` line that is not ``station,serial,result`` with a known result."""
