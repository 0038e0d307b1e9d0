"""The AWS Lambda Runtime API (2018-06-01) that the host serves to each execution environment.

Usage by the environment layer::

    channel = RuntimeChannel()
    server = RuntimeApiServer(channel)
    task = asyncio.create_task(server.serve(listening_socket))
    ...start the runtime with AWS_LAMBDA_RUNTIME_API pointing at the socket...
    init_failure = await channel.wait_ready()        # None, or the INIT_ERROR result
    result = await channel.invoke(Invocation(...))   # one at a time
    channel.close(); server.close()
"""

from lambdad.runtime_api.channel import RuntimeChannel
from lambdad.runtime_api.limits import Limits
from lambdad.runtime_api.model import (
    MAX_PAYLOAD_SIZE,
    ApiError,
    ChannelBusy,
    ChannelClosed,
    Invocation,
    InvocationResult,
    ResponseStream,
    ResultKind,
)
from lambdad.runtime_api.server import SPECIALIZE_ROUTE, Forwarder, RuntimeApiServer, Specialization
from lambdad.runtime_api.shared import SharedRuntimeChannel
from lambdad.runtime_api.states import TRANSITIONS, IllegalTransition, Move, State, step

__all__ = [
    "MAX_PAYLOAD_SIZE",
    "SPECIALIZE_ROUTE",
    "TRANSITIONS",
    "ApiError",
    "ChannelBusy",
    "ChannelClosed",
    "Forwarder",
    "IllegalTransition",
    "Invocation",
    "InvocationResult",
    "Limits",
    "Move",
    "ResponseStream",
    "ResultKind",
    "RuntimeApiServer",
    "RuntimeChannel",
    "SharedRuntimeChannel",
    "Specialization",
    "State",
    "step",
]
