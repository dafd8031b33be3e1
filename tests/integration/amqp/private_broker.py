"""A private RabbitMQ node owned by one test, for tests that restart or kill the broker.

The shared RabbitMQ on 127.0.0.1:5672 serves every engineer's tests at once, so no test may stop it. A
test that needs a broker restart starts its own node instead: node name ``pywats-test-<port>@localhost``,
AMQP on a port from ``PYWATS_PRIVATE_RABBITMQ_PORTS`` (default 56800-56899), Erlang distribution on the
next port, and its database, logs, configuration and enabled-plugins file (none) in a temporary directory.
The Erlang cookie is a copy of the shared node's, so ``rabbitmqctl -n <node>`` reaches it; epmd is the one
already running.

The VM runs in the foreground with ``RUNNING_UNDER_SYSTEMD=1`` so that ``rabbitmq-server`` execs straight
into ``beam.smp``: the ``Popen`` pid is the broker itself, and ``kill -9`` of it is a real broker crash.
Durable queues and persistent, confirmed messages survive a restart because the database directory is
kept between :meth:`PrivateRabbit.kill` and :meth:`PrivateRabbit.start`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.services import port_open

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
COOKIES = (Path.home() / ".erlang.cookie", Path("/var/lib/rabbitmq/.erlang.cookie"))


def _port_range() -> range:
    spec = os.environ.get("PYWATS_PRIVATE_RABBITMQ_PORTS", "56800-56899")
    low, _, high = spec.partition("-")
    return range(int(low), int(high or low) + 1)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_ports() -> tuple[int, int]:
    """An (AMQP, distribution) pair of free ports from the private range."""
    ports = _port_range()
    for amqp in ports[:-1:2]:
        if _free(amqp) and _free(amqp + 1):
            return amqp, amqp + 1
    raise RuntimeError(f"no two free ports in {ports.start}-{ports.stop - 1} for a private RabbitMQ")


class PrivateRabbit:
    """One private RabbitMQ node in ``base`` (a directory the test owns).

    ``url`` is its AMQP URL (guest/guest, allowed from 127.0.0.1). :meth:`start` waits up to ``timeout``
    seconds for the AMQP port; :meth:`kill` is ``kill -9`` of the VM; :meth:`stop` is a clean stop.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port, self.dist_port = _pick_ports()
        self.node = f"pywats-test-{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen[bytes] | None = None
        self.home = base / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = next((c for c in COOKIES if c.exists()), None)
        if cookie is None:
            raise RuntimeError(f"no Erlang cookie in {', '.join(map(str, COOKIES))}")
        target = self.home / ".erlang.cookie"
        target.write_bytes(cookie.read_bytes())
        target.chmod(0o400)
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\ndisk_free_limit.absolute = 50MB\n"
        )
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq/rabbitmq-env.conf (the shared node's)

    def env(self) -> dict[str, str]:
        """The environment for ``rabbitmq-server`` and ``rabbitmqctl`` of this node."""
        return {
            **os.environ,
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RUNNING_UNDER_SYSTEMD": "1",  # exec into the VM: our pid is the broker's
        }

    def start(self, timeout: float = 90.0) -> None:
        """Start the node and wait until it accepts AMQP connections (``RuntimeError`` after ``timeout`` s)."""
        assert self.proc is None or self.proc.poll() is not None, "the private RabbitMQ is already running"
        with open(self.base / "server.out", "ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [SERVER], env=self.env(), cwd=self.base, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port, 0.5):
            if self.proc.poll() is not None:
                raise RuntimeError(f"private RabbitMQ exited with {self.proc.returncode}: {self.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"private RabbitMQ not listening on {self.port} after {timeout} s: {self.output()}")
            time.sleep(0.2)

    def kill(self) -> None:
        """``kill -9`` the node's VM (a crash: nothing is flushed beyond what the broker had on disk)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl -n <node> ARGS`` and return its output (``RuntimeError`` on failure)."""
        done = subprocess.run(
            [CTL, "-n", self.node, *args], env=self.env(), capture_output=True, timeout=timeout, check=False
        )
        text = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {self.node} {' '.join(args)} failed: {text}")
        return text

    def stop(self) -> None:
        """Stop the node cleanly (SIGTERM, then SIGKILL after 30 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        """The tail of the node's console output (for error messages)."""
        try:
            return (self.base / "server.out").read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def private_rabbit_available() -> str | None:
    """Why a private node cannot be started here, or None when it can."""
    if not (Path(SERVER).exists() and Path(CTL).exists()):
        return f"RabbitMQ is not installed here ({SERVER})"
    if shutil.which("epmd") is None and not Path("/usr/lib/erlang/bin/epmd").exists():
        return "epmd is not installed"
    if not port_open("127.0.0.1", 4369, 0.5):
        return "epmd is not running on 127.0.0.1:4369"
    if not any(c.exists() for c in COOKIES):
        return "no Erlang cookie readable"
    return None


def require_private_rabbit() -> None:
    """Skip (or fail under ``PYWATS_REQUIRE_SERVICES=1``) when a private node cannot be started."""
    from tests.services import services_required

    reason = private_rabbit_available()
    if reason is None:
        return
    if services_required():
        pytest.fail(f"a private RabbitMQ cannot be started: {reason}")
    pytest.skip(f"a private RabbitMQ cannot be started: {reason}")
