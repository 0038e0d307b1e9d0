"""What a handler receives, and the table that maps operation names to handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lambdad.api.code_links import CodeLinks
from lambdad.events.asynchronous import EventQueue
from lambdad.invocation import Invoker
from lambdad.models import Principal, Scope
from lambdad.services.account import AccountService
from lambdad.services.aliases import AliasService
from lambdad.services.capacity_providers import CapacityProviderService
from lambdad.services.code_signing import CodeSigningService
from lambdad.services.concurrency import ConcurrencyService
from lambdad.services.event_invoke_configs import EventInvokeConfigService
from lambdad.services.event_source_mappings import EventSourceMappingService
from lambdad.services.function_settings import FunctionSettingsService
from lambdad.services.functions import FunctionService
from lambdad.services.identity import IdentityService
from lambdad.services.layers import LayerService
from lambdad.services.networks import NetworkService
from lambdad.services.permissions import PermissionService
from lambdad.services.provisioned import ProvisionedConcurrencyService
from lambdad.services.schedules import ScheduleService
from lambdad.services.signing import SigningService
from lambdad.services.sts import StsService
from lambdad.services.tags import TagService
from lambdad.services.urls import UrlService
from lambdad.services.versions import VersionService


@dataclass(frozen=True)
class Services:
    """The services handlers call; built once by the composition root."""

    functions: FunctionService
    versions: VersionService
    aliases: AliasService
    tags: TagService
    account: AccountService
    concurrency: ConcurrencyService
    code_links: CodeLinks
    invoker: Invoker
    events: EventQueue
    urls: UrlService
    provisioned: ProvisionedConcurrencyService
    event_source_mappings: EventSourceMappingService
    schedules: ScheduleService
    # AWS Signer's signing profiles and signatures (its private keys sealed with the key ring).
    signing: SigningService
    # IAM's users, roles, policies and keys, and STS's sessions (every account's).
    identities: IdentityService
    sts: StsService

    # Built by FunctionService, like ``versions``: no argument of their own at construction.
    @property
    def permissions(self) -> PermissionService:
        """Resource-based policies; ``permissions.allows(...)`` answers whether a caller may act."""
        return self.functions.permissions

    @property
    def event_invoke_configs(self) -> EventInvokeConfigService:
        """Asynchronous invocation settings."""
        return self.functions.event_invoke_configs

    @property
    def layers(self) -> LayerService:
        """Layers and their versions."""
        return self.functions.layers

    @property
    def capacity_providers(self) -> CapacityProviderService:
        """Capacity providers (Lambda Managed Instances) and function scaling configs."""
        return self.functions.capacity_providers

    @property
    def code_signing(self) -> CodeSigningService:
        """Code signing configs, and the check of a package's signature on deployment."""
        return self.functions.code_signing

    @property
    def networks(self) -> NetworkService:
        """EC2's VPCs, subnets and security groups (the ``ec2`` API)."""
        return self.functions.networks

    @property
    def function_settings(self) -> FunctionSettingsService:
        """Recursion and runtime management configs."""
        return self.functions.settings


@dataclass(frozen=True)
class Call:
    """One API call: the parsed, validated parameters, where they act and who asks (with authentication
    off, the default account's root)."""

    operation: str
    params: dict[str, Any]
    scope: Scope
    services: Services
    base_url: str
    request_id: str
    principal: Principal


# Synchronous handlers run in a worker thread (the store is synchronous); async ones on the loop.
Handler = Callable[[Call], dict[str, Any]] | Callable[[Call], Awaitable[dict[str, Any]]]


class OperationTable:
    """Handlers by operation name; each API module fills one with ``@table.operation(name)``."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def operation(self, name: str) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of ``name``."""

        def register(handler: Handler) -> Handler:
            if name in self.handlers:
                raise ValueError(f"two handlers for {name}")
            self.handlers[name] = handler
            return handler

        return register

    def merge(self, *others: OperationTable) -> OperationTable:
        """One table holding this one's handlers and the others'."""
        merged = OperationTable()
        for table in (self, *others):
            for name, handler in table.handlers.items():
                merged.operation(name)(handler)
        return merged
