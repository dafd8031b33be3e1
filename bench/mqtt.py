"""MQTT consume benchmark: a plain aiomqtt subscriber against MQTTTransport -> EventBus -> no-op handler.

Run: ``python bench/mqtt.py [--count 20000] [--size 1000] [--rounds 3] [--mode live|drain] [--tuned]
[--max-inflight 100] [--broker host:port] [--broker-conf 'set_tcp_nodelay true']``.

Each round runs (a) then (b) with the same broker and the same publisher; the medians are reported.

- ``live`` (default): the consumer is connected and subscribed (QoS 1); a separate publisher process (paho,
  QoS 1, 1000 in flight) sends ``--count`` JSON messages of about ``--size`` bytes; the rate is messages /
  seconds from the first to the last message consumed. The publisher's own rate (PUBACKs from the broker)
  is printed too: when a consumer matches it, the publisher is the limit, not the consumer.
- ``drain``: the messages are first queued by the broker for the consumer's persistent session (MQTT 5,
  session expiry 10 min); the consumer then connects and empties it. The rate runs from the connect to the
  last message handled.

(a) acknowledges each message as paho parses it; (b) maps the topic, builds an Event, routes it through the
bus (idempotency lookup, lane, handler, idempotency record) and sends the PUBACK only after settlement.
"CPU" is this process's CPU time over the wall time (share of one core), and per message.

By default a private Mosquitto is started on a free port with ``max_queued_messages 0`` (unlimited): its
default of 1000 queued messages per client would drop messages in ``drain`` mode (and whenever a consumer
falls behind). ``--broker`` uses an existing broker instead.

The last output line is one JSON object: ``{"raw_eps": ..., "bus_eps": ..., "ratio": ...}`` (medians).

``--large N`` runs only the large-message case (issue 9): a consumer child process (MQTTTransport with
default settings -> bus -> SQLite store) samples its RSS every 5 ms (psutil) while N payloads of
``--large-mb`` MiB (default 50, over the 8 MiB ``max_message_size``: dead-lettered ``too_large``) and then N
of ``--under-mb`` MiB (default 6: decoded and stored) are published at QoS 1. Last line:
``{"large_mb", "under_mb", "count", "rss_baseline_mb", "rss_peak_mb", "rss_after_mb",
"peak_rise_per_large_message", "after_minus_baseline_mb", "pending_bytes_high_water_mb", "too_large",
"handled"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

# Run as a script, this folder is sys.path[0]; its bench/http.py would shadow the standard library's http.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import aiomqtt  # noqa: E402
import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from pywats_events import Event, EventBus  # noqa: E402
from pywats_mqtt import MQTTTransport  # noqa: E402

SESSION_EXPIRY = 600
#: Share of one core this process used while consuming (CPU seconds / wall seconds), per consumer.
CPU: dict[str, float] = {}
#: Rates at which the publisher got its PUBACKs (messages per second), one per publish.
PUBLISHED: list[float] = []


def body(seq: int, size: int) -> bytes:
    doc = {"seq": seq, "station": "ict-1", "serial": f"SN{seq:08d}", "result": "pass", "pad": ""}
    raw = json.dumps(doc)
    doc["pad"] = "x" * max(0, size - len(raw))
    return json.dumps(doc).encode()


def preload(host: str, port: int, topic: str, count: int, size: int) -> None:
    """Publish ``count`` QoS 1 messages and wait until the broker acknowledged them all."""
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(1000)
    done = threading.Semaphore(0)
    client.on_publish = lambda c, u, mid, rc, p: done.release()
    client.connect(host, port)
    client.loop_start()
    payloads = [body(i, size) for i in range(count)]
    t0 = time.perf_counter()
    for p in payloads:
        client.publish(topic, p, qos=1)
    for _ in range(count):
        if not done.acquire(timeout=60):
            raise RuntimeError("broker did not acknowledge the preload")
    PUBLISHED.append(count / (time.perf_counter() - t0))
    client.disconnect()
    client.loop_stop()


def session_props() -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY
    return props


async def raw_consumer(host: str, port: int, topic: str, count: int, size: int) -> float:
    cid = f"bench-raw-{uuid.uuid4().hex[:8]}"
    kwargs = {
        "identifier": cid,
        "protocol": aiomqtt.ProtocolVersion.V5,
        "clean_start": False,
        "properties": session_props(),
    }
    async with aiomqtt.Client(host, port, **kwargs) as c:  # type: ignore[arg-type]
        await c.subscribe(topic, qos=1)
    await asyncio.to_thread(preload, host, port, topic, count, size)
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    async with aiomqtt.Client(host, port, **kwargs) as c:  # type: ignore[arg-type]
        async for _ in c.messages:
            n += 1
            if n == count:
                break
        elapsed = time.perf_counter() - t0
    CPU["raw"] = (time.process_time() - c0) / elapsed
    async with aiomqtt.Client(host, port, identifier=cid, protocol=aiomqtt.ProtocolVersion.V5, clean_start=True):
        pass  # discard the session
    return count / elapsed


async def bus_consumer(host: str, port: int, prefix: str, count: int, size: int, max_inflight: int) -> float:
    cid = f"bench-bus-{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}/ict-1"

    def transport() -> MQTTTransport:
        return MQTTTransport(
            "mqtt",
            host=host,
            port=port,
            client_id=cid,
            session_expiry=SESSION_EXPIRY,
            max_inflight=max_inflight,
            status_topic=None,
            rules=[{"topic": f"{prefix}/{{station}}", "type": "sensor.reading", "source": "{station}"}],
        )

    first = transport()
    bus = EventBus()
    bus.add_transport(first)
    async with bus:
        pass  # session and subscription exist now
    await asyncio.to_thread(preload, host, port, topic, count, size)

    bus = EventBus()
    t = transport()
    handled = 0
    finished = asyncio.Event()

    @bus.subscribe("sensor.reading")
    async def noop(event: Event) -> None:
        nonlocal handled
        handled += 1
        if handled == count:
            finished.set()

    bus.add_transport(t)
    t0, c0 = time.perf_counter(), time.process_time()
    await bus.start()
    await finished.wait()
    elapsed = time.perf_counter() - t0
    CPU["bus"] = (time.process_time() - c0) / elapsed
    await bus.stop()
    print(f"    bus consumer: pending high water {t.pending_high_water}, acknowledged {t.acknowledged}")
    cleanup = MQTTTransport(
        "cleanup", host=host, port=port, client_id=cid, persistent_session=False, status_topic=None,
        rules=[{"topic": f"{prefix}/none", "type": "x.y"}],
    )
    cleanup_bus = EventBus()
    cleanup_bus.add_transport(cleanup)
    async with cleanup_bus:
        pass
    return count / elapsed


async def spawn_publisher(host: str, port: int, topic: str, count: int, size: int) -> asyncio.subprocess.Process:
    """Start a publisher process (paho, QoS 1, 1000 in flight) so that it does not share our CPU time."""
    return await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--publish-only", f"{host}:{port}", topic, str(count), str(size)
    )


async def raw_live(host: str, port: int, topic: str, count: int, size: int, nodelay: bool = False) -> float:
    n = 0
    options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)] if nodelay else None
    async with aiomqtt.Client(host, port, protocol=aiomqtt.ProtocolVersion.V5, socket_options=options) as c:
        await c.subscribe(topic, qos=1)
        pub = await spawn_publisher(host, port, topic, count, size)
        c0 = time.process_time()
        async for _ in c.messages:
            n += 1
            if n == 1:
                t0 = time.perf_counter()
            if n == count:
                break
        elapsed = time.perf_counter() - t0
        CPU["raw-nodelay" if nodelay else "raw"] = (time.process_time() - c0) / elapsed
    await pub.wait()
    return (count - 1) / elapsed


async def bus_live(host: str, port: int, prefix: str, count: int, size: int, max_inflight: int) -> float:
    t = MQTTTransport(
        "mqtt",
        host=host,
        port=port,
        client_id=f"bench-bus-{uuid.uuid4().hex[:8]}",
        persistent_session=False,
        max_inflight=max_inflight,
        status_topic=None,
        rules=[{"topic": f"{prefix}/{{station}}", "type": "sensor.reading", "source": "{station}"}],
    )
    bus = EventBus()
    handled = 0
    finished = asyncio.Event()
    t0 = 0.0

    @bus.subscribe("sensor.reading")
    async def noop(event: Event) -> None:
        nonlocal handled, t0
        handled += 1
        if handled == 1:
            t0 = time.perf_counter()
        if handled == count:
            finished.set()

    bus.add_transport(t)
    async with bus:
        pub = await spawn_publisher(host, port, f"{prefix}/ict-1", count, size)
        c0 = time.process_time()
        await finished.wait()
        elapsed = time.perf_counter() - t0
        CPU["bus"] = (time.process_time() - c0) / elapsed
        await pub.wait()
    print(f"    bus consumer: pending high water {t.pending_high_water}, acknowledged {t.acknowledged}")
    return (count - 1) / elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A private Mosquitto with unlimited per-client queues, started for this run."""

    def __init__(self, extra: list[str]) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pywats-bench-mosquitto-"))
        self.dir.chmod(0o777)
        conf = self.dir / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "max_queued_messages 0"]
        lines += [f"log_dest file {self.dir}/mosquitto.log", *extra]
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private mosquitto did not start")

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


async def large_child(host: str, port: int, topic: str, count: int) -> None:
    """The large-message consumer: print READY, then one JSON line with RSS figures once ``count`` are acked."""
    import gc

    import psutil

    from pywats_events.sql_store import open_store

    me = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        t = MQTTTransport(
            "bench",
            host=host,
            port=port,
            client_id=f"bench-large-{uuid.uuid4().hex[:8]}",
            status_topic=None,
            rules=[{"topic": f"{topic}/{{station}}", "type": "sensor.reading", "source": "{station}"}],
        )
        bus = EventBus(store=open_store(f"sqlite:///{tmp}/bench.db"))
        handled = 0

        @bus.subscribe("sensor.reading")
        async def noop(event: Event) -> None:
            nonlocal handled
            handled += 1

        bus.add_transport(t)
        gc.collect()
        baseline = me.memory_info().rss
        peak = baseline
        await bus.start()
        print("READY", flush=True)
        while t.acknowledged < count:
            await asyncio.sleep(0.005)
            peak = max(peak, me.memory_info().rss)
        await asyncio.sleep(1.0)
        gc.collect()
        after = me.memory_info().rss
        await bus.stop()
    print(
        json.dumps(
            {
                "baseline": baseline,
                "peak": peak,
                "after": after,
                "pending_hw": t.pending_bytes_high_water,
                "too_large": t.too_large,
                "handled": handled,
            }
        ),
        flush=True,
    )


async def main_large(host: str, port: int, n: int, large_mb: int, under_mb: int) -> dict[str, object]:
    mib = 1024 * 1024
    topic = f"bench/large/{uuid.uuid4().hex[:8]}"
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child-large", f"{host}:{port}", topic, str(2 * n),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    assert (await child.stdout.readline()).strip() == b"READY"
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect(host, port)
    client.loop_start()
    try:
        for size_mb in (large_mb, under_mb):
            payload = body(0, size_mb * mib)
            for i in range(n):
                client.publish(f"{topic}/st{i}", payload, qos=1).wait_for_publish(60)
            del payload
    finally:
        client.disconnect()
        client.loop_stop()
    out, _ = await child.communicate()
    r = json.loads(out.decode().strip().splitlines()[-1])
    result: dict[str, object] = {
        "large_mb": large_mb,
        "under_mb": under_mb,
        "count": n,
        "rss_baseline_mb": round(r["baseline"] / mib, 1),
        "rss_peak_mb": round(r["peak"] / mib, 1),
        "rss_after_mb": round(r["after"] / mib, 1),
        "peak_rise_per_large_message": round((r["peak"] - r["baseline"]) / (large_mb * mib), 2),
        "after_minus_baseline_mb": round((r["after"] - r["baseline"]) / mib, 1),
        "pending_bytes_high_water_mb": round(r["pending_hw"] / mib, 1),
        "too_large": r["too_large"],
        "handled": r["handled"],
    }
    print(
        f"RSS baseline {result['rss_baseline_mb']} MB, peak {result['rss_peak_mb']} MB "
        f"({result['peak_rise_per_large_message']}x one large message), after {result['rss_after_mb']} MB"
    )
    return result


async def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child-large":
        host, port_text = sys.argv[2].rsplit(":", 1)
        await large_child(host, int(port_text), sys.argv[3], int(sys.argv[4]))
        return
    if len(sys.argv) == 6 and sys.argv[1] == "--publish-only":
        host, port_text = sys.argv[2].rsplit(":", 1)
        preload(host, int(port_text), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        print(f"      publisher: {PUBLISHED[-1]:10,.0f} msg/s acknowledged by the broker", flush=True)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--size", type=int, default=1000, help="payload bytes (about)")
    ap.add_argument("--max-inflight", type=int, default=100, help="MQTTTransport max_inflight (Receive Maximum)")
    ap.add_argument(
        "--mode",
        choices=["live", "drain"],
        default="live",
        help="live: a publisher process runs while the consumer consumes; drain: the consumer empties a "
        "preloaded persistent session",
    )
    ap.add_argument("--rounds", type=int, default=3, help="(a) then (b), this many times; medians reported")
    ap.add_argument("--tuned", action="store_true", help="also run aiomqtt with TCP_NODELAY each round")
    ap.add_argument("--broker", help="host:port of an existing broker instead of a private Mosquitto")
    ap.add_argument(
        "--broker-conf",
        action="append",
        default=[],
        help="extra mosquitto.conf line for the private broker (repeatable), e.g. 'set_tcp_nodelay true'",
    )
    ap.add_argument("--large", type=int, default=0, help="run only the large-message case with N of each")
    ap.add_argument("--large-mb", type=int, default=50)
    ap.add_argument("--under-mb", type=int, default=6)
    args = ap.parse_args()
    broker = None
    if args.broker:
        host, port_text = args.broker.rsplit(":", 1)
        port = int(port_text)
    else:
        broker = Broker(args.broker_conf)
        host, port = "127.0.0.1", broker.port
    if args.large:
        try:
            print(json.dumps(await main_large(host, port, args.large, args.large_mb, args.under_mb)))
        finally:
            if broker is not None:
                broker.close()
        return
    run = uuid.uuid4().hex[:8]
    raws: list[float] = []
    buses: list[float] = []
    raw_us: list[float] = []
    bus_us: list[float] = []
    try:
        print(
            f"{args.count} QoS 1 messages of {len(body(0, args.size))} bytes via Mosquitto at {host}:{port}, "
            f"mode {args.mode}, {args.rounds} round(s)"
        )
        for r in range(args.rounds):
            topic = f"bench/{run}/{r}"
            if args.tuned and args.mode == "live":
                tuned = await raw_live(host, port, f"{topic}/tuned", args.count, args.size, nodelay=True)
                print(
                    f"  (a') aiomqtt with TCP_NODELAY:              {tuned:10,.0f} msg/s  "
                    f"(CPU {CPU['raw-nodelay']:.0%} of a core, {CPU['raw-nodelay'] / tuned * 1e6:.0f} us/msg)"
                )
            if args.mode == "live":
                raw = await raw_live(host, port, f"{topic}/raw", args.count, args.size)
            else:
                raw = await raw_consumer(host, port, f"{topic}/raw", args.count, args.size)
            print(
                f"  (a) plain aiomqtt subscriber:              {raw:10,.0f} msg/s  "
                f"(CPU {CPU['raw']:.0%} of a core, {CPU['raw'] / raw * 1e6:.0f} us/msg)"
            )
            if args.mode == "live":
                bus = await bus_live(host, port, f"{topic}/bus", args.count, args.size, args.max_inflight)
            else:
                bus = await bus_consumer(host, port, f"{topic}/bus", args.count, args.size, args.max_inflight)
            print(
                f"  (b) MQTTTransport -> bus -> no-op handler: {bus:10,.0f} msg/s  "
                f"(CPU {CPU['bus']:.0%} of a core, {CPU['bus'] / bus * 1e6:.0f} us/msg, "
                f"max_inflight {args.max_inflight})"
            )
            raws.append(raw)
            buses.append(bus)
            raw_us.append(CPU["raw"] / raw * 1e6)
            bus_us.append(CPU["bus"] / bus * 1e6)
        raw, bus = statistics.median(raws), statistics.median(buses)
        print(
            f"median: (a) {raw:,.0f} msg/s, (b) {bus:,.0f} msg/s, ratio {bus / raw:.2f}; "
            f"CPU per message (a) {statistics.median(raw_us):.0f} us, (b) {statistics.median(bus_us):.0f} us"
        )
        print(json.dumps({"raw_eps": round(raw, 1), "bus_eps": round(bus, 1), "ratio": round(bus / raw, 3)}))
    finally:
        if broker is not None:
            broker.close()


if __name__ == "__main__":
    asyncio.run(main())
