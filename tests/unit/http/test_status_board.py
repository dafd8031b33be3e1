"""StatusBoard: state per station/module from real CFX envelopes (decoded by pywats_cfx) and lab updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pywats_cfx import envelope_to_bytes
from pywats_cfx.explorer import generate_envelope
from pywats_events import Event, EventBus, MockTransport
from pywats_events.lab import parse_lab_body
from pywats_events.status_board import StatusBoard


def _module(ident: str, status: int, **extra: object) -> dict[str, object]:
    return {"Id": 1, "ModuleIdentifier": ident, "ModuleName": ident.upper(), "Status": status, **extra}


async def test_cfx_state_and_faults_reach_the_board() -> None:
    bus = EventBus()
    mock = MockTransport(decoder="cfx")
    bus.add_transport(mock)
    board = StatusBoard()
    bus.register(board)
    async with bus:
        await mock.inject_raw(envelope_to_bytes(generate_envelope("state-changed", seq=1)))
        await mock.inject_raw(envelope_to_bytes(generate_envelope("fault", seq=2)))
    (station,) = board.assets.values()
    assert station.kind == "station"
    assert station.state == "SBY_NoProduct"
    assert station.category == "SBY"
    assert station.state_code == 2200
    assert len(station.faults) == 1
    assert not station.ready, "a station with an active fault takes no work"
    overview = board.overview()
    assert overview["active_faults"][0]["asset_id"] == station.asset_id
    assert overview["by_category"] == {"SBY": 1}


def test_fault_cleared_removes_it_even_when_it_arrives_first() -> None:
    board = StatusBoard()
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    fault = Event(type="asset.fault", source="st-1", timestamp=t0, payload={"asset_id": "st-1", "fault_id": "f1"})
    cleared = Event(type="asset.fault_cleared", source="st-1", payload={"asset_id": "st-1", "fault_id": "f1"})
    board.apply(fault)
    assert list(board.assets["st-1"].faults) == ["f1"]
    board.apply(cleared)
    assert board.assets["st-1"].faults == {}
    board.apply(cleared.model_copy(update={"payload": {"asset_id": "st-1", "fault_id": "f2"}}))
    board.apply(fault.model_copy(update={"payload": {"asset_id": "st-1", "fault_id": "f2"}}))
    assert board.assets["st-1"].faults == {}, "a late FaultOccurred must not resurrect a cleared fault"


def test_lab_modules_overview_and_availability_by_capability() -> None:
    board = StatusBoard()
    for event in parse_lab_body(
        [
            _module("lh-1", 0, Capabilities=["Dispense", "mix"]),
            _module("lh-2", 1, OrdersBeingProcessed=["o-1", "o-2"], Capabilities=["dispense"]),
            _module("rd-1", 0, Capabilities=["read"]),
            _module("rd-2", 3, Capabilities=["read"]),
        ]
    ):
        board.apply(event)
    overview = board.overview()
    assert overview["assets"] == 4
    assert overview["ready"] == 2
    assert overview["by_state"] == {"Ready": 2, "Busy": 1, "Offline": 1}
    assert overview["active_orders"] == [{"asset_id": "lh-2", "order": "o-1"}, {"asset_id": "lh-2", "order": "o-2"}]
    assert [a.asset_id for a in board.available("dispense")] == ["lh-1"]
    assert [a.asset_id for a in board.available("READ")] == ["rd-1"]
    assert [a.asset_id for a in board.available()] == ["lh-1", "rd-1"]
    assert board.available("centrifuge") == []


def test_older_update_does_not_overwrite_a_newer_state() -> None:
    board = StatusBoard()
    (busy,) = parse_lab_body(_module("lh-1", 1, OrdersBeingProcessed=["o"]))
    (ready,) = parse_lab_body(_module("lh-1", 0))
    late = ready.model_copy(update={"timestamp": busy.timestamp - timedelta(seconds=5)})
    board.apply(busy)
    board.apply(late)
    assert board.assets["lh-1"].state == "Busy"
    board.apply(ready.model_copy(update={"timestamp": busy.timestamp + timedelta(seconds=1)}))
    assert board.assets["lh-1"].state == "Ready"
    assert board.assets["lh-1"].orders == []
