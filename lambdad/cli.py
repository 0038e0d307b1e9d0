"""The ``lambdad`` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler

from lambdad import __version__
from lambdad.settings import Settings, parse_uid_range

console = Console(stderr=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lambdad`` console script."""
    parser = argparse.ArgumentParser(prog="lambdad", description="A self-hosted AWS Lambda.")
    parser.add_argument("--version", action="version", version=f"lambdad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the Lambda API")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1, env LAMBDAD_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 3001, env LAMBDAD_PORT)")
    serve.add_argument(
        "--data-dir", type=Path, help="where state lives (default ./.lambdad, env LAMBDAD_DATA_DIR)"
    )
    serve.add_argument("--account-id", help="the 12-digit account id in ARNs (default 000000000000)")
    serve.add_argument("--region", help="region for requests that carry none (default us-east-1)")
    serve.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data directory)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--api-rate-limit",
        type=float,
        help="control-plane requests per second before 429 (default: no limit)",
    )
    serve.add_argument(
        "--code-storage-limit",
        type=int,
        help="bytes of code the server keeps on disk, each package once, zip plus unpacked (default 75 GB)",
    )
    serve.add_argument(
        "--concurrency-limit", type=int, help="concurrent executions per region (default 1000)"
    )
    serve.add_argument(
        "--sandbox", choices=["namespaces", "process"], help="isolation (default namespaces; process = none)"
    )
    serve.add_argument(
        "--network", choices=["default", "none", "host"], help="functions' network (default: outbound)"
    )
    serve.add_argument(
        "--sandbox-uids",
        metavar="FIRST-LAST",
        help="host uids sandboxes run as, one each (default 1900000000-1900065535)",
    )
    serve.add_argument(
        "--allow-private-network",
        metavar="CIDR[,CIDR...]",
        help="private IPv4 ranges default-network functions may reach (default none, env "
        "LAMBDAD_ALLOW_PRIVATE_NETWORK)",
    )
    serve.add_argument(
        "--allow-host-network",
        action="store_true",
        default=None,
        help="let functions tagged lambdad:network=host use the host's network (default: refused)",
    )
    serve.add_argument(
        "--idle-timeout", type=float, help="seconds a warm environment is kept idle (default 300)"
    )
    serve.add_argument(
        "--spares",
        type=int,
        help="pre-initialised environments kept per runtime in use (default 1, 0 = off, env LAMBDAD_SPARES)",
    )
    serve.add_argument(
        "--log-rate-limit",
        type=int,
        help="bytes per second of output a function may log, the rest dropped (default 1 MiB, 0 = none)",
    )
    serve.add_argument("--log-burst", type=int, help="bytes a function may log at once (default 10 MiB)")
    serve.add_argument(
        "--log-group-max-bytes",
        type=int,
        help="bytes a function's logs may hold; oldest streams removed past it (default 256 MiB, 0 = none)",
    )
    serve.add_argument(
        "--http-max-header-bytes", type=int, help="request line and headers, in bytes (default 65536)"
    )
    serve.add_argument("--http-max-headers", type=int, help="header fields in a request (default 100)")
    serve.add_argument(
        "--http-header-timeout",
        type=float,
        help="seconds a request's headers may take, or its body stall (default 10)",
    )
    serve.add_argument(
        "--http-max-connections",
        type=int,
        help="open API connections; more are answered 503 (default 4096, at most half the open-file limit)",
    )
    serve.add_argument(
        "--key-file",
        type=Path,
        help="the key ring sealing secrets at rest, outside the data directory (default "
        "~/.config/lambdad/keyring, made at first start; env LAMBDAD_KEY_FILE)",
    )
    security = serve.add_argument_group("security")
    security.add_argument(
        "--auth",
        choices=["none", "sigv4"],
        help="verify AWS SigV4 signatures, or not (default none: loopback only; env LAMBDAD_AUTH)",
    )
    security.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow --auth none on a non-loopback address (anyone reaching the port can deploy code)",
    )
    security.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (chain)")
    security.add_argument("--tls-key", metavar="PEM", help="the TLS certificate's private key")
    cluster = serve.add_argument_group("cluster (docs/cluster.md)")
    cluster.add_argument(
        "--nats-url", help="NATS JetStream server: this server becomes a cluster node (env LAMBDAD_NATS_URL)"
    )
    cluster.add_argument("--node-id", help="this node's name, unique among live nodes (default: host name)")
    cluster.add_argument(
        "--advertise-url", help="where other nodes reach this one (default http://HOST:PORT)"
    )
    cluster.add_argument(
        "--cluster-name", help="prefix of the cluster's NATS streams, buckets and subjects (default lambdad)"
    )
    cluster.add_argument(
        "--capacity-provider", help="the capacity provider whose nodes this one is (default: none)"
    )
    logs = commands.add_parser("logs", help="print a function's logs (as CloudWatch Logs would hold them)")
    logs.add_argument("function_name", metavar="NAME")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines as they arrive")
    logs.add_argument("--data-dir", type=Path, help="the server's data directory (default ./.lambdad)")
    logs.add_argument(
        "--endpoint",
        help="read through a running server, not its data directory (a cluster node: every node's logs)",
    )
    sign = commands.add_parser(
        "sign", help="sign a Lambda zip with an AWS Signer signing profile (the server holds the key)"
    )
    sign.add_argument("input", metavar="IN.zip", type=Path)
    sign.add_argument("--profile", required=True, help="the signing profile: its name or ARN")
    sign.add_argument(
        "--output", "-o", type=Path, help="where to write the signed zip (default IN.signed.zip)"
    )
    sign.add_argument(
        "--endpoint", help="the server (default http://127.0.0.1:PORT, PORT from LAMBDAD_PORT or 3001)"
    )
    sign.add_argument(
        "--region", help="the profile's region (default: the ARN's, AWS_REGION, or the server's)"
    )
    # Views of a running server's state, read from its /_lambdad/... endpoints.
    migrate = commands.add_parser("migrate", help="bring a cluster's PostgreSQL schema to this lambdad's")
    migrate.add_argument(
        "--database-url", help="SQLAlchemy URL of the shared database (env LAMBDAD_DATABASE_URL)"
    )
    accounts = commands.add_parser("accounts", help="create and list accounts (their root keys, once)")
    account_commands = accounts.add_subparsers(dest="accounts_command", required=True)
    create = account_commands.add_parser("create", help="a new account; prints its root access key once")
    create.add_argument("--account-id", help="the 12-digit id (default: random)")
    create.add_argument("--name", help="what the account is for (default: its id)")
    create.add_argument("--json", action="store_true", help="print {AccountId, AccessKeyId, SecretAccessKey}")
    listing = account_commands.add_parser("list", help="the accounts")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    for command in (create, listing):
        command.add_argument("--data-dir", type=Path, help="the server's data directory (default ./.lambdad)")
        command.add_argument("--database-url", help="the server's database (env LAMBDAD_DATABASE_URL)")
        command.add_argument("--key-file", type=Path, help="the server's key ring (env LAMBDAD_KEY_FILE)")
    for name, shows, as_json in (
        ("nodes", "cluster nodes: state, last heartbeat, environments, what each owns", "the server's JSON"),
        ("mappings", "event source mappings: state, last result, last error, lag", "the server's JSON"),
        ("schedules", "schedules: state, last and next fire times, last result", "a JSON list"),
    ):
        view = commands.add_parser(name, help=f"show a running server's {shows}")
        view.add_argument(
            "--endpoint", help="the server (default http://127.0.0.1:PORT, PORT from LAMBDAD_PORT or 3001)"
        )
        view.add_argument("--json", action="store_true", help=f"print {as_json} instead of a table")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "logs":
        return _logs(args)
    if args.command == "mappings":
        return _mappings(args)
    if args.command == "nodes":
        return _nodes(args)
    if args.command == "migrate":
        return _migrate(args)
    if args.command == "schedules":
        return _schedules(args)
    if args.command == "accounts":
        return _accounts(args)
    if args.command == "sign":
        return _sign(args)
    return 2


def _sign(args: argparse.Namespace) -> int:
    """Sign a zip: its digest goes to the server's SignPayload (signed in with the caller's AWS
    credentials), the signature envelope that comes back goes into the zip's comment
    (``lambdad.signatures``). The profile's private key never leaves the server."""
    import os

    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    from lambdad import signatures

    try:
        package = args.input.read_bytes()
        if signatures.is_signed(package):
            raise signatures.SignatureFormatError("it already has a signature")
        digest = signatures.digest(package)
    except OSError as error:
        console.print(f"[red]cannot read {args.input}: {error.strerror}[/red]")
        return 1
    except signatures.SignatureFormatError as error:
        console.print(f"[red]cannot sign {args.input}: {error}[/red]")
        return 1
    settings = Settings.from_env()
    name, owner, region = args.profile, None, args.region
    if args.profile.startswith("arn:"):
        # arn:aws:signer:REGION:ACCOUNT:/signing-profiles/NAME[/VERSION]
        parts = args.profile.split(":", 5)
        path = parts[5].split("/") if len(parts) == 6 else []
        if len(path) < 3 or path[1] != "signing-profiles" or parts[2] != "signer":
            console.print(f"[red]{args.profile} is not a signing profile ARN[/red]")
            return 1
        name, owner, region = path[2], parts[4], region or parts[3]
    session = boto3.Session()
    region = region or session.region_name or os.environ.get("AWS_REGION") or settings.region
    credentials: dict[str, str] = {}
    if session.get_credentials() is None:
        # A server without authentication takes any signature; one with it needs real credentials.
        credentials = {"aws_access_key_id": "lambdad", "aws_secret_access_key": "lambdad"}
    client = session.client(
        "signer",
        region_name=region,
        endpoint_url=(args.endpoint or f"http://127.0.0.1:{settings.port}").rstrip("/"),
        config=Config(retries={"max_attempts": 2}),
        **credentials,  # type: ignore[arg-type]
    )
    request: dict[str, Any] = {
        "profileName": name,
        "payload": json.dumps({"digest": {"SHA-384": digest}}).encode(),
        "payloadFormat": signatures.PAYLOAD_FORMAT,
    }
    if owner:
        request["profileOwner"] = owner
    try:
        answer = client.sign_payload(**request)
        envelope = signatures.Envelope.from_bytes(answer["signature"])
        manifest = envelope.manifest
        if manifest.digest != digest:
            raise signatures.SignatureFormatError("the server signed another digest")
        signed = signatures.embed(package, envelope)
    except ClientError as error:
        console.print(f"[red]{error.response['Error']['Code']}: {error.response['Error']['Message']}[/red]")
        return 1
    except (BotoCoreError, signatures.SignatureFormatError) as error:
        console.print(f"[red]cannot sign {args.input}: {error}[/red]")
        return 1
    output = args.output or args.input.with_name(args.input.stem + ".signed.zip")
    output.write_bytes(signed)
    console.print(
        f"signed {args.input} with {manifest.profile_version_arn} (signing job {manifest.job_id}): {output}"
    )
    return 0


def _server_json(endpoint: str | None, path: str) -> Any:
    """A running server's answer to ``GET path`` as JSON, or None (said why) when it does not answer or
    refuses. Signed (SigV4, service ``lambda``) with the credentials botocore's default chain finds, as
    a server with ``--auth sigv4`` asks; unsigned when there are none."""
    settings = Settings.from_env()
    endpoint = (endpoint or f"http://127.0.0.1:{settings.port}").rstrip("/")
    request = urllib.request.Request(f"{endpoint}{path}", headers=_signature(f"{endpoint}{path}", settings))
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            refusal = json.loads(body)
            code = error.headers.get("x-amzn-ErrorType", "").split(":")[0]
            reason = f"{code}: {refusal.get('message') or refusal.get('Message')}"
        except ValueError:
            reason = body.decode(errors="replace")[:200]
        console.print(
            f"[red]lambdad on {endpoint} refused {path.split('?')[0]} ({error.code}): {reason}[/red]"
        )
        return None
    except OSError as error:
        console.print(f"[red]lambdad is not answering on {endpoint}: {error}[/red]")
        console.print("Start it with `lambdad serve`, or pass --endpoint if it listens elsewhere.")
        return None


def _signature(url: str, settings: Settings) -> dict[str, str]:
    """The headers signing ``GET url`` with botocore's default credentials (environment, profile, ...)
    for the service ``lambda``; none without credentials."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        return {}
    region = session.get_config_variable("region") or settings.region
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(credentials.get_frozen_credentials(), "lambda", region).add_auth(request)
    return dict(request.headers.items())


def _nodes(args: argparse.Namespace) -> int:
    from rich.table import Table

    answer = _server_json(args.endpoint, "/_lambdad/nodes")
    if answer is None:
        return 1
    out = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    if args.json:
        out.print_json(data=answer)
        return 0
    table = Table("Node", "URL", "State", "Last heartbeat", "Warm", "Busy", "Capacity provider", "Owns")
    for node in answer["Nodes"]:
        state = node["State"]
        colour = {"live": "green", "suspect": "yellow"}.get(state, "red")
        owns = ", ".join(f"{len(keys)} {kind}" for kind, keys in node["Owns"].items() if keys)
        table.add_row(
            node["NodeId"],
            node["Url"],
            f"[{colour}]{state}[/{colour}]",
            node["LastHeartbeat"] or "-",
            str(node["WarmEnvironments"]),
            str(node["BusyEnvironments"]),
            node["CapacityProvider"] or "-",
            owns or "-",
        )
    out.print(table)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from lambdad.store import Database

    settings = Settings.from_env(database_url=args.database_url)
    if not settings.database_url:
        console.print("[red]lambdad migrate: pass --database-url (or set LAMBDAD_DATABASE_URL)[/red]")
        return 2
    database = Database(settings.database_url)
    try:
        before, newest = database.schema_status()
        if database.unknown_revisions(before):
            console.print("[red]the database's schema is newer than this lambdad's: upgrade lambdad[/red]")
            return 1
        database.migrate(settings.account_id)
    except Exception as error:
        console.print(f"[red]lambdad migrate: {error}[/red]")
        return 1
    finally:
        database.dispose()
    console.print(f"schema at {', '.join(sorted(newest))} (was {', '.join(sorted(before)) or 'empty'})")
    return 0


def _accounts(args: argparse.Namespace) -> int:
    """``lambdad accounts create|list``: on the server's database directly (as ``migrate``), sealing the
    new root key's secret with the server's key ring; a running server sees the account at once."""
    from lambdad.services.identity import IdentityService
    from lambdad.store import Database
    from lambdad.store.keyring import KeyRing, KeyRingError
    from lambdad.store.sealing import RingRefused, open_store

    settings = Settings.from_env(
        data_dir=args.data_dir, database_url=args.database_url, key_file=args.key_file
    )
    out = Console(highlight=False, soft_wrap=True)
    try:
        ring = KeyRing.open(settings.resolved_key_file)
    except KeyRingError as error:
        console.print(f"[red]lambdad accounts: {error}[/red]")
        return 1
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url, ring)
    try:
        database.migrate(settings.account_id)
        try:
            open_store(database, ring, settings.resolved_key_file)  # the server's ring, or refuse
        except RingRefused as error:
            console.print(f"[red]lambdad accounts: {error}[/red]")
            return 1
        identities = IdentityService(database, ring)
        if args.accounts_command == "list":
            found = identities.list_accounts()
            if args.json:
                listed = [
                    {"AccountId": a.id, "Name": a.name, "Created": a.created.isoformat()} for a in found
                ]
                sys.stdout.write(json.dumps(listed, indent=2) + "\n")
            for account in [] if args.json else found:
                out.print(f"{account.id}  {account.name}  {account.created:%Y-%m-%dT%H:%M:%SZ}")
            return 0
        try:
            account_id, key_id, secret = identities.create_account(args.account_id, args.name)
        except ValueError as error:
            console.print(f"[red]lambdad accounts create: {error}[/red]")
            return 1
    finally:
        database.dispose()
    if args.json:
        made = {"AccountId": account_id, "AccessKeyId": key_id, "SecretAccessKey": secret}
        sys.stdout.write(json.dumps(made, indent=2) + "\n")
    else:
        out.print(f"account {account_id}")
        out.print(f"  root access key id:     {key_id}")
        out.print(f"  root secret access key: {secret}")
        console.print("The secret is shown this once: keep it now.")
    return 0


def _mappings(args: argparse.Namespace) -> int:
    from rich.table import Table

    answer = _server_json(args.endpoint, "/_lambdad/event-source-mappings")
    if answer is None:
        return 1
    rows = answer["EventSourceMappings"]
    out = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    if args.json:
        out.print_json(data={"EventSourceMappings": rows})
        return 0
    if not rows:
        out.print("No event source mappings.")
        return 0
    table = Table("UUID", "Source", "Function", "State", "Last result", "Lag", "Last error")
    for row in rows:
        state = row["State"]
        colour = "green" if state == "Enabled" else "yellow" if state != "Disabled" else "dim"
        table.add_row(
            row["UUID"],
            row["EventSourceArn"],
            row["FunctionArn"].split(":function:", 1)[-1],
            f"[{colour}]{state}[/{colour}]",
            row["LastProcessingResult"] or "",
            "" if row["Lag"] is None else str(row["Lag"]),
            f"[red]{row['LastError']}[/red]" if row["LastError"] else "",
        )
    out.print(table)
    return 0


def _schedules(args: argparse.Namespace) -> int:
    from rich.table import Table

    answer = _server_json(args.endpoint, "/_lambdad/schedules")
    if answer is None:
        return 1
    listed = answer["Schedules"]
    out = Console(highlight=False)
    if args.json:
        out.print_json(json.dumps(listed))
        return 0
    if not listed:
        out.print("No schedules.")
        return 0
    table = Table(
        "Schedule", "State", "Expression", "Target", "Last fired (slot)", "Next fire", "Last result"
    )
    for schedule in listed:
        zone = schedule["ScheduleExpressionTimezone"]
        table.add_row(
            f"{schedule['GroupName']}/{schedule['Name']}",
            schedule["State"],
            schedule["ScheduleExpression"] + ("" if zone == "UTC" else f" ({zone})"),
            schedule["TargetArn"].rsplit(":function:", 1)[-1],
            schedule["LastScheduledTime"] or "-",
            schedule["NextFireTime"] or "-",
            schedule["LastResult"] or "-",
        )
    out.print(table)
    return 0


def _print_event(out: Console, timestamp_ms: int, message: str) -> None:
    from datetime import UTC, datetime

    from rich.markup import escape

    moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    out.print(f"[dim]{moment}Z[/dim] {escape(message.rstrip())}")


def _logs_through(endpoint: str, group: str, follow: bool) -> int:
    """A log group as a running server (every node of a cluster) has it; ``follow`` asks again each second
    for what came since."""
    import time
    from urllib.parse import quote, urlencode

    out = Console(highlight=False, soft_wrap=True)
    since, seen = 0, set()
    try:
        while True:
            query = urlencode({"group": group, "since": since}, quote_via=quote)  # as SigV4 encodes it
            answer = _server_json(endpoint, "/_lambdad/logs?" + query)
            if answer is None:
                return 1
            for event in answer["Events"]:
                key = (event["timestamp"], event["logStreamName"], event["message"])
                if key not in seen:
                    seen.add(key)
                    _print_event(out, event["timestamp"], event["message"])
                since = max(since, event["timestamp"])
            if not follow:
                if not answer["Events"]:
                    console.print(f"[yellow]No logs for {group} yet.[/yellow]")
                return 0
            time.sleep(1)
    except KeyboardInterrupt:
        return 0


def _logs(args: argparse.Namespace) -> int:

    from lambdad.observability.logs import LogStore

    group = f"/aws/lambda/{args.function_name}"
    if args.endpoint:
        return _logs_through(args.endpoint, group, args.follow)
    settings = Settings.from_env(data_dir=args.data_dir)
    store = LogStore(settings.logs_dir)
    if group not in store.groups():
        console.print(f"[yellow]No logs for {args.function_name} in {settings.logs_dir.resolve()}.[/yellow]")
        console.print("Invoke the function first, or pass --data-dir if the server keeps its data elsewhere.")
        if not args.follow:
            return 1
    out = Console(highlight=False, soft_wrap=True)
    events = store.follow(group) if args.follow else iter(store.events(group))
    try:
        for event in events:
            _print_event(out, event.timestamp_ms, event.message)
    except KeyboardInterrupt:
        pass
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lambdad.api.http_server import (
        HttpLimits,
        RateLimitFilter,
        connection_cap,
        protocol_class,
        raise_fd_limit,
    )
    from lambdad.app import create_app
    from lambdad.cluster.preflight import CannotJoin
    from lambdad.store.sealing import RingRefused

    try:
        settings = Settings.from_env(
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            account_id=args.account_id,
            region=args.region,
            database_url=args.database_url,
            log_level=args.log_level,
            api_rate_limit=args.api_rate_limit,
            code_storage_limit=args.code_storage_limit,
            concurrency_limit=args.concurrency_limit,
            sandbox=args.sandbox,
            network=args.network,
            sandbox_uids=parse_uid_range(args.sandbox_uids) if args.sandbox_uids else None,
            allow_private_network=args.allow_private_network,
            allow_host_network=args.allow_host_network,
            idle_timeout=args.idle_timeout,
            spares=args.spares,
            log_rate_limit=args.log_rate_limit,
            log_burst=args.log_burst,
            log_group_max_bytes=args.log_group_max_bytes,
            http_max_header_bytes=args.http_max_header_bytes,
            http_max_headers=args.http_max_headers,
            http_header_timeout=args.http_header_timeout,
            http_max_connections=args.http_max_connections,
            nats_url=args.nats_url,
            node_id=args.node_id,
            advertise_url=args.advertise_url,
            cluster_name=args.cluster_name,
            capacity_provider=args.capacity_provider,
            auth=args.auth,
            insecure=args.insecure,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            key_file=args.key_file,
        )
    except ValueError as error:
        console.print(f"[red]lambdad: {error}[/red]")
        return 2
    refusal = settings.unauthenticated_exposure
    if refusal is not None:
        console.print(f"[red]lambdad: {refusal}[/red]", soft_wrap=True)
        return 1
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=True)],
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step is noise
    # What asyncio and uvicorn log per connection must not multiply under attack.
    for name in ("asyncio", "uvicorn.error"):
        logging.getLogger(name).addFilter(RateLimitFilter())
    if settings.clustered:
        import asyncio

        from lambdad.cluster.preflight import check_nats

        try:
            asyncio.run(check_nats(settings))
        except CannotJoin as error:
            console.print(f"[red]lambdad: {error}[/red]")
            return 1
    try:
        app = create_app(settings)
    except (CannotJoin, RingRefused) as error:
        console.print(f"[red]lambdad: {error}[/red]", soft_wrap=True, markup=True)
        return 1
    except Exception as error:
        console.print(f"[red]lambdad could not open {settings.data_dir}: {error}[/red]")
        console.print("Check that the directory is writable and the database URL is right, then try again.")
        return 1
    endpoint = f"{'https' if settings.tls_cert else 'http'}://{settings.host}:{settings.port}"
    console.print(f"[bold green]lambdad {__version__}[/bold green] on [bold]{endpoint}[/bold]")
    console.print(
        f"  data:  {settings.data_dir.resolve()}   region: {settings.region}   account: {settings.account_id}"
    )
    if settings.clustered:
        console.print(
            f"  node:  {settings.resolved_node_id} of cluster {settings.cluster_name}, "
            f"NATS {settings.nats_url}"
        )
    console.print(f"  try:   aws --endpoint-url {endpoint} lambda list-functions")
    limits = HttpLimits(
        max_header_bytes=settings.http_max_header_bytes,
        max_headers=settings.http_max_headers,
        header_timeout=settings.http_header_timeout,
        max_connections=connection_cap(settings.http_max_connections, raise_fd_limit()),
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        log_config=None,
        http=protocol_class(limits),
        ssl_certfile=settings.tls_cert or None,
        ssl_keyfile=settings.tls_key or None,
    )
    server = uvicorn.Server(config)
    try:
        server.run()  # uvicorn handles SIGINT/SIGTERM: stop accepting, finish requests, run shutdown
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
