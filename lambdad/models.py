"""Domain types shared by every layer. This module imports nothing else from lambdad."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

LATEST = "$LATEST"


class FunctionState(enum.StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    FAILED = "Failed"


class UpdateStatus(enum.StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    IN_PROGRESS = "InProgress"


@dataclass(frozen=True)
class CodePackage:
    """A zip stored content-addressed: its SHA-256 (hex) names it on disk."""

    sha256_hex: str
    size: int
    unzipped_size: int
    # What the package takes on lambdad's disk, zip and unpacked tree (services.code.disk_size); 0 for a
    # package stored before lambdad counted it (the zipped and unzipped sizes stand in).
    disk_size: int = 0

    @property
    def stored_size(self) -> int:
        """The bytes the code-storage limit counts for this package."""
        return self.disk_size or self.size + self.unzipped_size

    @property
    def code_sha256(self) -> str:
        """The base64 form AWS reports as ``CodeSha256``."""
        import base64

        return base64.b64encode(bytes.fromhex(self.sha256_hex)).decode()


@dataclass(frozen=True)
class FunctionLayer:
    """A layer version a function uses: its ARN as given (``...:layer:NAME:N``) and its package, kept
    with the function so that it still runs after the layer version is deleted (as on AWS)."""

    arn: str
    code: CodePackage


@dataclass(frozen=True)
class FunctionVersion:
    """One version of a function (``$LATEST`` or a published "1", "2", ...): code + configuration.

    Fields lambdad acts on are typed; configuration it stores and reports without acting on yet
    (VpcConfig, DeadLetterConfig, TracingConfig, ...) rides in ``extra`` in AWS's shape.
    ``config_revision`` changes with every code or configuration update of ``$LATEST`` (not with
    settling or publishing, which change ``revision_id``); a published version keeps the one it was
    published from, which is how PublishVersion tells that nothing changed since the last version.
    """

    name: str
    version: str
    runtime: str | None
    handler: str | None
    role: str
    code: CodePackage
    revision_id: str
    last_modified: datetime
    memory_size: int = 128
    timeout: int = 3
    description: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    ephemeral_storage: int = 512
    architectures: tuple[str, ...] = ("x86_64",)
    package_type: str = "Zip"
    state: FunctionState = FunctionState.PENDING
    state_reason: str | None = "The function is being created."
    state_reason_code: str | None = "Creating"
    last_update_status: UpdateStatus | None = None
    last_update_status_reason: str | None = None
    last_update_status_reason_code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    config_revision: str = ""
    # Layers, in the order they are merged into /opt (later ones override earlier files).
    layers: tuple[FunctionLayer, ...] = ()

    def evolve(self, **changes: Any) -> FunctionVersion:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def is_settled(self) -> bool:
        """True once nothing is pending: the function can run and accept another update."""
        return self.state is FunctionState.ACTIVE and self.last_update_status in (
            None,
            UpdateStatus.SUCCESSFUL,
            UpdateStatus.FAILED,
        )


def is_version_number(qualifier: str) -> bool:
    """Whether a qualifier names a published version ("1", "2", ...) rather than an alias or $LATEST."""
    return qualifier.isascii() and qualifier.isdigit()


@dataclass(frozen=True)
class Alias:
    """A named pointer to a version, optionally sending a share of invocations to a second version."""

    function_name: str
    name: str
    function_version: str
    revision_id: str
    description: str = ""
    # AdditionalVersionWeights: at most one {version: weight in [0, 1]}, as AWS allows.
    additional_weights: dict[str, float] = field(default_factory=dict)

    def evolve(self, **changes: Any) -> Alias:
        """A copy with some fields changed."""
        return replace(self, **changes)


def utcnow() -> datetime:
    """Now, in UTC, to the millisecond (AWS's LastModified precision)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def aws_timestamp(moment: datetime) -> str:
    """AWS Lambda's LastModified format: ``2026-11-25T02:36:09.123+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


# --- ARNs -------------------------------------------------------------------------------------------

_FUNCTION_REF = re.compile(
    r"^(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:(?P<function_kw>function):)?"
    r"(?P<name>[a-zA-Z0-9\-_.]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9\-_]+))?$"
)


@dataclass(frozen=True)
class FunctionRef:
    """What a ``FunctionName`` parameter names: a function, maybe qualified, maybe in another scope."""

    name: str
    qualifier: str | None = None
    account: str | None = None
    region: str | None = None
    is_arn: bool = False


def parse_function_ref(value: str) -> FunctionRef | None:
    """Parse a name, partial ARN (``123456789012:function:f``) or full ARN; None if none of those."""
    match = _FUNCTION_REF.match(value)
    if match is None:
        return None
    is_arn = value.startswith("arn:")
    # "f:alias" is a qualified name; "123456789012:f" a partial ARN; "function:f" needs an account.
    if match["function_kw"] and not match["account"]:
        return None
    if is_arn and not (match["region"] and match["account"] and match["function_kw"]):
        return None
    return FunctionRef(
        name=match["name"],
        qualifier=match["qualifier"],
        account=match["account"],
        region=match["region"],
        is_arn=is_arn,
    )


@dataclass(frozen=True, order=True)
class Scope:
    """Where a request acts: the account and the region of its credential scope."""

    account: str
    region: str

    def function_arn(self, name: str, qualifier: str | None = None) -> str:
        """The ARN of a function in this scope."""
        return function_arn(self.region, self.account, name, qualifier)


@dataclass(frozen=True)
class Caller:
    """Who sends a Lambda API request from inside a function: the function, acting with its execution
    role. Bound to the execution environment the request arrived on, never taken from the request."""

    function_arn: str
    role: str  # the execution role's ARN

    @property
    def principal(self) -> str:
        """The session AWS names in its answers: ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/FUNCTION``."""
        _, _, _, _, account, _, rest = self.function_arn.split(":", 6)
        function_name = rest.split(":", 1)[0]
        role_name = self.role.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{account}:assumed-role/{role_name}/{function_name}"


class PrincipalKind(enum.StrEnum):
    """The kinds of identity that sign requests."""

    ROOT = "Root"  # an account's root user
    USER = "IAMUser"
    ASSUMED_ROLE = "AssumedRole"  # a role session: AssumeRole's, or a function's execution role


@dataclass(frozen=True)
class Principal:
    """Who sent a request, as SigV4 authentication established it (or, with authentication off, the
    default account's root). Policies are evaluated for it; answers name it by ``arn``."""

    account: str
    kind: PrincipalKind
    # arn:aws:iam::ACCOUNT:root | arn:aws:iam::ACCOUNT:user/PATH/NAME |
    # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
    arn: str
    # AWS's unique id (GetCallerIdentity's UserId): the account id for root, AIDA... for a user,
    # AROA...:SESSION for a role session.
    user_id: str
    # A role session's role (arn:aws:iam::ACCOUNT:role/PATH/NAME): whose policies apply.
    role_arn: str | None = None
    access_key_id: str | None = None

    @classmethod
    def root(cls, account: str) -> Principal:
        """An account's root user."""
        return cls(account, PrincipalKind.ROOT, f"arn:aws:iam::{account}:root", account)


def function_arn(region: str, account: str, name: str, qualifier: str | None = None) -> str:
    """``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]``."""
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def layer_arn(region: str, account: str, name: str, version: int | None = None) -> str:
    """``arn:aws:lambda:REGION:ACCOUNT:layer:NAME[:VERSION]``."""
    arn = f"arn:aws:lambda:{region}:{account}:layer:{name}"
    return f"{arn}:{version}" if version is not None else arn


_LAYER_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):(?P<account>\d{12}):"
    r"layer:(?P<name>[a-zA-Z0-9-_]+)(?::(?P<version>[0-9]+))?$"
)


@dataclass(frozen=True)
class LayerRef:
    """What a layer ARN names: a layer (``version`` None) or one of its versions."""

    region: str
    account: str
    name: str
    version: int | None


def parse_layer_arn(value: str) -> LayerRef | None:
    """Parse ``arn:aws:lambda:REGION:ACCOUNT:layer:NAME[:VERSION]``; None if it is not one."""
    match = _LAYER_ARN.match(value)
    if match is None:
        return None
    version = int(match["version"]) if match["version"] is not None else None
    return LayerRef(match["region"], match["account"], match["name"], version)
