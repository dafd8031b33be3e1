"""Transports that need no broker library: mock (tests), file (drop folder), webhook (HTTP)."""

from .base import IngestSink, RawRecord, SettleResult, Transport, TransportState
from .mock import MockTransport

__all__ = ["IngestSink", "MockTransport", "RawRecord", "SettleResult", "Transport", "TransportState"]
