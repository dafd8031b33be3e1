"""Biosero parity: the module status document's examples run with only the import prefix changed."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from pywats_events.codec import DecodeContext, get_decoder
from pywats_lab.events import EventMessage, ModuleStatus, ModuleStatusUpdateEvent, monitor_status_changes


def test_module_status_values_and_names_are_the_documents() -> None:
    assert [(s.name, s.value) for s in ModuleStatus] == [("Ready", 0), ("Busy", 1), ("Error", 2), ("Offline", 3)]
    assert ModuleStatus.READY is ModuleStatus.Ready, "upper-case names stay as aliases for older code"
    assert ModuleStatus.Busy.name.lower() == "busy"
    assert str(ModuleStatus.Busy) == "ModuleStatus.Busy"


def test_to_dict_example_keeps_nones_and_converts_status() -> None:
    event = ModuleStatusUpdateEvent(
        Id=12345,
        ModuleIdentifier="liquid-handler-001",
        ModuleName="Hamilton STAR",
        Status=ModuleStatus.Busy,
        OrdersBeingProcessed=["order-001", "order-002"],
    )
    event_dict = event.to_dict()
    assert event_dict["Id"] == 12345
    assert event_dict["ModuleIdentifier"] == "liquid-handler-001"
    assert event_dict["Status"] == 1 and type(event_dict["Status"]) is int
    assert event_dict["OrdersBeingProcessed"] == ["order-001", "order-002"]
    for key in ("StatusDetails", "Image", "InstrumentIdentifiers", "Capabilities"):
        assert key in event_dict and event_dict[key] is None, key
    assert event_dict["AllowSimultaneousExecution"] is False
    assert event_dict["ClassName"] == "Biosero.DataModels.Events.ModuleStatusUpdateEvent"
    json.dumps(event_dict)
    assert str(event).startswith(
        "ModuleStatusUpdateEvent(Id=12345, ModuleIdentifier=liquid-handler-001, ModuleName=Hamilton STAR, "
        "Status=ModuleStatus.Busy, "
    )


def test_document_attribute_names_read_the_fields() -> None:
    busy_event = ModuleStatusUpdateEvent(
        Id=1002,
        ModuleIdentifier="liquid-handler-main",
        ModuleName="Hamilton STAR Liquid Handler",
        Status=ModuleStatus.Busy,
        StatusDetails="Processing serial dilutions - 3 minutes remaining",
        OrdersBeingProcessed=["order-12345", "order-12346"],
        AllowSimultaneousExecution=True,
        InstrumentIdentifiers=["hamilton-star-001", "wash-station-A"],
        Capabilities=["aspirate", "dispense", "mix", "wash"],
    )
    assert busy_event.Status is ModuleStatus.Busy
    assert busy_event.ModuleIdentifier == "liquid-handler-main"
    assert busy_event.OrdersBeingProcessed == ["order-12345", "order-12346"]
    assert busy_event.AllowSimultaneousExecution is True
    assert busy_event.Capabilities == ["aspirate", "dispense", "mix", "wash"]
    assert busy_event.Id == 1002 and busy_event.ClassName.endswith("ModuleStatusUpdateEvent")


def test_publish_module_status_message_shape() -> None:
    status_event = ModuleStatusUpdateEvent(
        Id=1003, ModuleIdentifier="centrifuge-benchtop", ModuleName="Benchtop Centrifuge", Status=ModuleStatus.Error,
        StatusDetails="Rotor imbalance detected - check sample placement", OrdersBeingProcessed=["order-12347"],
    )
    event_message = EventMessage(
        topic=f"module.status.{status_event.Status.name.lower()}",
        subjects=[status_event.ModuleIdentifier],
        data=status_event.to_dict(),
        tags=["module_status", "automation", status_event.Status.name.lower()],
    )
    assert event_message.topic == "module.status.error"
    (event,) = get_decoder("lab-event")(json.dumps(event_message.to_wire_dict()).encode(), DecodeContext("t"))
    assert event.type == "asset.state_changed", "a message whose data is a module update becomes a state change"
    assert event.payload["new_state_name"] == "Error" and event.payload["orders_being_processed"] == ["order-12347"]
    assert ModuleStatusUpdateEvent.from_state_payload(event.payload) == status_event


def test_status_change_carries_previous_and_current_and_flags_error_offline_recovery() -> None:
    def update(status: ModuleStatus) -> ModuleStatusUpdateEvent:
        return ModuleStatusUpdateEvent(
            Id=1, ModuleIdentifier="m", ModuleName="M", Status=status, StatusDetails="why",
            OrdersBeingProcessed=["o"] if status is ModuleStatus.Busy else None,
        )

    assert monitor_status_changes(ModuleStatus.Ready, update(ModuleStatus.Ready)) is None
    change = monitor_status_changes(ModuleStatus.Busy, update(ModuleStatus.Error))
    assert change is not None and change.topic == "module.status.changed"
    assert change.data["previous_status"] == "Busy" and change.data["current_status"] == "Error"
    assert change.data["module_details"]["Status"] == 2
    assert "error" in change.tags and change.subjects == ["m"]
    offline = monitor_status_changes(ModuleStatus.Ready, update(ModuleStatus.Offline))
    assert offline is not None and "offline" in offline.tags
    recovered = monitor_status_changes(ModuleStatus.Error, update(ModuleStatus.Ready))
    assert recovered is not None and "recovered" in recovered.tags
    assert "recovered" not in (monitor_status_changes(ModuleStatus.Busy, update(ModuleStatus.Ready)) or change).tags


def test_event_message_created_date_can_be_set_afterwards() -> None:
    from datetime import UTC, datetime

    event = EventMessage(topic="sample.processed", subjects=["sample-123"], data={"status": "completed"})
    event.created_date_utc = datetime(2024, 5, 2, 8, 15, tzinfo=UTC)
    assert event.to_dict()["createdDateUtc"] == "2024-05-02T08:15:00Z"
    assert event.to_dict()["userId"] is None, "to_dict keeps None; the client removes them"


def test_old_import_path_warns_and_gives_the_same_objects() -> None:
    sys.modules.pop("pywats_events.lab", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import pywats_events.lab as old
    assert any(issubclass(w.category, DeprecationWarning) and "pywats_lab.events" in str(w.message) for w in caught)
    assert old.ModuleStatusUpdateEvent is ModuleStatusUpdateEvent
    assert old.LabEventMessage is EventMessage


def test_core_does_not_import_pywats_lab() -> None:
    code = (
        "import sys, pywats_events, pywats_events.http.client, pywats_events.http.webhook, pywats_events.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith('pywats_lab')))"
    )
    cmd = [sys.executable, "-W", "error::DeprecationWarning", "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["LabEventMessage", "ModuleStatus", "ModuleStatusUpdateEvent"])
def test_core_top_level_names_still_resolve(name: str) -> None:
    import pywats_events

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert getattr(pywats_events, name).__module__ == "pywats_lab.events"
