"""Deprecated: the webhook intake moved into the HTTP wing, ``pywats_events.http.webhook``.

This module re-exports the same classes so old imports keep working for one release; importing it warns
(``DeprecationWarning``). The ``webhook`` entry point names the new place.
"""

import warnings

from ..http.webhook import WebhookSettings, WebhookTransport

__all__ = ["WebhookSettings", "WebhookTransport"]

warnings.warn(
    "pywats_events.transports.webhook is deprecated; import from pywats_events.http.webhook (same names)",
    DeprecationWarning,
    stacklevel=2,
)
