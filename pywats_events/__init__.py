"""pyWATS events: an asyncio event bus for factory and lab integration.

The public API is what ``__all__`` lists below: the event model and the domain events, the bus, handlers,
policies (retry, circuit breaker), the dead-letter queue and its entries, the store and its factory
``open_store``, the transport contract and settings base a transport author fills in, the built-in
transports without a broker library (file, mock, webhook), decoders, and the errors. Everything else may
change without notice; in particular these modules are internal, used by the bus and the command line:
``delivery``, ``lanes``, ``registry`` (beyond ``HandlerRegistry``/``Subscription``), ``metrics``,
``loop_thread``, ``config``, ``runtime``, ``reload``, ``jsonsafe``, ``_json``, ``_version``, ``paging``,
``id_prefix``, ``logging_setup`` and the ``*_cli`` modules.

Other public packages: ``pywats_events.http`` (the HTTP wing: app, server, webhook intake, client),
``pywats_events.analytics``, ``pywats_events.transports`` (file, mock, the shared settings, reconnect helper
and mapping rules), ``pywats_events.policies`` (the pyWATS document's policy classes). Transports, decoders
and handlers are plug-ins found by entry point (``pywats_events.plugins``); this distribution ships
``pywats_cfx`` (IPC-CFX codec and AMQP), ``pywats_mqtt`` (MQTT), ``pywats_nats`` (NATS JetStream),
``pywats_wats`` and ``pywats_lab``. The layers and where each module sits: docs/project-layout.md.
"""

from typing import TYPE_CHECKING

# The tracing module (OpenTelemetry imported only when enabled): ``pywats_events.tracing.enable(...)``.
from . import tracing
from ._version import __version__ as __version__
from .admin import Admin
from .breaker import BreakerPolicy, BreakerState, BreakerTransition, CircuitBreaker
from .bus import EventBus
from .codec import DecodeContext, Decoder, get_decoder, register_decoder
from .dead_letter import DeadLetterEntry, DeadLetterQueue, DeadLetterReason, ReplayReport
from .domain import (
    DOMAIN_EVENTS,
    AssetCalibrationEvent,
    AssetFaultAcknowledgedEvent,
    AssetFaultClearedEvent,
    AssetFaultEvent,
    AssetMaintenanceEvent,
    AssetOfflineEvent,
    AssetOnlineEvent,
    AssetStateChangedEvent,
    DomainPayload,
    EndpointConnectedEvent,
    EndpointShuttingDownEvent,
    EnergyConsumedEvent,
    HeartbeatEvent,
    InspectionResultEvent,
    MaterialConsumedEvent,
    MaterialInstalledEvent,
    MaterialLoadedEvent,
    MaterialUninstalledEvent,
    MaterialUnloadedEvent,
    OperatorActivatedEvent,
    OperatorDeactivatedEvent,
    RecipeActivatedEvent,
    RepairResultEvent,
    SensorReadingEvent,
    StageCompletedEvent,
    StageStartedEvent,
    TestResultEvent,
    ToolUsedEvent,
    UnitArrivedEvent,
    UnitDepartedEvent,
    UnitDisqualifiedEvent,
    UnitInitializedEvent,
    UnitLoadedEvent,
    UnitProcessedEvent,
    UnitUnloadedEvent,
    WorkCompletedEvent,
    WorkStartedEvent,
    domain_event_schema,
    payload_model,
    typed_payload,
)
from .errors import (
    BusClosedError,
    BusError,
    CircuitOpenError,
    ConfigError,
    DeadLetterNotFoundError,
    DecodeError,
    HandlerError,
    HandlerRegistrationError,
    NoPayloadModelError,
    PayloadValidationError,
    PluginError,
    PyWatsEventsError,
    SinkUnavailableError,
    StoreError,
    TransportError,
    TransportSendNotSupported,
    UnrecoverableError,
)
from .event import Event, EventType, Severity, derive_event_id
from .handlers import BaseHandler, EventStoreHandler, FunctionHandler
from .http.webhook import WebhookSettings, WebhookTransport
from .plugins import PluginSpec, describe_plugins
from .registry import HandlerRegistry, Subscription
from .retry import RetryPolicy
from .status_board import AssetStatus, StatusBoard
from .store import DeadLetterQuery, EventQuery, MemoryStore, Store, StoredEvent, StoreWrite
from .transport import InboundMessage, IngestSink, RawRecord, SettleResult, Transport, TransportState
from .transports.file import FileSettings, FileTransport
from .transports.mock import MockTransport
from .transports.settings import ReconnectSettings, TLSSettings, TransportSettings

if TYPE_CHECKING:
    from .sql_store import SQLStore, open_store



def __getattr__(name: str) -> object:
    # SQLAlchemy is imported only when the SQL store is used: `import pywats_events` stays light.
    if name in ("SQLStore", "open_store"):
        from . import sql_store

        return getattr(sql_store, name)
    if name in ("LabEventMessage", "ModuleStatus", "ModuleStatusUpdateEvent"):
        # Moved to pywats_lab.events; the deprecated shim warns and re-exports.
        from . import lab

        return getattr(lab, name)
    raise AttributeError(f"module 'pywats_events' has no attribute {name!r}")


__all__ = [
    "DOMAIN_EVENTS",
    "Admin",
    "AssetCalibrationEvent",
    "AssetFaultAcknowledgedEvent",
    "AssetFaultClearedEvent",
    "AssetFaultEvent",
    "AssetMaintenanceEvent",
    "AssetOfflineEvent",
    "AssetOnlineEvent",
    "AssetStateChangedEvent",
    "AssetStatus",
    "BaseHandler",
    "BreakerPolicy",
    "BreakerState",
    "BreakerTransition",
    "BusClosedError",
    "BusError",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfigError",
    "DeadLetterEntry",
    "DeadLetterNotFoundError",
    "DeadLetterQuery",
    "DeadLetterQueue",
    "DeadLetterReason",
    "DecodeContext",
    "DecodeError",
    "Decoder",
    "DomainPayload",
    "EndpointConnectedEvent",
    "EndpointShuttingDownEvent",
    "EnergyConsumedEvent",
    "Event",
    "EventBus",
    "EventQuery",
    "EventStoreHandler",
    "EventType",
    "FileSettings",
    "FileTransport",
    "FunctionHandler",
    "HandlerError",
    "HandlerRegistrationError",
    "HandlerRegistry",
    "HeartbeatEvent",
    "InboundMessage",
    "IngestSink",
    "InspectionResultEvent",
    "MaterialConsumedEvent",
    "MaterialInstalledEvent",
    "MaterialLoadedEvent",
    "MaterialUninstalledEvent",
    "MaterialUnloadedEvent",
    "MemoryStore",
    "MockTransport",
    "NoPayloadModelError",
    "OperatorActivatedEvent",
    "OperatorDeactivatedEvent",
    "PayloadValidationError",
    "PluginError",
    "PluginSpec",
    "PyWatsEventsError",
    "RawRecord",
    "RecipeActivatedEvent",
    "ReconnectSettings",
    "RepairResultEvent",
    "ReplayReport",
    "RetryPolicy",
    "SQLStore",
    "SensorReadingEvent",
    "SettleResult",
    "Severity",
    "SinkUnavailableError",
    "StageCompletedEvent",
    "StageStartedEvent",
    "StatusBoard",
    "Store",
    "StoreError",
    "StoreWrite",
    "StoredEvent",
    "Subscription",
    "TLSSettings",
    "TestResultEvent",
    "ToolUsedEvent",
    "Transport",
    "TransportError",
    "TransportSendNotSupported",
    "TransportSettings",
    "TransportState",
    "UnitArrivedEvent",
    "UnitDepartedEvent",
    "UnitDisqualifiedEvent",
    "UnitInitializedEvent",
    "UnitLoadedEvent",
    "UnitProcessedEvent",
    "UnitUnloadedEvent",
    "UnrecoverableError",
    "WebhookSettings",
    "WebhookTransport",
    "WorkCompletedEvent",
    "WorkStartedEvent",
    "derive_event_id",
    "describe_plugins",
    "domain_event_schema",
    "get_decoder",
    "open_store",
    "payload_model",
    "register_decoder",
    "tracing",
    "typed_payload",
]
