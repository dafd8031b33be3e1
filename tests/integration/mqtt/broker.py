"""Real-broker helpers for the MQTT tests: a private Mosquitto we may stop and start, and an independent
publisher/subscriber (plain paho-mqtt on its own network thread, not the code under test)."""

from __future__ import annotations

import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.services import MOSQUITTO, services_required

HOST = MOSQUITTO[0]
SHARED_PORT = MOSQUITTO[1]
MOSQUITTO_BIN = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def need_binary(name: str, path: str | None) -> str:
    """``path`` when the program exists; else skip (or fail under PYWATS_REQUIRE_SERVICES=1)."""
    if path:
        return path
    message = f"the {name!r} program is not installed (Debian: apt-get install -y mosquitto mosquitto-clients)"
    if services_required():
        pytest.fail(message + " (PYWATS_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def free_port() -> int:
    """A TCP port nobody listens on now (18830..28830)."""
    return _free_port()


def _free_port() -> int:
    for _ in range(50):
        port = random.randint(18830, 28830)
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port found for a private Mosquitto")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class PrivateBroker:
    """A Mosquitto of our own on a random port, with persistence in a temporary folder, so that tests may
    stop and restart it without disturbing the shared broker other engineers' tests use.

    Args:
        extra: more ``mosquitto.conf`` lines (a TLS listener, ``allow_anonymous false``...).
    """

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        self.binary = need_binary("mosquitto", MOSQUITTO_BIN)
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pywats-mosquitto-"))
        # Mosquitto started as root drops to the 'mosquitto' user, which must be able to write here.
        self.dir.chmod(0o777)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} {HOST}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.dir}/\n"
            f"log_dest file {self.dir}/mosquitto.log\n"
            "max_queued_messages 100000\n" + "".join(line + "\n" for line in extra)
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections."""
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while not _answers(self.port):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"private mosquitto exited with {self.proc.returncode}: {err}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"private mosquitto did not answer on port {self.port}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker gracefully (SIGTERM: it saves its persistence file) and wait for it to exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        """Stop it (killing it if needed) and remove its folder."""
        try:
            self.stop()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
            shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int


class Client:
    """An independent MQTT client (paho-mqtt with its own network thread) for publishing test input and
    watching what the transport publishes."""

    def __init__(self, port: int = SHARED_PORT, client_id: str = "", protocol: str = "5") -> None:
        self.messages: queue.Queue[Received] = queue.Queue()
        self._connected = threading.Event()
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if protocol == "5" else MQTTProtocolVersion.MQTTv311,
        )
        self.client.on_connect = lambda c, u, f, rc, p: self._connected.set()
        self.client.on_message = lambda c, u, m: self.messages.put(Received(m.topic, m.payload, bool(m.retain), m.qos))
        self.client.connect(HOST, port, 30)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise RuntimeError("test client could not connect")

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda c, u, mid, rcs, p: done.set()
        self.client.subscribe(topic, qos)
        if not done.wait(10):
            raise RuntimeError("no SUBACK")

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        """Publish and, for QoS 1, wait for the broker's PUBACK."""
        info = self.client.publish(topic, payload, qos, retain)
        info.wait_for_publish(10)

    def get(self, timeout: float = 10.0) -> Received:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_tls_files(folder: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 (EC P-256, one day), made with ``openssl``.

    Returns paths ``ca``, ``cert``, ``key``. Skips (or fails under PYWATS_REQUIRE_SERVICES=1) without openssl.
    """
    openssl = need_binary("openssl", shutil.which("openssl"))
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, csr, ext = folder / "server.pem", folder / "server.key", folder / "server.csr", folder / "san.ext"
    # The extensions Python 3.13's default (VERIFY_X509_STRICT) context requires: a CA with key usage, a
    # leaf with an authority key identifier.
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n"
    )
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = [
        [openssl, "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "1", "-subj", "/CN=test-ca",
         *ca_ext],
        [openssl, "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1"],
        [
            openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(cert), "-days", "1", "-extfile", str(ext),
        ],
    ]
    for cmd in run:
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    for p in (ca, cert, key):
        p.chmod(0o644)  # readable by the 'mosquitto' user the broker drops to
    return {"ca": ca, "cert": cert, "key": key}
