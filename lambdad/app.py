"""The composition root: builds the store, services, execution layer and HTTP app from Settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message
from starlette.types import Scope as AsgiScope

from lambdad import __version__
from lambdad.api import AwsApi, CodeLinks, Services, lambda_api
from lambdad.api.authorization import Authorizer, LambdaResourcePolicies, RoleActions
from lambdad.api.code_links import PATH_PREFIX, download_endpoint
from lambdad.api.credential_cache import OutageTolerantResolver
from lambdad.api.dispatch import CALLER_KEY
from lambdad.api.ec2 import ec2_api
from lambdad.api.iam import iam_api
from lambdad.api.own_endpoints import guarded, of_callers_account
from lambdad.api.scheduler import scheduler_api
from lambdad.api.signer import signer_api
from lambdad.api.sigv4 import Authenticator
from lambdad.api.sts import sts_api
from lambdad.api.throttle import RateLimiter
from lambdad.api.url_serving import FunctionUrlRouter, FunctionUrlServer
from lambdad.cluster.code import PostgresPackages
from lambdad.cluster.node import ClusterNode
from lambdad.cluster.ownership import ClusterOwnership
from lambdad.cluster.preflight import check_database
from lambdad.environment import SessionRoleCredentials
from lambdad.events import schedule_expressions
from lambdad.events.asynchronous import EventQueue, process_owner
from lambdad.events.mappings import MappingCatalog, MappingSupervisor
from lambdad.events.ownership import KindOwnership, LocalOwnership, WorkKind, WorkOwnership
from lambdad.events.schedules import ScheduleRunner
from lambdad.invocation import EnvironmentPool, ImageBuilder, Invoker, LocalConcurrencyLeases
from lambdad.invocation.pool import environment_maker, spare_pool
from lambdad.invocation.provisioning import Provisioner
from lambdad.invocation.reclaim import CodeReclaimer, holding, releasing
from lambdad.models import Caller, Scope
from lambdad.observability.logs import LogLimits, LogStore
from lambdad.sandbox import NetworkMode, SandboxFactory, create_factory
from lambdad.services.account import AccountService
from lambdad.services.activation import Activator
from lambdad.services.aliases import AliasService
from lambdad.services.capacity_providers import may_run_on
from lambdad.services.changes import ALIASES, CODE_OR_CONFIGURATION, DELETED, PROVISIONED, FunctionChanges
from lambdad.services.code_signing import CodeSigningService
from lambdad.services.concurrency import ConcurrencyService
from lambdad.services.event_source_mappings import EventSourceMappingService
from lambdad.services.functions import FunctionService
from lambdad.services.identity import IdentityService
from lambdad.services.lookup import FunctionLookup
from lambdad.services.provisioned import ProvisionedConcurrencyService
from lambdad.services.schedules import ScheduleService
from lambdad.services.signing import SigningService
from lambdad.services.sts import StsService
from lambdad.services.tags import TagService
from lambdad.services.urls import UrlService
from lambdad.settings import Settings
from lambdad.store import CodeStore, Database
from lambdad.store.keyring import KeyRing, KeyRingError
from lambdad.store.reserve import DiskReserve
from lambdad.store.sealing import RingRefused, open_store

log = logging.getLogger(__name__)


@dataclass
class Platform:
    """Everything one lambdad server runs, started and stopped together."""

    settings: Settings
    database: Database
    code_store: CodeStore
    activator: Activator
    changes: FunctionChanges
    sandboxes: SandboxFactory
    pool: EnvironmentPool
    services: Services
    lambda_api: InSandboxLambdaApi
    provisioner: Provisioner
    mappings: MappingSupervisor
    schedules: ScheduleRunner
    logs: LogStore
    reclaimer: CodeReclaimer
    # This server's cluster parts, or None for a single server (the embedded default).
    cluster: ClusterNode | None = None
    # Which node runs each mapping, schedule, provisioned config and Event queue partition (None: this one).
    ownership: ClusterOwnership | None = None
    # Security group rule changes being applied to running environments.
    _egress_refreshes: set[asyncio.Task[int]] = field(default_factory=set)

    @classmethod
    def open(cls, settings: Settings) -> Platform:
        """Open the data directory: migrate the database, tidy code packages, resume pending work."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        ring = _key_ring(settings)
        database = Database(settings.resolved_database_url, ring)
        cluster = ClusterNode(settings, ring) if settings.clustered else None
        if cluster is None:
            database.migrate(settings.account_id)
        else:
            check_database(settings, database)  # nodes never migrate a shared schema behind others' backs
        # Refuse a ring that is not the data's; seal what an older lambdad stored in plain text.
        open_store(database, ring, settings.resolved_key_file)
        _forget_plain_secret(settings.data_dir)
        code_store = CodeStore(settings.code_dir, None if cluster is None else PostgresPackages(database))
        # The process sandbox runs functions as lambdad's own user: dropping to an unprivileged uid
        # would lose access to interpreters installed under the server user's home (pyenv).
        first, last = settings.sandbox_uids
        options: dict[str, Any] = (
            {"drop_privileges": False}
            if settings.sandbox == "process"
            else {
                "uid_first": first,
                "uid_count": last - first + 1,
                "allow_private_network": settings.allow_private_network,
            }
        )
        sandboxes = create_factory(settings.sandbox, **options)
        if not sandboxes.isolated:
            log.warning(
                "sandbox %r does not isolate functions from this host or each other", settings.sandbox
            )
        images = ImageBuilder(
            code_store,
            settings.tasks_dir,
            settings.resolved_runtimes_dir,
            interpreters=settings.interpreters,
            network=NetworkMode(settings.network),
        )
        reclaimer = CodeReclaimer(database, code_store, images)
        reclaimed = reclaimer.start()
        if reclaimed:
            log.info("removed %d unused unpacked code tree(s) and merged layer(s)", reclaimed)
        changes = FunctionChanges() if cluster is None else cluster.changes
        # Work with one owner; in a cluster a node's lease incarnation is its Event queue's owner, so a
        # node taking a dead one's partition can release the events the dead one held.
        queue_owner = process_owner()
        cluster_ownership = (
            None if cluster is None else ClusterOwnership(database, cluster.membership, queue_owner)
        )
        ownership: WorkOwnership = cluster_ownership or LocalOwnership()
        activator = Activator(database, changes, images.prepare)
        lookup = FunctionLookup(database, changes)
        lambda_api = InSandboxLambdaApi()
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        logs = LogStore(
            settings.logs_dir,
            LogLimits(settings.log_rate_limit, settings.log_burst, settings.log_group_max_bytes),
            None if cluster is None else cluster.logs,
        )
        endpoint = f"http://{host}:{settings.port}"
        # Users, roles, policies and access keys (IAM), and the sessions STS issues: per account, secrets
        # sealed with the ring.
        identities = IdentityService(database, ring)
        sts = StsService(database, ring, identities)
        _bootstrap_root(settings, identities)
        # Each environment gets a session of its execution role when it is made, and is retired before
        # it expires (environment/credentials.py); a role the store does not have gets placeholders.
        credentials = SessionRoleCredentials(sts.issue_role_session, settings.role_session_seconds)
        lifetime: dict[str, Any] = {"credentials": credentials, "max_age_s": settings.environment_max_age}
        # Every environment holds its code on disk from its making until it stopped (see reclaim.py).
        maker = holding(environment_maker(sandboxes, logs, lambda_api, endpoint, **lifetime), images)
        provisioned_maker = holding(
            environment_maker(
                sandboxes,
                logs,
                lambda_api,
                endpoint,
                initialization_type="provisioned-concurrency",
                **lifetime,
            ),
            images,
        )
        spares = spare_pool(sandboxes, settings.spares, settings.idle_timeout)
        pool = EnvironmentPool(maker, settings.idle_timeout, spares, provisioned_maker)
        pool.subscribe(releasing(images))
        invoker = Invoker(
            lookup,
            images,
            pool,
            LocalConcurrencyLeases(settings.concurrency_limit) if cluster is None else cluster.leases,
            host_network_allowed=settings.host_network_allowed,
            capacity_provider=settings.capacity_provider,
        )
        functions = FunctionService(
            database,
            code_store,
            activator,
            changes,
            settings.code_storage_limit,
            host_network_allowed=settings.host_network_allowed,
            # Code signing configs and the signature check on every deployment (H4).
            code_signing=CodeSigningService(database),
        )
        services = Services(
            functions=functions,
            versions=functions.versions,
            aliases=AliasService(database, changes),
            tags=TagService(database, changes, host_network_allowed=settings.host_network_allowed),
            account=AccountService(database, settings.code_storage_limit, settings.concurrency_limit),
            concurrency=ConcurrencyService(database, changes, settings.concurrency_limit),
            # Derived from the ring: every node of a cluster reads the same ring, so a link signed by one
            # node is valid on all of them, and no signing key is stored anywhere.
            code_links=CodeLinks(ring.derive("code-links")),
            invoker=invoker,
            events=EventQueue(
                database,
                invoker,
                retry_delays=settings.async_retry_delays,
                throttle_backoff_max=settings.async_throttle_backoff_max,
                event_sources=settings.event_sources,
                workers=settings.async_workers,
                ownership=ownership,
                owner=queue_owner,
            ),
            urls=UrlService(database, changes, settings.port),
            provisioned=ProvisionedConcurrencyService(database, changes, settings.concurrency_limit),
            event_source_mappings=EventSourceMappingService(database, MappingCatalog(settings.event_sources)),
            schedules=ScheduleService(database, schedule_expressions.check),
            # Signing profiles' private keys are sealed with the server's key ring.
            signing=SigningService(database, ring),
            identities=identities,
            sts=sts,
        )
        provisioner = Provisioner(
            services.provisioned,
            invoker,
            pool,
            KindOwnership(ownership, WorkKind.PROVISIONED_CONCURRENCY),
            scaling=services.capacity_providers,
            node_provider=settings.capacity_provider,
        )
        ownership.subscribe(provisioner.resume)
        # With auth "sigv4", schedules, mappings and destinations act with their roles' permissions (roles
        # the identity store has); with auth off nothing is checked, as before identities.
        roles = (
            RoleActions(
                identities,
                Authorizer(identities, LambdaResourcePolicies(services.permissions, services.layers)),
            )
            if settings.auth == "sigv4"
            else None
        )
        services.event_source_mappings.roles = roles
        services.event_invoke_configs.roles = roles
        services.functions.roles = roles
        services.events.roles = roles
        # Schedules hand their Lambda invocations to the durable Event queue inside the transaction that
        # claims the slot (``hand_over=``), then wake it.
        schedule_runner = ScheduleRunner(
            database,
            settings.event_sources,
            hand_over=services.events.enqueue_in,
            wake=services.events.wake,
            tick=settings.schedule_tick_seconds,
            minute_seconds=settings.schedule_minute_seconds,
            ownership=ownership,
            roles=roles,
        )
        platform = cls(
            settings,
            database,
            code_store,
            activator,
            changes,
            sandboxes,
            pool,
            services,
            lambda_api,
            provisioner,
            MappingSupervisor(
                services.event_source_mappings,
                invoker,
                settings.event_sources,
                ownership,
            ),
            schedule_runner,
            logs,
            reclaimer,
            cluster,
            cluster_ownership,
        )
        if cluster is not None:
            cluster.watch(pool)
            cluster.after_a_death(activator.recover)
            cluster.after_a_death(services.capacity_providers.recover)
            if cluster_ownership is not None:
                cluster.report_ownership(cluster_ownership.heartbeat_owns)
        resumed = activator.recover()
        if resumed:
            log.info("settling %d function(s) left pending by the previous run", resumed)
        services.capacity_providers.recover()
        return platform

    def drain_on_change(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop a function's idle environments when its code or configuration changes, and those of its
        published versions too when it or one of them is deleted (published versions never change);
        look for code no longer used."""

        def changed(scope: Scope, name: str, what: str) -> None:
            arn = scope.function_arn(name)
            if what == CODE_OR_CONFIGURATION:
                loop.call_soon_threadsafe(self.pool.drain, arn)
                # A security group's rules may have changed: running environments follow at once.
                loop.call_soon_threadsafe(self._refresh_egress, scope, name)
            elif what == DELETED:
                loop.call_soon_threadsafe(self.pool.drain_function, arn)
            if what in (CODE_OR_CONFIGURATION, DELETED):
                # Code or layers the function used may be unused now (or once its environments drain).
                self.reclaimer.request()
            if what in (PROVISIONED, ALIASES, DELETED):
                # Provisioned environments follow their configs, and the aliases and versions they name.
                loop.call_soon_threadsafe(self.provisioner.schedule, scope, name)

        self.changes.subscribe(changed)

    def _refresh_egress(self, scope: Scope, name: str) -> None:
        task = asyncio.get_running_loop().create_task(self.services.invoker.refresh_egress(scope, name))
        self._egress_refreshes.add(task)
        task.add_done_callback(self._egress_refreshes.discard)

    async def stop(self) -> None:
        """Stop every environment and sandbox, then background work, then the database."""
        if self.ownership is not None:
            await self.ownership.halt()  # what this node owns stays put while its work stops
        await self.mappings.stop()
        await self.schedules.close()
        await self.services.events.close()
        await self.provisioner.close()
        await self.pool.close()
        await self.sandboxes.close()
        await self.lambda_api.close()
        self.activator.close()
        self.services.capacity_providers.close()
        self.reclaimer.close()
        if self.ownership is not None:
            await self.ownership.stop()  # after the work stopped: the others take it over at once
        if self.cluster is not None:
            await self.cluster.stop()
        self.database.dispose()


def create_app(settings: Settings) -> Starlette:
    """The ASGI app of one lambdad server; opens the platform now and stops it at shutdown."""
    platform = Platform.open(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if platform.cluster is not None:
            await platform.cluster.start()
        if platform.ownership is not None:
            await platform.ownership.start()
        platform.drain_on_change(asyncio.get_running_loop())
        await platform.provisioner.resume()
        await platform.services.events.start()
        # Pollers start once the server can run functions; mappings resume where they were.
        await platform.mappings.start()
        platform.schedules.start()
        log.info(
            "lambdad %s serving account %s, data in %s", __version__, settings.account_id, settings.data_dir
        )
        try:
            yield
        finally:
            await platform.stop()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "environments": platform.pool.environments,
                "spares": platform.pool.spare_environments,
                # Function log events no disk write could keep (a full or failing disk).
                "lost_log_events": platform.logs.lost_events,
            }
        )

    async def event_source_mappings(request: Request) -> JSONResponse:
        rows = of_callers_account(request, await platform.mappings.overview(), "FunctionArn")
        return JSONResponse({"EventSourceMappings": rows})

    async def schedules(request: Request) -> JSONResponse:
        status = await anyio.to_thread.run_sync(platform.schedules.status)
        return JSONResponse({"Schedules": of_callers_account(request, status, "Arn")})

    async def function_logs(request: Request) -> JSONResponse:
        group = request.query_params.get("group", "")
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            return JSONResponse({"message": "since must be milliseconds since the epoch"}, 400)
        if platform.cluster is not None:
            events = await platform.cluster.logs.events(group, since)
        else:
            events = await anyio.to_thread.run_sync(platform.logs.events, group, since)
        return JSONResponse(
            {
                "Events": [
                    {"timestamp": e.timestamp_ms, "message": e.message, "logStreamName": e.stream}
                    for e in events
                ]
            }
        )

    async def nodes(request: Request) -> JSONResponse:
        if platform.cluster is None:
            return JSONResponse({"Nodes": [_single_node(platform)]})
        return JSONResponse({"Nodes": [node.describe() for node in platform.cluster.membership.nodes()]})

    throttle = RateLimiter(settings.api_rate_limit) if settings.api_rate_limit > 0 else None
    reserve = DiskReserve(settings.data_dir / "reserve")
    reserve.hold()
    services = platform.services
    # With auth "sigv4" every request is verified against the identity store, and decided by the
    # policies of its signer and of the resource; a function's own requests always act as its role.
    authorizer = Authorizer(
        services.identities,
        LambdaResourcePolicies(services.permissions, services.layers),
        check_roles=settings.auth == "sigv4",
    )
    # The store's answers stand in for it while the database is away (warm invokes go on).
    authenticator = Authenticator(OutageTolerantResolver(services.sts)) if settings.auth == "sigv4" else None
    aws_api = AwsApi(
        # signer after the scheduler: both have /tags/ paths (a signed request names its service)
        [lambda_api(), scheduler_api(), signer_api(), iam_api(), sts_api(), ec2_api()],
        services,
        settings.account_id,
        settings.region,
        throttle,
        reserve,
        authenticator=authenticator,
        authorizer=authorizer,
    )
    own_endpoints = {
        "/_lambdad/event-source-mappings": event_source_mappings,
        "/_lambdad/schedules": schedules,
        "/_lambdad/nodes": nodes,
        "/_lambdad/logs": function_logs,
    }
    app = Starlette(
        routes=[
            Route("/health", health),
            # Signed and allowed as the AWS API giving the same information would be (own_endpoints.py).
            *(Route(path, guarded(aws_api, path, endpoint)) for path, endpoint in own_endpoints.items()),
            Route(
                PATH_PREFIX + "{digest}.zip",
                download_endpoint(platform.services.code_links, platform.code_store.local),
            ),
            Mount("/", app=aws_api),
        ],
        lifespan=lifespan,
        middleware=[*_invoke_router(platform), _function_urls(platform, authenticator, authorizer)],
    )
    # Functions reach the AWS APIs only: not /health, /_lambdad/*, code downloads or function URLs.
    platform.lambda_api.serve(aws_api)
    return app


def _single_node(platform: Platform) -> dict[str, Any]:
    """A single server described as the one node of its own cluster."""
    settings = platform.settings
    busy = platform.pool.busy_environments
    return {
        "NodeId": settings.resolved_node_id,
        "Url": settings.resolved_advertise_url,
        "State": "live",
        "LastHeartbeat": None,
        "WarmEnvironments": platform.pool.environments,
        "BusyEnvironments": busy,
        "RunningInvocations": platform.pool.running_invocations,
        "CapacityProvider": settings.capacity_provider or None,
        "Owns": {},
    }


def _function_urls(
    platform: Platform, authenticator: Authenticator | None, authorizer: Authorizer
) -> Middleware:
    """Function URLs, by host name (``<url-id>.lambda-url.<region>.localhost``) or by path
    (``/_lambdad/urls/<url-id>/...``), answered before the Lambda API sees the request; AWS_IAM URLs
    verify signatures and decide with the API's authenticator and authorizer (none: refused)."""
    server = FunctionUrlServer(
        platform.services,
        platform.settings.account_id,
        authenticator,
        authorizer if authenticator is not None else None,
    )
    return Middleware(FunctionUrlRouter, server=server)


def _invoke_router(platform: Platform) -> list[Middleware]:
    """Where an invocation runs: here on a single server (nothing to install); in a cluster, on the node
    ``lambdad.cluster.placement`` chooses, forwarded as HTTP (``lambdad.cluster.forwarding``)."""
    if platform.cluster is None:
        return []
    return [
        platform.cluster.forwarding(
            platform.database,
            platform.services,
            # A capacity provider's versions run only on its nodes, and its nodes only its versions.
            eligible=lambda version, node: may_run_on(version, node.capacity_provider),
        )
    ]


class InSandboxLambdaApi:
    """The AWS APIs as functions reach them (``AWS_ENDPOINT_URL_LAMBDA``): requests arriving on a
    sandbox's own Runtime API socket are answered by this server's ``AwsApi`` in-process, so a function can
    invoke another while lambdad's port stays unreachable from sandboxes.

    Each request acts as the ``Caller`` its environment was bound to, put in the ASGI scope here
    (``lambdad.api.authorization`` decides what that caller may do); nothing the function sends can
    change who it is.

    The app is called directly rather than through httpx's ASGITransport: that transport spent two thirds
    of a refused call's 1.5 ms (URL merging, cookie jars, a failed ``import trio`` per request), on the
    event loop every function shares, for each call a function can send back to back.
    """

    def __init__(self) -> None:
        self._app: ASGIApp | None = None

    def serve(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(
        self, caller: Caller, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        assert self._app is not None, "the app is made before any sandbox"
        path, _, query = target.partition("?")
        scope: AsgiScope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 9001),
            CALLER_KEY: caller,
        }
        answered = asyncio.Event()
        pending = [{"type": "http.request", "body": body, "more_body": False}]
        status, response_headers, chunks = 500, [], []

        async def receive() -> Message:
            if pending:
                return pending.pop()
            await answered.wait()  # the client stays until the whole answer is sent
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    answered.set()

        await self._app(scope, receive, send)
        return status, response_headers, b"".join(chunks)

    async def close(self) -> None:
        """Nothing to release: requests in flight belong to their environments' servers."""


def _key_ring(settings: Settings) -> KeyRing:
    """The server's key ring, opened once (made at first start); an unreadable one refuses the start."""
    try:
        return KeyRing.open(settings.resolved_key_file)
    except KeyRingError as error:
        raise RingRefused(
            f"{error}: fix the file or point --key-file (LAMBDAD_KEY_FILE) at the right one"
        ) from None


def _forget_plain_secret(data_dir: Path) -> None:
    """Remove the code links' signing key older servers kept in plain text (now derived from the ring)."""
    (data_dir / "secret").unlink(missing_ok=True)


def _bootstrap_root(settings: Settings, identities: IdentityService) -> None:
    """With auth "sigv4", make the default account and its root key at the first start and print the key
    once (on the server's standard error, not in any log file lambdad writes): it is the only way in."""
    if settings.auth != "sigv4":
        return
    made = identities.bootstrap(
        settings.account_id, settings.root_access_key_id or None, settings.root_secret_access_key or None
    )
    if made is None:
        return
    access_key_id, secret = made
    given = bool(settings.root_access_key_id)
    print(
        f"lambdad: account {settings.account_id}'s root access key"
        + (" (from LAMBDAD_ROOT_ACCESS_KEY_ID)" if given else ", shown this once: keep it now")
        + f"\n  AWS_ACCESS_KEY_ID={access_key_id}"
        + ("" if given else f"\n  AWS_SECRET_ACCESS_KEY={secret}"),
        file=sys.stderr,
        flush=True,
    )
