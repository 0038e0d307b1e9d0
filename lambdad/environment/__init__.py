"""One execution environment = a sandbox + the Runtime API + a lifecycle state machine + a log stream."""

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
    "EnvironmentState",
    "ExecutionEnvironment",
    "FunctionImage",
    "IllegalMove",
    "InvokeOutcome",
    "InvokeStream",
    "LambdaApi",
    "Lifecycle",
    "Move",
    "RuntimeGone",
    "SharedExecutionEnvironment",
    "Spare",
    "SpareKey",
    "spare_key",
]
