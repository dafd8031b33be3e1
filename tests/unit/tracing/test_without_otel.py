"""With OpenTelemetry not importable (the ``otel`` extra absent), tracing is off and costs nothing, asking
for it says what to install, and the W3C trace context still travels: into the events' headers (HTTP
intake and transport headers), into dead-letter entries, out with the HTTP forwarder, and into JSON log
fields (issue 18.2, 18.4, 18.6). Run in a subprocess whose import system refuses ``opentelemetry``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    '''
    import asyncio, io, json, logging, os, sys

    class RefuseOpenTelemetry:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, RefuseOpenTelemetry())
    stderr = sys.stderr
    sys.stderr = captured = io.StringIO()
    import traceback
    sys.excepthook = lambda *exc: (stderr.write(captured.getvalue()), traceback.print_exception(*exc, file=stderr))

    import httpx
    from pywats_events import ConfigError, Event, EventBus, MockTransport, tracing
    from pywats_events.http import HTTPSettings, Server
    from pywats_events.logging_setup import setup_logging
    from pywats_events.retry import RetryPolicy

    TRACE = "0af7651916cd43dd8448eb211c80319c"
    TP = f"00-{TRACE}-b7ad6b7169203331-01"

    assert not tracing.available()
    try:
        tracing.enable()
    except ConfigError as exc:
        assert "pywats-events[otel]" in str(exc), exc
    else:
        raise AssertionError("enable() without OpenTelemetry did not raise")
    setup_logging("INFO", "json")
    os.environ["OTEL_TRACES_EXPORTER"] = "otlp"
    assert tracing.configure_from_environment() is False
    assert not tracing.active

    async def main():
        bus = EventBus(retry=RetryPolicy(max_attempts=2, initial_delay=0.01))
        mock = bus.add_transport(MockTransport("line", decoder="event-json"))
        seen = []

        @bus.subscribe("test.result", name="keep")
        async def keep(event):
            seen.append(event)

        @bus.subscribe("asset.fault", name="fails")
        async def fails(event):
            raise ValueError("no such station")

        server = Server(bus, HTTPSettings(port=0))
        async with bus:
            await server.start()
            body = json.dumps({"id": "ev-1", "type": "test.result", "source": "s"}).encode()
            await mock.inject_raw(body, headers={"Traceparent": TP.encode()})
            body = json.dumps({"id": "ev-2", "type": "asset.fault", "source": "s"}).encode()
            await mock.inject_raw(body, headers={"traceparent": TP})
            async with httpx.AsyncClient(base_url=server.url) as client:
                answer = await client.post(
                    "/events", json={"type": "test.result", "source": "s"}, headers={"traceparent": TP}
                )
                assert answer.status_code == 200, answer.text
            await server.stop()
            (entry,) = await bus.dead_letters.list()
        return seen, entry

    seen, entry = asyncio.run(main())
    assert [tracing.trace_id_of(e.headers) for e in seen] == [TRACE, TRACE], [e.headers for e in seen]
    assert tracing.trace_id_of(entry.event.headers) == TRACE
    assert tracing.outbound_headers(seen[1]) == {"traceparent": TP}
    lines = [json.loads(line) for line in captured.getvalue().splitlines() if line.startswith("{")]
    warned = [d for d in lines if "OTEL_TRACES_EXPORTER is set" in d["message"]]
    assert warned and warned[0]["level"] == "WARNING", lines
    dead = [d for d in lines if d["message"].startswith("dead-lettered event ev-2")]
    assert dead and dead[0]["trace_id"] == TRACE and dead[0]["handler"] == "fails", lines
    assert dead[0]["event_id"] == "ev-2" and dead[0]["transport"] == "line", dead
    retry = [d for d in lines if "retrying" in d["message"]]
    assert retry and retry[0]["trace_id"] == TRACE and retry[0]["event_id"] == "ev-2", lines
    assert not [m for m in sys.modules if m.startswith("opentelemetry")]
    stderr.write("OK\\n")
    '''
)


def test_without_opentelemetry_tracing_is_off_and_trace_context_still_travels_in_headers_and_logs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and done.stderr.strip().endswith("OK"), done.stdout + done.stderr
