"""Deprecated: the lab dialect moved to ``pywats_lab.events``; this module re-exports it.

Importing ``pywats_events.lab`` warns (``DeprecationWarning``) and gives the same objects as
``pywats_lab.events``, so old code keeps working. This is the one place the core names ``pywats_lab``.
"""

from __future__ import annotations

import warnings

from pywats_lab.events import (
    STATUS_CATEGORY,
    LabEventMessage,
    ModuleStatus,
    ModuleStatusUpdateEvent,
    decode_lab_event,
    event_to_lab_message,
    is_module_status_topic,
    lab_message_to_event,
    module_status_to_event,
    parse_lab_body,
)

__all__ = [
    "STATUS_CATEGORY",
    "LabEventMessage",
    "ModuleStatus",
    "ModuleStatusUpdateEvent",
    "decode_lab_event",
    "event_to_lab_message",
    "is_module_status_topic",
    "lab_message_to_event",
    "module_status_to_event",
    "parse_lab_body",
]

warnings.warn(
    "pywats_events.lab is deprecated; import from pywats_lab.events (same names)",
    DeprecationWarning,
    stacklevel=2,
)
