"""Applying AWS-shaped configuration parameters (CreateFunction, UpdateFunctionConfiguration) to a
FunctionVersion, with the checks AWS makes beyond the service model's."""

from __future__ import annotations

import json
import re
from typing import Any

from lambdad.errors import InvalidParameterValueException
from lambdad.models import FunctionLayer, FunctionVersion
from lambdad.runtimes import reserved_keys_message, reserved_keys_used
from lambdad.services import limits

# The runtimes AWS accepts for new functions, in the order AWS lists them in its error message.
SUPPORTED_RUNTIMES = (
    "nodejs20.x",
    "python3.14",
    "provided.al2023",
    "python3.12",
    "python3.13",
    "nodejs24.x",
    "nodejs22.x",
    "java25",
    "python3.10",
    "python3.11",
    "java21",
    "ruby3.3",
    "ruby3.4",
    "ruby3.2",
    "python3.8",
    "python3.9",
    "java17",
    "nodejs16.x",
    "dotnet10",
    "dotnet8",
    "java11",
    "dotnet6",
    "nodejs18.x",
    "provided.al2",
    "java8.al2",
)
# Runtimes AWS still names but no longer lets anyone create or update a function with.
DEPRECATED_RUNTIMES = frozenset(
    {
        "python2.7",
        "python3.6",
        "python3.7",
        "nodejs",
        "nodejs4.3",
        "nodejs4.3-edge",
        "nodejs6.10",
        "nodejs8.10",
        "nodejs10.x",
        "nodejs12.x",
        "nodejs14.x",
        "java8",
        "dotnetcore1.0",
        "dotnetcore2.0",
        "dotnetcore2.1",
        "dotnetcore3.1",
        "dotnet5.0",
        "go1.x",
        "ruby2.5",
        "ruby2.7",
        "provided",
    }
)
# Configuration lambdad stores and reports as given, but does not act on yet.
STORED_AS_GIVEN = ("DeadLetterConfig", "FileSystemConfigs", "ImageConfig")
# What AWS answers when Lambda's CreateGrant on the named KMS key fails (the KMS error follows).
_KMS_GRANT_FAILED = (
    "Lambda was unable to configure access to your environment variables because the KMS key is invalid "
    "for CreateGrant. Please check your KMS key settings. KMS Exception: InvalidArnException KMS Message: "
)
_KMS_KEY_ARN = re.compile(r"arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+")


def check_runtime(runtime: str) -> None:
    """AWS's answer for a runtime it does not accept."""
    if runtime in DEPRECATED_RUNTIMES:
        raise InvalidParameterValueException(
            f"The runtime parameter of {runtime} is no longer supported for creating or updating AWS "
            "Lambda functions. We recommend you use a supported runtime while creating or updating "
            "functions."
        )
    if runtime not in SUPPORTED_RUNTIMES:
        raise InvalidParameterValueException(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum value "
            f"set: [{', '.join(SUPPORTED_RUNTIMES)}] or be a valid ARN"
        )


def check_environment(variables: dict[str, str]) -> None:
    """AWS's 4 KB limit on the variables' JSON and its reserved names."""
    reserved = reserved_keys_used(variables)
    if reserved:
        raise InvalidParameterValueException(reserved_keys_message(reserved))
    measured = json.dumps(variables, separators=(",", ":"))
    if len(measured.encode()) > limits.ENVIRONMENT_MAX_BYTES:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables "
            f"you have provided exceeded the 4KB limit. String measured: {measured}"
        )


def check_kms_key_arn(arn: str) -> None:
    """KMSKeyArn names a KMS key by its ARN, as Lambda's CreateGrant on it needs (the model's pattern
    admits any ARN). lambdad has no KMS: the key is not looked up, and the function's variables are sealed
    with the server's key ring whatever it names (``store/sealing.py``); it is kept and answered back.
    AWS refuses an alias ARN with these words; other ARNs that name no key get the same refusal."""
    if ":alias/" in arn:
        raise InvalidParameterValueException(
            _KMS_GRANT_FAILED + "Key Aliases are not supported for this operation."
        )
    if not _KMS_KEY_ARN.fullmatch(arn):
        raise InvalidParameterValueException(_KMS_GRANT_FAILED + "ARN does not refer to a KMS key.")


def configure(
    version: FunctionVersion, params: dict[str, Any], layers: tuple[FunctionLayer, ...] | None = None
) -> FunctionVersion:
    """``version`` with the configuration parameters in ``params`` applied (absent ones unchanged).
    ``layers`` are ``params["Layers"]`` resolved to their packages (``LayerService.resolve``)."""
    changes: dict[str, Any] = {}
    extra = dict(version.extra)
    if "Runtime" in params:
        check_runtime(params["Runtime"])
        changes["runtime"] = params["Runtime"]
    for member, field in (
        ("Handler", "handler"),
        ("Role", "role"),
        ("Description", "description"),
        ("MemorySize", "memory_size"),
        ("Timeout", "timeout"),
    ):
        if member in params:
            changes[field] = params[member]
    if "Environment" in params:
        variables = params["Environment"].get("Variables") or {}
        check_environment(variables)
        changes["environment"] = dict(variables)
    if "EphemeralStorage" in params:
        changes["ephemeral_storage"] = params["EphemeralStorage"]["Size"]
    if "Layers" in params:
        assert layers is not None, "Layers are resolved before they are configured"
        changes["layers"] = layers
    if "TracingConfig" in params:
        extra["TracingConfig"] = {"Mode": params["TracingConfig"].get("Mode", "PassThrough")}
    if "VpcConfig" in params:
        vpc = params["VpcConfig"]
        extra["VpcConfig"] = {
            "SubnetIds": vpc.get("SubnetIds", []),
            "SecurityGroupIds": vpc.get("SecurityGroupIds", []),
            "VpcId": "",
            "Ipv6AllowedForDualStack": vpc.get("Ipv6AllowedForDualStack", False),
        }
    if "LoggingConfig" in params:
        extra["LoggingConfig"] = {**extra.get("LoggingConfig", {}), **params["LoggingConfig"]}
    if "SnapStart" in params:
        extra["SnapStart"] = {
            "ApplyOn": params["SnapStart"].get("ApplyOn", "None"),
            "OptimizationStatus": "Off",
        }
    if "CapacityProviderConfig" in params:
        # Lambda Managed Instances: checked against the providers by FunctionService, acted on by
        # the data plane (services.capacity_providers.may_run_on, max_concurrency).
        extra["CapacityProviderConfig"] = params["CapacityProviderConfig"]
    if "KMSKeyArn" in params:
        # An empty KMSKeyArn means Lambda's own key (the default): nothing is named or answered back.
        if params["KMSKeyArn"]:
            check_kms_key_arn(params["KMSKeyArn"])
            extra["KMSKeyArn"] = params["KMSKeyArn"]
        else:
            extra.pop("KMSKeyArn", None)
    for member in STORED_AS_GIVEN:
        if member in params:
            extra[member] = params[member]
    return version.evolve(**changes, extra=extra)


def check_complete(version: FunctionVersion) -> None:
    """A Zip function needs a runtime and a handler, as AWS insists."""
    if version.package_type == "Zip" and not (version.runtime and version.handler):
        raise InvalidParameterValueException(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages."
        )
