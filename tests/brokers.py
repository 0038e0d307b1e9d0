"""Broker processes of a test's or benchmark's own on free loopback ports, to stop and start again:
moto's SQS server, a private RabbitMQ node, a private Mosquitto. Also publishing to a Mosquitto, and a
database of a test's own on the shared PostgreSQL. (The shared brokers on their standard ports are never
restarted.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from tests.support import free_port

POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"broker exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class BrokerProcess:
    """A broker process of the test's own on a free loopback port, to stop and start again."""

    command: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout: float = 20
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self) -> BrokerProcess:
        self.log = self.log or Path(tempfile.mkstemp(prefix="broker-", suffix=".log")[1])
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        wait_for_port(self.port, self.startup_timeout, self.process)
        return self

    def stop(self, sig: int = signal.SIGKILL) -> None:
        """Kill the broker (its whole process group) and wait until it is gone."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def cleanup(self) -> None:
        self.stop()
        if self.log is not None:
            self.log.unlink(missing_ok=True)


def moto_server(port: int | None = None) -> BrokerProcess:
    """moto's server: a real SQS-compatible HTTP service (its state lives in the process)."""
    port = port or free_port()
    binary = Path(sys.executable).parent / "moto_server"
    return BrokerProcess([str(binary), "-H", "127.0.0.1", "-p", str(port)], port)


RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def private_rabbitmq(home: Path) -> BrokerProcess:
    """A RabbitMQ node of the test's own, keeping its data under ``home`` across restarts (starting
    one takes several seconds; the shared broker on 5672 is never restarted)."""
    port = free_port()
    (home / "enabled_plugins").write_text("[].\n")  # no management listener on a shared port
    (home / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{port}\n")
    env = {
        "HOME": str(home),
        "RABBITMQ_NODENAME": f"lambdad-test-{port}@localhost",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"),
        "RABBITMQ_PID_FILE": str(home / "pid"),
    }
    return BrokerProcess([str(RABBITMQ_SERVER)], port, env=env, startup_timeout=90)


def private_mosquitto(home: Path) -> BrokerProcess:
    """A Mosquitto of the test's own that keeps its sessions under ``home`` across restarts (it saves
    them when stopped, and about every second)."""
    port = free_port()
    config = home / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "user root\n"  # keep the rights to the test's directory (mosquitto drops to its own user)
        "persistence true\n"
        f"persistence_location {home}/\n"
        "autosave_interval 1\n"
        "autosave_on_changes true\n"
    )
    return BrokerProcess(["/usr/sbin/mosquitto", "-c", str(config)], port)


def private_nats(home: Path) -> BrokerProcess:
    """A NATS server with JetStream of the test's own, keeping its streams under ``home`` across
    restarts (the shared one on 4222 is a system service, never restarted)."""
    port = free_port()
    return BrokerProcess(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(home)], port)


def mqtt_publish(topic: str, *payloads: bytes, port: int = 1883) -> None:
    """Publish to the Mosquitto on ``port`` at QoS 1, waiting for each PUBACK."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A database ``<prefix>_<hex>`` of the caller's own on the shared PostgreSQL (its URL), dropped
    afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
