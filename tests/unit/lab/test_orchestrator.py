"""WorkflowOrchestrator: the document's example as a component, its queue, Error handling and concurrency."""

from __future__ import annotations

import threading
from pathlib import Path

from pywats_lab.events import ModuleStatus
from pywats_lab.orchestrator import WorkflowOrchestrator
from pywats_lab.status_db import StatusDBImplementation
from pywats_lab.testing import module_status

LH = ["aspirate", "dispense", "mix"]


def test_orders_wait_while_modules_are_busy_and_go_when_one_turns_ready() -> None:
    orchestrator = WorkflowOrchestrator()
    orchestrator.process_status_update(module_status("lh-1", ModuleStatus.Busy, LH, orders=["o-prev"]))
    orchestrator.process_status_update(module_status("reader", ModuleStatus.Ready, ["absorbance_measurement"]))
    assert orchestrator.assign_order_to_module("order-1", ["dispense"]) is None
    assert orchestrator.assign_order_to_module("order-2", ["dispense", "mix"]) is None
    assert orchestrator.pending_orders == [
        {"order_id": "order-1", "required_capabilities": ["dispense"]},
        {"order_id": "order-2", "required_capabilities": ["dispense", "mix"]},
    ]
    pending_events = [e for e in orchestrator.drain_events() if e.type == "lab.order.pending"]
    assert [e.payload["order_id"] for e in pending_events] == ["order-1", "order-2"]

    previous = orchestrator.process_status_update(module_status("lh-1", ModuleStatus.Ready, LH))
    assert previous is ModuleStatus.Busy
    assert orchestrator.assignments == {"order-1": "lh-1"}, "a module without simultaneous execution takes one"
    assert orchestrator.pending_orders == [{"order_id": "order-2", "required_capabilities": ["dispense", "mix"]}]
    events = orchestrator.drain_events()
    changed = next(e for e in events if e.type == "lab.module.status_changed")
    assert (changed.payload["previous_status"], changed.payload["current_status"]) == ("Busy", "Ready")
    assigned = next(e for e in events if e.type == "lab.order.assigned")
    assert assigned.payload["order_id"] == "order-1" and assigned.payload["module"] == "lh-1"

    # The module starts order-1 and finishes it: order-2 follows.
    orchestrator.process_status_update(module_status("lh-1", ModuleStatus.Busy, LH, orders=["order-1"]))
    assert orchestrator.assignments == {"order-1": "lh-1"}
    orchestrator.process_status_update(module_status("lh-1", ModuleStatus.Ready, LH))
    assert orchestrator.assignments == {"order-2": "lh-1"}
    assert orchestrator.pending_orders == []
    assert [e.type for e in orchestrator.drain_events()].count("lab.order.completed") == 1


def test_capabilities_must_all_be_offered_and_simultaneous_modules_take_several() -> None:
    orchestrator = WorkflowOrchestrator()
    orchestrator.process_status_update(module_status("lh-1", ModuleStatus.Ready, ["dispense"]))
    orchestrator.process_status_update(module_status("lh-2", ModuleStatus.Ready, LH, simultaneous=True))
    assert orchestrator.assign_order_to_module("a", ["dispense", "mix"]) == "lh-2"
    assert orchestrator.assign_order_to_module("b", ["dispense"]) == "lh-1", "the least loaded suitable module"
    assert orchestrator.assign_order_to_module("c", ["dispense"]) == "lh-2", "lh-1 is full, lh-2 runs several"
    assert orchestrator.assign_order_to_module("d", ["centrifuge"]) is None
    assert orchestrator.assign_order_to_module("a", ["dispense", "mix"]) == "lh-2", "same order id: same answer"
    overview = orchestrator.module_manager.get_system_overview()
    assert overview["ready"] == 2 and overview["total_modules"] == 2
    assert [m["module_id"] for m in orchestrator.module_manager.get_available_modules("mix")] == ["lh-2"]


def test_error_requeues_the_modules_orders_at_the_head_of_the_queue() -> None:
    orchestrator = WorkflowOrchestrator()
    orchestrator.process_status_update(module_status("lh-1", ModuleStatus.Ready, LH))
    assert orchestrator.assign_order_to_module("o-1", ["dispense"]) == "lh-1"
    assert orchestrator.assign_order_to_module("o-2", ["dispense"]) is None
    orchestrator.drain_events()
    orchestrator.process_status_update(
        module_status("lh-1", ModuleStatus.Error, LH, orders=["o-1"], details="tip clog")
    )
    assert orchestrator.assignments == {}
    assert [p["order_id"] for p in orchestrator.pending_orders] == ["o-1", "o-2"]
    events = orchestrator.drain_events()
    change = next(e for e in events if e.type == "lab.module.status_changed")
    assert change.severity.value == "error" and change.payload["current_status"] == "Error"
    requeued = next(e for e in events if e.type == "lab.order.requeued")
    assert requeued.payload["order_id"] == "o-1" and "Error" in requeued.payload["reason"]
    orchestrator.process_status_update(module_status("lh-2", ModuleStatus.Ready, LH))
    assert orchestrator.assignments == {"o-1": "lh-2"}, "the re-queued order goes first to the next module"


def test_two_updates_at_once_never_double_assign() -> None:
    orchestrator = WorkflowOrchestrator()
    for i in range(4):
        orchestrator.process_status_update(module_status(f"m{i}", ModuleStatus.Busy, LH, orders=[f"x{i}"]))
    for n in range(40):
        orchestrator.assign_order_to_module(f"o{n}", ["dispense"])
    barrier = threading.Barrier(8)

    def ready(i: int) -> None:
        barrier.wait()
        for _ in range(20):
            orchestrator.process_status_update(module_status(f"m{i % 4}", ModuleStatus.Ready, LH))
            orchestrator.check_pending_orders()

    threads = [threading.Thread(target=ready, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assignments = orchestrator.assignments
    assert sorted(assignments.values()) == ["m0", "m1", "m2", "m3"], "one order per single-order module"
    assigned_events = [e.payload["order_id"] for e in orchestrator.drain_events() if e.type == "lab.order.assigned"]
    assert len(assigned_events) == len(set(assigned_events)) == 4, "no order assigned twice"
    assert len(orchestrator.pending_orders) == 36


def test_queue_survives_a_new_orchestrator_on_the_same_status_db(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'orders.db'}"
    db = StatusDBImplementation(url)
    first = WorkflowOrchestrator(db)
    first.process_status_update(module_status("lh-1", ModuleStatus.Ready, LH))
    assert first.assign_order_to_module("o-1", ["dispense"]) == "lh-1"
    assert first.assign_order_to_module("o-2", ["dispense"]) is None
    db.close()

    db2 = StatusDBImplementation(url)
    second = WorkflowOrchestrator(db2)
    assert second.pending_orders == [{"order_id": "o-2", "required_capabilities": ["dispense"]}]
    assert second.assignments == {"o-1": "lh-1"}
    second.process_status_update(module_status("lh-1", ModuleStatus.Ready, LH))
    assert second.assignments == {"o-1": "lh-1"}, "o-1 was never seen running: lh-1 is still booked"
    assert second.complete_order("o-1") is True
    assert second.assignments == {"o-2": "lh-1"}
    db2.close()
