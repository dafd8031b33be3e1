"""Simulated event streams for trying the analytics without a line: a production line of stations and a
lab day of modules, with the payloads the CFX adapters and the lab decoder produce.

``simulated_line`` gives, per station, ``asset.state_changed`` (SEMI E10 codes, ``new_category``),
``production.work_started`` / ``work_completed`` (paired by ``transaction_id``), ``test.result`` (with
retests of failed units), and ``asset.fault`` / ``asset.fault_cleared`` around unscheduled downtime.
``simulated_lab_day`` gives module status updates (Ready / Busy / Error / Offline) through
``pywats_events.lab.module_status_to_event``, so they are the events a lab event service would post.
Both are deterministic for a seed and sorted by time.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from ..event import Event
from ..lab import ModuleStatus, ModuleStatusUpdateEvent, module_status_to_event

__all__ = ["simulated_lab_day", "simulated_line"]

_START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
_STATE = {
    "PRD": (1100, "PRD_RegularWork"),
    "SBY": (2200, "SBY_NoProduct"),
    "USD": (5300, "USD_Repair"),
    "SDT": (4300, "SDT_PreventiveMaintenance"),
    "NST": (6100, "NST_UnworkedShifts"),
    "ENG": (3100, "ENG_ProcessExperiments"),
}


def simulated_line(
    *,
    stations: int = 4,
    hours: float = 24.0,
    seed: int = 1,
    start: datetime = _START,
    fail_rate: float = 0.1,
    fault_rate: float = 0.03,
    line: str = "Line1",
) -> list[Event]:
    """Events of a line of ``stations`` stations over ``hours`` hours (see the module docstring).

    Args:
        stations: number of stations (count); station ``i`` is ``{line}.Station{i}``; even ones test units.
        hours: simulated time span (hours).
        seed: random seed (same seed, same events).
        start: first time (aware UTC).
        fail_rate: share of first tests that fail (0..1); a failed unit is retested.
        fault_rate: chance per cycle of a fault (0..1).
        line: prefix of the station names.
    """
    rnd = random.Random(seed)
    events: list[Event] = []
    end = start + timedelta(hours=hours)
    n = 0

    def emit(type_: str, source: str, at: datetime, payload: dict[str, object]) -> None:
        nonlocal n
        n += 1
        events.append(Event(id=f"sim-{line}-{seed}-{n}", type=type_, source=source, timestamp=at, payload=payload))

    def state(source: str, at: datetime, cat: str) -> None:
        code, name = _STATE[cat]
        emit(
            "asset.state_changed",
            source,
            at,
            {"asset_id": source, "new_state": code, "new_state_name": name, "new_category": cat},
        )

    for s in range(stations):
        source = f"{line}.Station{s}"
        tests = s % 2 == 0
        t = start + timedelta(seconds=rnd.uniform(0, 60))
        retest: list[str] = []
        cycle = 0
        while t < end:
            # Break at the start of each 8-hour shift: non-scheduled time.
            if (t - start).total_seconds() % 28800 < 60:
                state(source, t, "NST")
                t += timedelta(minutes=rnd.uniform(10, 20))
            state(source, t, "SBY")
            t += timedelta(seconds=rnd.expovariate(1 / 30))
            state(source, t, "PRD")
            cycle += 1
            tid = f"{source}-w{cycle}"
            recipe = rnd.choice(["PCB-A", "PCB-B"])
            emit("production.work_started", source, t, {"transaction_id": tid, "recipe": recipe})
            t += timedelta(seconds=rnd.gauss(90 if recipe == "PCB-A" else 120, 10))
            emit(
                "production.work_completed", source, t, {"transaction_id": tid, "recipe": recipe, "result": "completed"}
            )
            if tests:
                unit = retest.pop() if retest and rnd.random() < 0.5 else f"U{s}-{cycle}"
                failed = rnd.random() < fail_rate
                result = "fail" if failed else "pass"
                steps = [{"name": "ICT", "result": result, "measurements": [{"name": "R12", "result": result}]}]
                emit("test.result", source, t, {"unit_id": unit, "result": result, "recipe": recipe, "tests": steps})
                if failed:
                    retest.append(unit)
            if rnd.random() < fault_rate:
                fid = f"{source}-f{cycle}"
                state(source, t, "USD")
                emit(
                    "asset.fault",
                    source,
                    t,
                    {"asset_id": source, "fault_id": fid, "code": rnd.choice(["E-FEEDER", "E-NOZZLE", "E-JAM"])},
                )
                t += timedelta(minutes=rnd.uniform(2, 20))
                emit("asset.fault_cleared", source, t, {"asset_id": source, "fault_id": fid})
            elif rnd.random() < 0.005:
                state(source, t, "SDT")
                t += timedelta(minutes=rnd.uniform(10, 30))
    events.sort(key=lambda e: (e.timestamp, e.id))
    return events


def simulated_lab_day(*, modules: int = 3, hours: float = 24.0, seed: int = 1, start: datetime = _START) -> list[Event]:
    """Module status updates of ``modules`` lab modules over ``hours`` hours (``lab-module-{i}``).

    Args:
        modules: number of modules (count).
        hours: simulated time span (hours).
        seed: random seed.
        start: first time (aware UTC).
    """
    rnd = random.Random(seed)
    events: list[Event] = []
    end = start + timedelta(hours=hours)
    uid = 0
    for m in range(modules):
        module = f"lab-module-{m}"
        t = start + timedelta(seconds=rnd.uniform(0, 120))
        order = 0
        while t < end:
            roll = rnd.random()
            if roll < 0.6:
                status, dur = ModuleStatus.BUSY, rnd.uniform(300, 1800)
            elif roll < 0.9:
                status, dur = ModuleStatus.READY, rnd.uniform(60, 900)
            elif roll < 0.97:
                status, dur = ModuleStatus.ERROR, rnd.uniform(120, 1200)
            else:
                status, dur = ModuleStatus.OFFLINE, rnd.uniform(600, 3600)
            uid += 1
            order += 1
            update = ModuleStatusUpdateEvent(
                id=uid,
                module_identifier=module,
                module_name=f"Module {m}",
                status=status,
                status_details="gripper jam" if status is ModuleStatus.ERROR else None,
                orders_being_processed=[f"order-{m}-{order}"] if status is ModuleStatus.BUSY else [],
                capabilities=["dispense"],
            )
            events.append(module_status_to_event(update, event_id=f"lab-{seed}-{uid}", timestamp=t))
            t += timedelta(seconds=dur)
    events.sort(key=lambda e: (e.timestamp, e.id))
    return events
