"""The HTTP surface of the bus: webhook ingest, lab event service, status board, health, metrics, admin.

```python
from pywats_events.http import HTTPSettings, Server, create_app

server = Server(bus, HTTPSettings(port=8080, admin_token="..."))
await server.start()      # returns once the socket listens; the webhook transport is CONNECTED
...
await server.stop()
```

Starlette, uvicorn and httpx are the ``http`` extra: this package imports them only when one of the names
below that needs them is first used, so the models and errors stay importable without the extra.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    EventServiceError,
    HTTPServerError,
    IngestRefusedError,
    InvalidLabMessageError,
    InvalidRequestError,
    NotSettledError,
    SaturatedError,
)

__all__ = [
    "EventServiceClient",
    "EventServiceError",
    "HTTPServerError",
    "HTTPSettings",
    "HttpForwarder",
    "IngestRefusedError",
    "InvalidLabMessageError",
    "InvalidRequestError",
    "NotSettledError",
    "RouteSecurity",
    "SaturatedError",
    "Server",
    "WebhookSettings",
    "WebhookTransport",
    "create_app",
    "serve",
]

_LAZY = {
    "HTTPSettings": ".settings",
    "RouteSecurity": ".settings",
    "create_app": ".app",
    "serve": ".server",
    "Server": ".server",
    "EventServiceClient": ".client",
    "HttpForwarder": ".client",
    "WebhookSettings": ".webhook",
    "WebhookTransport": ".webhook",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
