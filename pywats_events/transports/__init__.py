"""Transports that need no broker library: mock (tests), file (drop folder), webhook (HTTP)."""

from .base import (
    InboundMessage,
    IngestSink,
    RawRecord,
    SettleResult,
    Transport,
    TransportState,
    changed_option_keys,
)
from .mock import MockTransport

__all__ = [
    "InboundMessage",
    "IngestSink",
    "MockTransport",
    "RawRecord",
    "SettleResult",
    "Transport",
    "TransportState",
    "changed_option_keys",
]
