"""Deprecated: the transport contract moved to ``pywats_events.transport`` (beside the bus).

This module re-exports the same objects so old imports keep working for one release; importing it
warns (``DeprecationWarning``). Nothing in this distribution imports it any more.
"""

import warnings

from ..transport import (
    TOO_LARGE,
    TOO_LARGE_PREFIX,
    InboundMessage,
    IngestSink,
    RawRecord,
    SettleResult,
    Transport,
    TransportState,
    changed_option_keys,
    return_large_buffers,
    too_large_record,
)

__all__ = [
    "TOO_LARGE",
    "TOO_LARGE_PREFIX",
    "InboundMessage",
    "IngestSink",
    "RawRecord",
    "SettleResult",
    "Transport",
    "TransportState",
    "changed_option_keys",
    "return_large_buffers",
    "too_large_record",
]

warnings.warn(
    "pywats_events.transports.base is deprecated; import from pywats_events.transport (same names)",
    DeprecationWarning,
    stacklevel=2,
)
