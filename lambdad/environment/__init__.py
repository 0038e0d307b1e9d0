"""One execution environment = a sandbox + the Runtime API + a lifecycle state machine + a log stream."""

from lambdad.environment.credentials import (
    Credentials,
    NoRoleCredentials,
    RoleCredentials,
    SessionRoleCredentials,
)
from lambdad.environment.environment import (
    ExecutionEnvironment,
    InvokeOutcome,
    InvokeStream,
    LambdaApi,
    RuntimeGone,
)
from lambdad.environment.image import FunctionImage
from lambdad.environment.lifecycle import EnvironmentState, IllegalMove, Lifecycle, Move
from lambdad.environment.shared import SharedExecutionEnvironment
from lambdad.environment.spare import Spare, SpareKey, spare_key

__all__ = [
    "Credentials",
    "EnvironmentState",
    "ExecutionEnvironment",
    "FunctionImage",
    "IllegalMove",
    "InvokeOutcome",
    "InvokeStream",
    "LambdaApi",
    "Lifecycle",
    "Move",
    "NoRoleCredentials",
    "RoleCredentials",
    "RuntimeGone",
    "SessionRoleCredentials",
    "SharedExecutionEnvironment",
    "Spare",
    "SpareKey",
    "spare_key",
]
