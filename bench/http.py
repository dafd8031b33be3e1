"""HTTP ingest throughput: ``POST /events`` on the bus against a bare Starlette endpoint, same run.

Run: ``python bench/http.py [--seconds 5] [--connections 32] [--loadgen auto|wrk|httpx]``, or
``python bench/http.py --in-process 3200 [--rounds 3]``: no sockets and no load generator, the same request
bytes fed to uvicorn's HTTP protocol in one process, bare and bus alternating; it prints server CPU per
request of each (the socket system calls, the same for both, left out) and a JSON line with ``cpu_ratio``.
Less noisy on a shared machine, and deterministic under ``valgrind --tool=cachegrind`` (instructions per
request: the difference of two runs with different ``--in-process`` counts, over the difference of counts).

Both servers run in their own process on uvicorn with identical settings (the same HTTP implementation,
``h11`` unless ``httptools`` is installed, which uvicorn then picks for both; the standard asyncio loop; no
access log, no ``server`` header; one process each; loopback):

- bare: a Starlette route that reads the body, parses the JSON and answers 202 (no bus).
- bus: ``pywats_events.http.Server`` over an ``EventBus`` (default in-memory store, idempotency on) with one
  no-op handler for ``test.result``; each request is answered 200 only after its event settled.

The same load generator hits both, one after the other: ``wrk`` when installed (Debian package ``wrk``),
else an httpx loop in a separate process with ``--connections`` concurrent keep-alive requests. Each server
gets a warm-up, then a measured run of ``--seconds``; the servers alternate for ``--rounds`` rounds and each
one's best run counts (other load on the machine comes and goes). Only 2xx answers count. Prints one line per figure
and, last, one JSON object: ``{"loadgen": "wrk" or "httpx", "http": "h11" or "httptools", "bare_rps": ...,
"bus_rps": ..., "ratio": bus_rps / bare_rps, "cpu_ratio": bare / bus server CPU per request (the best of
each), "rounds": [per round: both rates, both CPU figures and their ratios], ...}``. Without wrk (and with
``--loadgen auto``) it says so in capitals before the figures and ``loadgen`` is ``"httpx"``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# This file is named like the standard library's ``http`` package; run as a script, its folder comes
# first on sys.path and would shadow ``http.client`` for the third-party imports below (none above it
# imports ``http``).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

ROOT = _HERE.parent
sys.path.insert(0, str(ROOT))

BODY = json.dumps(
    {
        "type": "test.result",
        "source": "Vendor.Tester.SN0001",
        "payload": {"unit_id": "PANEL34543535", "result": "pass", "tests": [{"name": "v1", "value": 3.3}]},
    }
)


# -- the servers (run in a child process) ---------------------------------------------------------
def _bare_app() -> Any:
    """The bare Starlette endpoint: read the body, parse the JSON, answer 202."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def events(request: Request) -> Response:
        data = json.loads(await request.body())
        return Response(json.dumps({"accepted": 1 if isinstance(data, dict) else len(data)}), 202,
                        media_type="application/json")  # fmt: skip

    return Starlette(routes=[Route("/events", events, methods=["POST"])])


def _bus_server() -> Any:
    """``pywats_events.http.Server`` over a bus with one no-op ``test.result`` handler (not started)."""
    from pywats_events import Event, EventBus
    from pywats_events.http import HTTPSettings, Server

    bus = EventBus(freeze_gc=True)  # as `pywats-events run` configures it

    @bus.subscribe("test.result", name="noop")
    async def noop(event: Event) -> None:
        return None

    return Server(bus, HTTPSettings(port=0, log_level="warning"))


def _uvicorn_config(app: Any) -> Any:
    """uvicorn's settings as ``pywats_events.http.Server`` sets them (http and loop "auto": the same choice
    for both servers)."""
    import uvicorn

    return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", server_header=False)


async def _serve(kind: str) -> None:
    import socket

    import uvicorn

    class Quiet(uvicorn.Server):
        def capture_signals(self):  # type: ignore[no-untyped-def]
            import contextlib

            return contextlib.nullcontext()

    if kind == "bare":
        app = _bare_app()
        # proto IPPROTO_TCP as getaddrinfo gives (and the bus server uses): asyncio sets TCP_NODELAY only on
        # such sockets, and without it the two writes of a response wait for delayed ACKs (~40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        sock.setblocking(False)
        server = Quiet(_uvicorn_config(app))
        print(f"PORT {sock.getsockname()[1]}", flush=True)
        await server.serve(sockets=[sock])
        return

    http = _bus_server()
    await http.bus.start()
    await http.start()
    print(f"PORT {http.port}", flush=True)
    await http.wait()


# -- in process: uvicorn's protocol fed from memory -----------------------------------------------
class _MemoryTransport(asyncio.Transport):
    """What uvicorn's HTTP protocol writes to, in memory: counts complete answers (by Content-Length)."""

    def __init__(self) -> None:
        super().__init__()
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        m = re.search(rb"(?i)content-length: (\d+)", self.buf[:end]) if end >= 0 else None
        if m is not None and len(self.buf) >= end + 4 + int(m.group(1)):
            status = int(self.buf[9:12])
            self.buf.clear()
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(status)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


async def _in_process(kind: str, requests: int, connections: int) -> float:
    """Server CPU microseconds per request of ``requests`` requests over ``connections`` keep-alive
    connections, through uvicorn's HTTP protocol in this process (no sockets, no load generator)."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol
    from uvicorn.server import ServerState

    server = None
    if kind == "bare":
        app = _bare_app()
    else:
        server = _bus_server()
        app = server.app
        await server.bus.start()
        server.transport.set_serving(True)
    config = _uvicorn_config(app)
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    request = (
        b"POST /events HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(BODY.encode()), BODY.encode())
    )
    conns = []
    for _ in range(connections):
        protocol = AutoHTTPProtocol(config=config, server_state=state, app_state={}, _loop=loop)  # type: ignore[call-arg]
        transport = _MemoryTransport()
        protocol.connection_made(transport)
        conns.append((protocol, transport))
    bad = 0

    async def client(protocol: Any, transport: _MemoryTransport, n: int) -> None:
        nonlocal bad
        for _ in range(n):
            transport.waiter = loop.create_future()
            protocol.data_received(request)
            if await transport.waiter // 100 != 2:
                bad += 1

    per = max(1, requests // connections)
    await asyncio.gather(*(client(p, t, max(1, 200 // connections)) for p, t in conns))  # warm-up
    t0 = time.process_time()
    await asyncio.gather(*(client(p, t, per) for p, t in conns))
    cpu = time.process_time() - t0
    for protocol, _ in conns:
        protocol.connection_lost(None)
    if server is not None:
        await server.bus.stop()
    if bad:
        raise RuntimeError(f"{kind}: {bad} answers were not 2xx")
    return cpu / (per * connections) * 1e6


def in_process_main(rounds: int, requests: int, connections: int) -> None:
    """Alternate bare and bus in this process; print CPU per request per round and one JSON line."""
    cpu: dict[str, list[float]] = {"bare": [], "bus": []}
    for n in range(1, rounds + 1):
        for kind in ("bare", "bus"):
            cpu[kind].append(asyncio.run(_in_process(kind, requests, connections)))
        ratio = cpu["bare"][-1] / cpu["bus"][-1]
        print(f"round {n}: bare {cpu['bare'][-1]:,.1f} us, bus {cpu['bus'][-1]:,.1f} us CPU/request; ratio {ratio:.3f}")
    b, e = min(cpu["bare"]), min(cpu["bus"])
    print(json.dumps({
        "mode": "in-process", "http": _http_implementation(), "connections": connections, "requests": requests,
        "bare_cpu_us": round(b, 1), "bus_cpu_us": round(e, 1), "cpu_ratio": round(b / e, 3),
        "round_ratios": [round(x / y, 3) for x, y in zip(cpu["bare"], cpu["bus"], strict=True)],
        "load_avg": round(os.getloadavg()[0], 2),
    }))  # fmt: skip


# -- load generators ------------------------------------------------------------------------------
_LUA = """wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
"""


def _wrk(url: str, seconds: float, connections: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_LUA % BODY)
        script = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", script, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    duration = float(re.search(r"requests in ([\d.]+)s", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = int(m.group(1)) if m else 0
    return (total - bad) / duration


async def _httpx_load(url: str, seconds: float, connections: int) -> None:
    import httpx

    ok = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    body = BODY.encode()
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal ok
            while time.perf_counter() < deadline:
                r = await client.post(url, content=body, headers=headers)
                if r.status_code // 100 == 2:
                    ok += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - t0
    print(json.dumps({"rps": ok / elapsed}), flush=True)


def _httpx(url: str, seconds: float, connections: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--loadgen-child", url, str(seconds), str(connections)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["rps"])


# -- driver ---------------------------------------------------------------------------------------
def _http_implementation() -> str:
    """What uvicorn's ``http="auto"`` picks, in both servers: ``httptools`` when installed, else ``h11``."""
    import importlib.util

    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (Linux ``/proc``), or ``None`` elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(kind: str, loadgen: str, seconds: float, connections: int) -> tuple[float, float | None]:
    """``(requests per second, server CPU microseconds per request)`` of one measured run."""
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"{kind} server did not start: {line!r}")
        url = f"http://127.0.0.1:{int(line.split()[1])}/events"
        run = _wrk if loadgen == "wrk" else _httpx
        run(url, 1.0, connections)  # warm-up
        cpu0 = _cpu_seconds(proc.pid)
        rps = run(url, seconds, connections)
        cpu1 = _cpu_seconds(proc.pid)
        cpu_us = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / (rps * seconds) * 1e6
        return rps, cpu_us
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--loadgen", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per server; the best counts")
    parser.add_argument("--serve", choices=("bare", "bus"), help=argparse.SUPPRESS)
    parser.add_argument("--loadgen-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--in-process",
        type=int,
        metavar="REQUESTS",
        help="no sockets: feed REQUESTS requests through uvicorn's protocol in this process and report server "
        "CPU per request of both (deterministic enough for valgrind; the socket calls, the same for both, left out)",
    )
    args = parser.parse_args()
    if args.in_process:
        in_process_main(args.rounds, args.in_process, args.connections)
        return
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    if args.loadgen_child:
        url, seconds, connections = args.loadgen_child
        asyncio.run(_httpx_load(url, float(seconds), int(connections)))
        return
    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "wrk" if shutil.which("wrk") else "httpx"
        if loadgen == "httpx":
            print(
                "NOTE: wrk is not installed (Debian: apt-get install wrk); FALLING BACK to an httpx load generator, "
                "which is slower than the servers, so the figures below are not comparable with wrk's",
                flush=True,
            )
    elif loadgen == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--loadgen wrk: wrk is not installed (Debian: apt-get install wrk)")
    print(f"load generator: {loadgen}, {args.connections} connections, {args.seconds:g}s per run")
    # Alternate the servers and keep each one's best run, so a burst of load from other processes on the
    # machine does not decide the ratio.
    bare = bus = 0.0
    cpu: dict[str, list[float]] = {"bare": [], "bus": []}
    rounds: list[dict[str, float | None]] = []
    for n in range(1, args.rounds + 1):
        this: dict[str, float | None] = {}
        for kind, label in (("bare", "bare Starlette endpoint"), ("bus", "POST /events on the bus (settled)")):
            rps, cpu_us = measure(kind, loadgen, args.seconds, args.connections)
            shown = f", {cpu_us:,.0f} server CPU-us/request" if cpu_us is not None else ""
            print(f"round {n}: {label}: {rps:,.0f} requests/s{shown}")
            this[f"{kind}_rps"] = round(rps, 1)
            this[f"{kind}_cpu_us"] = None if cpu_us is None else round(cpu_us, 1)
            if cpu_us is not None:
                cpu[kind].append(cpu_us)
            if kind == "bare":
                bare = max(bare, rps)
            else:
                bus = max(bus, rps)
        this["ratio"] = round(this["bus_rps"] / this["bare_rps"], 3)  # type: ignore[operator]
        if this["bare_cpu_us"] and this["bus_cpu_us"]:
            this["cpu_ratio"] = round(this["bare_cpu_us"] / this["bus_cpu_us"], 3)
        print(
            f"round {n}: ratio {this['ratio']:.3f}"
            + (f", CPU-bound ratio {this['cpu_ratio']:.3f}" if "cpu_ratio" in this else "")
        )
        rounds.append(this)
    result: dict[str, object] = {
        "loadgen": loadgen,
        "http": _http_implementation(),
        "connections": args.connections,
        "bare_rps": round(bare, 1),
        "bus_rps": round(bus, 1),
        "ratio": round(bus / bare, 3),
    }
    if cpu["bare"] and cpu["bus"]:
        # Server CPU per request does not depend on what else runs on the machine; its ratio is the
        # throughput ratio a dedicated core would show.
        b, e = min(cpu["bare"]), min(cpu["bus"])
        print(f"server CPU per request: bare {b:,.0f} us, bus {e:,.0f} us; CPU-bound ratio {b / e:.3f}")
        result.update(bare_cpu_us=round(b, 1), bus_cpu_us=round(e, 1), cpu_ratio=round(b / e, 3))
    result["rounds"] = rounds
    result["load_avg"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
