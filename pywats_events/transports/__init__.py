"""The built-in transports that need no broker library: mock (tests) and file (drop folder), with what
every transport shares: the settings base (``settings``), the reconnect helper (``reconnect``) and the
topic/subject mapping rules (``mapping``).

The contract they fill in is ``pywats_events.transport`` (beside the bus); its names are re-exported here
because older code imported them from this package. The webhook intake lives in the HTTP wing
(``pywats_events.http.webhook``).
"""

from ..transport import (
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
