"""One Settings object: the only place that reads lambdad's environment variables."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"
# Each broker's usual local address; SQS-compatible servers have no usual port, so none is assumed.
DEFAULT_EVENT_SOURCES = {
    "mq": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
    "redis": "redis://127.0.0.1:6379/0",
    "mqtt": "mqtt://127.0.0.1:1883",
    # libpq would otherwise connect as the OS user (root, for a server run as root).
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
}


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(",") if part.strip())


def parse_uid_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    return int(first), int(last or first)


def _networks(text: str) -> tuple[str, ...]:
    """Comma-separated IPv4 CIDRs, normalised ("10.1.2.3/8" -> "10.0.0.0/8") and merged where they
    overlap (an nftables interval set refuses overlapping elements); ValueError names a bad one."""
    networks = []
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.IPv4Network(part, strict=False))
        except ValueError as error:
            raise ValueError(f"not an IPv4 network (sandboxes have no IPv6): {part!r} ({error})") from None
    return tuple(str(network) for network in ipaddress.collapse_addresses(networks))


_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check_cluster(settings: Settings) -> None:
    """A node needs a shared PostgreSQL and names NATS accepts in streams, buckets and subjects."""
    if not settings.database_url.startswith("postgresql"):
        raise ValueError(
            "a cluster node needs --database-url postgresql+psycopg://USER@HOST/DB (the state every node "
            "shares); SQLite is for a single server"
        )
    for what, value in (("cluster name", settings.cluster_name), ("node id", settings.resolved_node_id)):
        if not _NAME.fullmatch(value):
            raise ValueError(f"{what} must be 1-64 letters, digits, '-' or '_', got {value!r}")
    if settings.capacity_provider and not _NAME.fullmatch(settings.capacity_provider):
        raise ValueError(
            f"capacity provider must be 1-64 letters, digits, '-' or '_', got {settings.capacity_provider!r}"
        )


def _boolean(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _mapping(text: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in text.split(",") if "=" in part)
    return {key.strip(): value.strip() for key, value in pairs}


@dataclass(frozen=True)
class Settings:
    """How one lambdad server is configured.

    Built once at start-up (``Settings.from_env``) and passed to whatever needs it; nothing below the
    composition root reads the environment. Each field ``x`` is also read from ``LAMBDAD_X``.
    """

    host: str = "127.0.0.1"
    port: int = 3001
    data_dir: Path = field(default_factory=lambda: Path(".lambdad"))
    account_id: str = DEFAULT_ACCOUNT_ID
    region: str = DEFAULT_REGION
    # SQLAlchemy URL; empty means the embedded SQLite database inside data_dir.
    database_url: str = ""
    log_level: str = "info"
    # Control-plane requests per second the API accepts before answering TooManyRequestsException
    # (AWS throttles its control plane too); 0 means no limit.
    api_rate_limit: float = 0
    # Bytes per second of output a function may put in its log (all its environments together), in
    # bursts of up to log_burst bytes; the rest is dropped and the log says how much. 0: no limit.
    log_rate_limit: int = 1024 * 1024
    log_burst: int = 10 * 1024 * 1024
    # Bytes a function's log group may hold on disk; past it, its oldest streams are removed. 0: no limit.
    log_group_max_bytes: int = 256 * 1024 * 1024
    # Bytes of code the server keeps on disk, all regions together: each package stored (function code,
    # layers) once, its zip plus its files unpacked in 4 KiB blocks (AWS's default quota is 75 GB, of
    # zipped code, per region).
    code_storage_limit: int = 80_530_636_800
    # Concurrent executions per region (AWS's default quota is 1,000).
    concurrency_limit: int = 1000
    # Sandbox implementation: "namespaces" (isolated, needs root) or "process" (unisolated, anywhere).
    sandbox: str = "namespaces"
    # Host uids (first, last) isolated sandboxes run as, one per sandbox (993 inside): leased
    # machine-wide, so lambdad servers on one machine may share a range. LAMBDAD_SANDBOX_UIDS="A-B".
    sandbox_uids: tuple[int, int] = (1_900_000_000, 1_900_065_535)
    # Network of every sandbox: "default" (outbound only), "none" (loopback only) or "host".
    network: str = "default"
    # Private IPv4 ranges (10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16) that "default"-network
    # sandboxes may reach anyway, as CIDRs (LAMBDAD_ALLOW_PRIVATE_NETWORK="10.1.0.0/16,192.168.5.0/24");
    # none by default, as a Lambda function outside a VPC reaches none of them.
    allow_private_network: tuple[str, ...] = ()
    # Whether a function may choose the host's network (tag ``lambdad:network=host``): it then reaches
    # every service on the host's loopback and can listen on host ports, so only the operator turns it on.
    allow_host_network: bool = False
    # Seconds an environment stays warm with nothing to do before it is removed (scale to zero).
    idle_timeout: float = 300
    # Pre-initialised ("spare") environments kept per runtime/network/tmp size in use, which a cold
    # start only specialises for its function (Python runtimes, isolated sandboxes); 0 turns them off.
    spares: int = 1
    # Delays before the retries of a failed Event invocation (AWS: two retries, about 1 and 2 minutes).
    async_retry_delays: tuple[float, ...] = (60.0, 120.0)
    # The longest wait before a throttled Event invocation (or one that met a system error, or whose
    # destination was unreachable) returns from the queue; the wait doubles from 1 s up to this (AWS: 5 min).
    async_throttle_backoff_max: float = 300.0
    # Event invocations run at the same time by this server (each holds an execution environment).
    async_workers: int = 16
    # Broker or database URL per event source ARN service (``arn:aws:<service>:...``): where event
    # source mappings read and destinations write. LAMBDAD_EVENT_SOURCES="sqs=http://...,redis=...".
    event_sources: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_EVENT_SOURCES))
    # Seconds between two looks of the schedule runner at what is due (AWS fires within the minute).
    schedule_tick_seconds: float = 1.0
    # The length of a rate expression's minute, in seconds: 60 as on AWS; tests shorten it so that
    # ``rate(1 minute)`` fires every few seconds (a lambdad-only knob, LAMBDAD_SCHEDULE_MINUTE_SECONDS).
    schedule_minute_seconds: float = 60.0
    # Where runtime clients (awslambdaric, aws-lambda-ric) are installed; empty = data_dir/runtimes.
    runtimes_dir: str = ""
    # Interpreter per runtime, overriding discovery: {"python3.12": "/usr/bin/python3.12"}.
    interpreters: dict[str, str] = field(default_factory=dict)
    # The API port's limits on one client: bytes and fields of a request head (more is answered 431),
    # seconds a head may take to arrive or a body may stall (slowloris), and open connections (one more
    # is answered 503; at most half the open-file limit, which lambdad raises to the hard limit at start).
    http_max_header_bytes: int = 65536
    http_max_headers: int = 100
    http_header_timeout: float = 10.0
    http_max_connections: int = 4096
    # Cluster mode (docs/cluster.md): set nats_url (with a PostgreSQL database_url) and this server is one
    # node of a cluster; empty means the single-node embedded server.
    nats_url: str = ""
    # This node's name in the cluster (default: the host's name); unique among live nodes.
    node_id: str = ""
    # The URL other nodes reach this one at (default http://HOST:PORT, HOST 127.0.0.1 for a wildcard).
    advertise_url: str = ""
    # Prefix of every NATS stream, bucket and subject the cluster uses: clusters sharing a NATS server
    # keep apart by name.
    cluster_name: str = "lambdad"
    # The capacity provider (Lambda Managed Instances) whose group this node belongs to; empty: none.
    capacity_provider: str = ""
    # Authentication of API requests: "none" (every request acts as account_id's root; loopback only,
    # unless ``insecure``) or "sigv4" (AWS Signature Version 4, verified against the identity store).
    auth: str = "none"
    # Listen on a non-loopback address with auth "none" anyway (anyone reaching the port deploys code).
    insecure: bool = False
    # PEM certificate (chain) and private key: the API is served over HTTPS. Both or neither.
    tls_cert: str = ""
    tls_key: str = ""
    # The key ring that seals secrets at rest (environment variables, signing keys): a file outside the
    # data directory, made at first start (lambdad.store.keyring). Every node of a cluster reads a copy.
    key_file: Path = field(default_factory=lambda: Path("~/.config/lambdad/keyring"))
    # Seconds an execution environment lives at most (AWS recycles its environments after a few hours,
    # busy or not, so their role credentials never run out): past it, an idle one is stopped and a busy
    # one when its invocation ends. Also kept below its role session's expiry (role_session_seconds).
    environment_max_age: float = 7200.0
    # Seconds the role session each environment is given lasts (AWS_ACCESS_KEY_ID/..._SESSION_TOKEN of its
    # execution role); well over environment_max_age, so credentials outlive the environment.
    role_session_seconds: int = 43200

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``LAMBDAD_*`` variables, then explicit overrides (CLI flags) on top."""
        env = os.environ if environ is None else environ
        parsers: dict[str, Callable[[str], Any]] = {
            "port": int,
            "allow_host_network": _boolean,
            "insecure": _boolean,
            "data_dir": Path,
            "key_file": Path,
            "environment_max_age": float,
            "role_session_seconds": int,
            "api_rate_limit": float,
            "code_storage_limit": int,
            "log_rate_limit": int,
            "log_burst": int,
            "log_group_max_bytes": int,
            "concurrency_limit": int,
            "idle_timeout": float,
            "spares": int,
            "async_retry_delays": _floats,
            "async_throttle_backoff_max": float,
            "async_workers": int,
            "schedule_tick_seconds": float,
            "schedule_minute_seconds": float,
            "interpreters": _mapping,
            "sandbox_uids": parse_uid_range,
            "allow_private_network": _networks,
            "http_max_header_bytes": int,
            "http_max_headers": int,
            "http_header_timeout": float,
            "http_max_connections": int,
            "event_sources": lambda text: {**DEFAULT_EVENT_SOURCES, **_mapping(text)},
        }
        values: dict[str, Any] = {}
        for spec in fields(cls):
            variable = f"LAMBDAD_{spec.name.upper()}"
            if variable in env:
                values[spec.name] = parsers.get(spec.name, str)(env[variable])
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("data_dir", "key_file"):
            if name in values:
                values[name] = Path(values[name])
        if isinstance(values.get("allow_private_network"), str):  # the CLI flag, as typed
            values["allow_private_network"] = _networks(values["allow_private_network"])
        settings = cls(**values)
        if not (len(settings.account_id) == 12 and settings.account_id.isdigit()):
            raise ValueError(f"account id must be 12 digits, got {settings.account_id!r}")
        if settings.sandbox not in ("namespaces", "process"):
            raise ValueError(f"sandbox must be 'namespaces' or 'process', got {settings.sandbox!r}")
        first, last = settings.sandbox_uids
        if not 1000 <= first <= last < 2**31:
            raise ValueError(f"sandbox uids must be a range within 1000-2147483647, got {first}-{last}")
        if settings.spares < 0:
            raise ValueError(f"spares must be 0 or more, got {settings.spares}")
        if settings.async_workers < 1:
            raise ValueError(f"async workers must be 1 or more, got {settings.async_workers}")
        if min(settings.log_rate_limit, settings.log_burst, settings.log_group_max_bytes) < 0:
            raise ValueError("log limits must be 0 (none) or more")
        if min(settings.http_max_header_bytes, settings.http_max_headers, settings.http_max_connections) < 1:
            raise ValueError("HTTP limits (header bytes, headers, connections) must be 1 or more")
        if settings.http_header_timeout <= 0:
            raise ValueError(f"the HTTP header timeout must be over 0, got {settings.http_header_timeout}")
        if settings.clustered:
            _check_cluster(settings)
        if settings.environment_max_age <= 0:
            raise ValueError(
                f"environment max age must be over 0 seconds, got {settings.environment_max_age}"
            )
        if not 900 <= settings.role_session_seconds <= 43200:
            # STS's bounds on a role session (15 minutes to 12 hours).
            raise ValueError(
                f"role session seconds must be 900-43200 (STS's bounds), got {settings.role_session_seconds}"
            )
        if settings.network not in ("default", "none", "host"):
            raise ValueError(f"network must be 'default', 'none' or 'host', got {settings.network!r}")
        if settings.auth not in ("none", "sigv4"):
            raise ValueError(f"auth must be 'none' or 'sigv4', got {settings.auth!r}")
        if bool(settings.tls_cert) != bool(settings.tls_key):
            raise ValueError("TLS needs both a certificate (--tls-cert) and its private key (--tls-key)")
        return settings

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def host_network_allowed(self) -> bool:
        """Whether functions may run on the host's network (allowed, or every function already does)."""
        return self.allow_host_network or self.network == "host"

    @property
    def loopback_only(self) -> bool:
        """Whether the API listens on a loopback address only (no other machine can reach it)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: it may resolve to any address

    @property
    def unauthenticated_exposure(self) -> str | None:
        """Why this server must not start (anyone on the network could act as root), or None."""
        if self.auth == "none" and not self.loopback_only and not self.insecure:
            return (
                f"refusing to listen on {self.host} with --auth none: anyone reaching the port could deploy "
                "and run code; use --auth sigv4, or --insecure if that is what you want"
            )
        return None

    @property
    def clustered(self) -> bool:
        """Whether this server is a node of a cluster (NATS and a shared PostgreSQL) or stands alone."""
        return bool(self.nats_url)

    @property
    def resolved_node_id(self) -> str:
        """This node's id: the configured one, or the host's name."""
        return self.node_id or socket.gethostname().split(".")[0]

    @property
    def resolved_advertise_url(self) -> str:
        """Where other nodes reach this one."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: the configured one, or SQLite inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'lambdad.db').resolve()}"

    @property
    def resolved_key_file(self) -> Path:
        """The key ring's path, ``~`` expanded."""
        return self.key_file.expanduser()

    @property
    def code_dir(self) -> Path:
        """Where code packages live, content-addressed by SHA-256."""
        return self.data_dir / "code"

    @property
    def tasks_dir(self) -> Path:
        """Where code packages are unpacked for environments to mount at /var/task."""
        return self.data_dir / "tasks"

    @property
    def logs_dir(self) -> Path:
        """Where function logs are kept."""
        return self.data_dir / "logs"

    @property
    def resolved_runtimes_dir(self) -> Path:
        """Where runtime clients are installed."""
        return Path(self.runtimes_dir) if self.runtimes_dir else self.data_dir / "runtimes"
