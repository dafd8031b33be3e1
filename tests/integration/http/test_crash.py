"""A 200 answer means the event survives a crash: kill -9 the real service mid-load, then look."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from pywats_events.sql_store import open_store
from pywats_events.store import EventQuery

SERVICE = Path(__file__).with_name("service_main.py")


async def test_every_acknowledged_event_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVICE), str(db), stdout=asyncio.subprocess.PIPE, cwd=str(Path(__file__).parents[3])
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.startswith(b"PORT "), line
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        acknowledged: list[str] = []
        stop = asyncio.Event()

        async def client(worker: int) -> None:
            async with httpx.AsyncClient(base_url=url, timeout=10) as c:
                n = 0
                while not stop.is_set():
                    event_id = f"w{worker}-{n}"
                    n += 1
                    try:
                        r = await c.post("/events", json={"id": event_id, "type": "crash.test", "source": f"s{n % 4}"})
                    except httpx.TransportError:
                        return  # the server died under this request: not acknowledged, not counted
                    if r.status_code == 200:
                        acknowledged.append(event_id)

        workers = [asyncio.create_task(client(i)) for i in range(8)]
        while len(acknowledged) < 200:  # noqa: ASYNC110 - waiting for load, bounded by the test timeout
            await asyncio.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    store = open_store(str(db))
    async with store:
        stored = {s.event.id for s in await store.query_events(EventQuery(limit=100_000))}
    lost = [i for i in acknowledged if i not in stored]
    assert not lost, f"{len(lost)} events answered 200 are not in the store after kill -9: {lost[:5]}"
    assert len(acknowledged) >= 200
