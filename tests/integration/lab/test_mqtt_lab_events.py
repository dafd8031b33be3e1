"""Lab events over MQTT (a PLC gateway or scheduler publishing JSON) fill the status DB like any transport."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from pywats_events import EventBus
from pywats_lab.handlers import LabStatusDBHandler
from tests.integration.mqtt.broker import need_binary
from tests.integration.mqtt.conftest import Run, run, wait_for

__all__ = ["run"]

pytestmark = pytest.mark.services


async def test_container_events_over_mosquitto_move_the_plate(run: Run, tmp_path: Path) -> None:
    mosquitto_pub = need_binary("mosquitto_pub", shutil.which("mosquitto_pub"))
    t = run.transport(
        rules=[{"topic": f"{run.prefix}/lab/container/{{action}}", "type": "lab.container.{action}", "source": "lab"}]
    )
    bus = EventBus()
    handler = LabStatusDBHandler(f"sqlite:///{tmp_path / 'lab.db'}")
    bus.register(handler)
    bus.add_transport(t)

    async def publish(action: str, payload: dict[str, object]) -> None:
        cmd = [mosquitto_pub, "-h", "127.0.0.1", "-p", str(run.port), "-q", "1"]
        cmd += ["-t", f"{run.prefix}/lab/container/{action}", "-m", json.dumps(payload)]
        proc = await asyncio.create_subprocess_exec(*cmd)
        assert await asyncio.wait_for(proc.wait(), 10) == 0

    async with bus:
        await publish("added", {"barcode": "M1", "device": "Hamilton_STAR", "pos": 2})
        await wait_for(lambda: t.acknowledged == 1, what="added settled")
        await publish(
            "moved",
            {"barcode": "M1", "source_device": "Hamilton_STAR", "source_pos": 2, "target_device": "Incubator",
             "target_pos": 7, "start": "2024-05-02T08:00:00Z", "finish": "2024-05-02T08:00:18Z"},
        )
        await wait_for(lambda: t.acknowledged == 2, what="moved settled")
        where = await handler.db.aio.get_cont_info_by_barcode("M1")
        assert where is not None and (where.current_device, where.current_pos) == ("Incubator", 7)
        (move,) = await handler.db.aio.get_container_history("M1")
        assert move.kind == "move" and move.duration == 18.0
