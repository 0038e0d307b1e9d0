"""One execution environment: a sandboxed runtime, its Runtime API, its log stream and its lifecycle.

Cold start = create the sandbox, serve the Runtime API on the socket the sandbox hands out, and wait
for the runtime's first ``next`` (init done) or ``init/error``. Each invocation is written to the
function's log stream between START and END/REPORT lines, as AWS writes them. A timeout, a crash or an
init error leaves the environment failed: the pool destroys it and the next invocation gets a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

from lambdad.environment import reports
from lambdad.environment.credentials import EXPIRY_MARGIN_S, Credentials, NoRoleCredentials, RoleCredentials
from lambdad.environment.image import FunctionImage
from lambdad.environment.lifecycle import EnvironmentState, Lifecycle, Move
from lambdad.environment.output import TAIL_BYTES, LineSplitter, Tail
from lambdad.environment.pipes import DISCARD_PIPE_BYTES, READ_LIMIT, discard_available, read_available, widen
from lambdad.environment.spare import Spare, mounts_for
from lambdad.models import Caller
from lambdad.observability.logs import LogStore, LogStream
from lambdad.runtime_api import (
    ChannelClosed,
    Forwarder,
    Invocation,
    InvocationResult,
    ResponseStream,
    ResultKind,
    RuntimeApiServer,
    RuntimeChannel,
)
from lambdad.runtimes import (
    language_paths,
    launch_command,
    log_group_name,
    log_stream_name,
    standard_environment,
)
from lambdad.sandbox import (
    EgressControlled,
    EgressRule,
    Mount,
    NetworkMode,
    Sandbox,
    SandboxError,
    SandboxFactory,
    SandboxSpec,
    SpecializableSandbox,
)

log = logging.getLogger(__name__)

INIT_LIMIT_S = 10.0  # AWS's limit on the init phase of an on-demand environment
MB = 1024 * 1024
# What is read of a runtime's output when an invocation ends: the pipe's capacity (64 KB) with room to
# spare; more is only there if something in the sandbox still writes, and is read as it comes.
FINAL_READ_BYTES = MB
# Over its log's budget, a runtime's output is left to fill the pipe for this long between two discards:
# the writer then waits on a full pipe instead of lambdad waking for every 64 KB of a flood.
DISCARD_PAUSE_S = 0.01
MAX_STREAMED_RESPONSE = 200 * MB  # AWS's limit on a streamed response
OVERSIZED_RESPONSE_ERROR_TYPE = "Function.ResponseSizeTooLarge"


@dataclass
class InvokeOutcome:
    """How one invocation ended, with what AWS reports about it."""

    request_id: str
    payload: bytes
    function_error: bool
    log_text: str  # the end of the invocation's log (at least its last 4 KB), all lambdad keeps of it
    duration_ms: float
    billed_ms: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None
    status: str | None = None  # None, "timeout" or "error"
    result: InvocationResult | None = field(default=None, repr=False)
    error_type: str | None = None  # the function error's type (handler's errorType, Sandbox.Timedout, ...)

    @property
    def log_tail(self) -> str:
        """The last 4 KB of the invocation's log, as ``X-Amz-Log-Result`` carries it."""
        raw = self.log_text.encode()
        return raw[-TAIL_BYTES:].decode(errors="ignore")


class InvokeStream:
    """A streamed invocation's response as it arrives: iterate it for the chunks; once the iteration
    ends, ``outcome`` says how the invocation ended (None if lambdad itself failed)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.outcome: InvokeOutcome | None = None
        self._ended = False

    def put(self, chunk: bytes) -> None:
        if chunk:
            self._queue.put_nowait(chunk)

    def end(self, outcome: InvokeOutcome | None) -> None:
        if not self._ended:
            self._ended = True
            self.outcome = outcome
            self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self._queue.get()) is not None:
            yield chunk
        self._queue.put_nowait(None)


#: The AWS APIs as functions reach them, answered in-process: (caller, method, target, headers, body) ->
#: (status, headers, body). An environment binds its own caller and hands the Runtime API server the rest.
LambdaApi = Callable[
    [Caller, str, str, dict[str, str], bytes], Awaitable[tuple[int, list[tuple[str, str]], bytes]]
]


class RuntimeGone(Exception):
    """The runtime had exited before the invocation reached it: it can run in another environment
    (it never started here, so it does not run twice)."""


PROVISIONED = "provisioned-concurrency"  # AWS_LAMBDA_INITIALIZATION_TYPE of provisioned environments
MAX_AGE_S = 7200.0  # how long an environment lives at most, busy or not (Settings.environment_max_age)


class ExecutionEnvironment:
    """One environment for one function image. Not thread-safe: lives on the server's event loop."""

    def __init__(
        self,
        image: FunctionImage,
        factory: SandboxFactory,
        logs: LogStore,
        *,
        initialization_type: str = "on-demand",
        lambda_api: LambdaApi | None = None,
        lambda_endpoint: str | None = None,
        credentials: RoleCredentials | None = None,
        max_age_s: float = MAX_AGE_S,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.image = image
        self.lifecycle = Lifecycle()
        self.last_used = time.monotonic()
        self._factory = factory
        self._initialization_type = initialization_type
        # The Lambda API, for functions that call it: served in-process on the sandbox's own Runtime API
        # socket where the sandbox has its own network, else lambdad's own endpoint.
        self._lambda_api = lambda_api
        self._lambda_endpoint = lambda_endpoint
        self._stream_name = log_stream_name(image.version, instance_id=self.id)
        self._log: LogStream = logs.open_stream(log_group_name(image.function_name), self._stream_name)
        self._sandbox: Sandbox | None = None
        #: The egress policy its sandbox has (or gets when made): the image's, until a change replaced it.
        self.egress = image.egress
        self._channel: RuntimeChannel | None = None
        self._server: RuntimeApiServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._output_fd: int | None = None
        self._output_paused = False
        self._pipe_widened = False
        self._lines = LineSplitter()
        self._dropped = 0  # bytes of output past the log's budget, not yet said in the log
        self._capture: Tail | None = None  # the end of the init or invocation in progress
        self._init_lines = Tail()  # init's output, shown in the first invocation's log tail
        self._init_error: InvocationResult | None = None
        self._init_duration_ms: float | None = None
        self._exit_status: int | None = None
        self._note: str | None = None
        # The execution role's credentials, issued at start; the environment retires before they expire.
        self._role_credentials = credentials or NoRoleCredentials()
        self._credentials: Credentials | None = None
        self._max_age_s = max_age_s
        self.retire_at = float("inf")  # time.monotonic() past which it takes no more invocations

    @property
    def state(self) -> EnvironmentState:
        return self.lifecycle.state

    @property
    def retired(self) -> bool:
        """Past its lifetime (its maximum age, or its credentials' expiry less a timeout and a margin):
        it takes no more invocations, and the pool replaces it."""
        return time.monotonic() >= self.retire_at

    @property
    def reusable(self) -> bool:
        """Whether the environment can take another invocation."""
        return self.lifecycle.state is EnvironmentState.READY and not self.retired

    async def set_egress(self, rules: tuple[EgressRule, ...]) -> bool:
        """Apply a changed egress policy (to an environment made with one); whether it applies. A sandbox
        not made yet gets it when it is made; a running one at once."""
        if self.egress is None:
            return False
        self.egress = rules
        sandbox = self._sandbox
        if sandbox is None:
            return True
        if not isinstance(sandbox, EgressControlled):
            return False
        await sandbox.set_egress(rules)
        return True

    # --- init -------------------------------------------------------------------------------------

    async def start(self, spare: Spare | None = None) -> None:
        """Cold start: sandbox, Runtime API, runtime init. Init failures are kept for the first invoke.

        With a ``spare`` (from ``spare_key(...)`` of this image, ``ready``, and ``fits`` this function's
        environment) the sandbox and runtime already exist: the start only specialises them, and the
        Init Duration measures that hand-over up to the runtime's first ``next``.
        """
        self.lifecycle.move(Move.START)
        self._capture = Tail()
        started = time.monotonic()
        self.retire_at = started + self._max_age_s
        try:
            await self._obtain_credentials()
            if spare is None:
                await self._create_sandbox()
            else:
                await self._adopt(spare)
            assert self._channel is not None
            limit = self._init_limit_s()
            try:
                self._init_error = await asyncio.wait_for(self._channel.wait_ready(), limit)
            except TimeoutError:
                self._init_error = _init_failure(
                    "Sandbox.Timedout", f"Init timed out after {limit:.2f} seconds"
                )
            except ChannelClosed:
                self._init_error = _init_failure(
                    "Runtime.ExitError", f"Runtime exited with error: {self._exit_text()}"
                )
        except Exception as error:  # a sandbox or launch failure is this environment's init error
            log.warning("starting an environment for %s failed: %s", self.image.function_arn, error)
            # An error with an AWS error type speaks to the function's owner (a missing bootstrap); any
            # other (the sandbox's: mounts, bubblewrap) names host paths, which only the log above keeps.
            error_type = getattr(error, "error_type", None)
            message = str(error) if error_type else ENVIRONMENT_FAILED
            self._init_error = _init_failure(error_type or "Runtime.Unknown", message)
        self._init_duration_ms = (time.monotonic() - started) * 1000
        if self._sandbox is not None:
            self._sandbox.end_cpu_boost()
        self._drain_output(FINAL_READ_BYTES)
        self._report_dropped()
        if self._init_error is not None:
            error_type = self._init_error.error_type or "Runtime.Unknown"
            outcome = "timeout" if error_type == "Sandbox.Timedout" else f"error\tError Type: {error_type}"
            self._emit(
                f"INIT_REPORT Init Duration: {self._init_duration_ms:.2f} ms\tPhase: init\tStatus: {outcome}"
            )
            self.lifecycle.move(Move.FAIL)
        else:
            self.lifecycle.move(Move.READY)
        self._log.flush()
        self._init_lines, self._capture = self._capture, None
        if self._initialization_type == PROVISIONED and self._init_error is None:
            # Initialised ahead of any invocation: its first REPORT has no Init Duration (as on AWS),
            # and its init output stays in the log stream only.
            self._init_duration_ms = None
            self._init_lines = Tail()

    async def _obtain_credentials(self) -> None:
        """The execution role's credentials for this environment (before its runtime starts, or before a
        spare is specialised: a spare never holds any)."""
        image = self.image
        credentials = await self._role_credentials.for_environment(image.function_arn, image.role)
        if credentials is None:
            return
        self._credentials = credentials
        lifetime = credentials.seconds_left() - image.timeout_s - EXPIRY_MARGIN_S
        self.retire_at = min(self.retire_at, time.monotonic() + lifetime)

    def function_environment(self) -> dict[str, str]:
        """The runtime's environment variables (``AWS_LAMBDA_RUNTIME_API`` is the sandbox's to set)."""
        image = self.image
        role = self._credentials
        env = standard_environment(
            runtime=image.runtime,
            handler=image.handler,
            function_name=image.function_name,
            runtime_api="127.0.0.1:9001",  # the sandbox sets the real address
            function_version=image.version,
            memory_size=image.memory_mb,
            region=image.region,
            log_stream=self._stream_name,
            initialization_type=self._initialization_type,
            credentials=None
            if role is None
            else (role.access_key_id, role.secret_access_key, role.session_token),
            user_environment=image.environment,
            interpreter_dir=str(image.interpreter.path.parent) if image.interpreter.path else None,
        )
        # The runtime's own search paths, unless the function sets its own (as on AWS, PYTHONPATH and
        # NODE_PATH are not reserved).
        env.update({k: v for k, v in language_paths(image.runtime).items() if k not in image.environment})
        env["PYTHONUNBUFFERED"] = "1"  # output reaches the log before the response does
        own_network = self._factory.isolated and image.network is not NetworkMode.HOST
        endpoint = "http://127.0.0.1:9001" if own_network and self._lambda_api else self._lambda_endpoint
        if endpoint and "AWS_ENDPOINT_URL_LAMBDA" not in image.environment:
            env["AWS_ENDPOINT_URL_LAMBDA"] = endpoint
        return env

    async def _create_sandbox(self) -> None:
        image = self.image
        launch = launch_command(
            image.runtime,
            image.interpreter,
            image.handler,
            code_dir=image.code_dir,
            layers_dir=image.layers_dir,
        )
        if launch.note:
            self._note = launch.note
            self._log.write(launch.note)
        env = self.function_environment()
        env.update(launch.env)
        spec = SandboxSpec(
            argv=list(launch.argv),
            env=env,
            mounts=self._mounts(),
            memory_mb=image.memory_mb,
            tmp_mb=image.ephemeral_mb,
            network=image.network,
            egress=self.egress,
            label=f"fn-{image.function_name}"[:48],
            cpu_boost=True,  # init runs at full speed; invocations get CPU in proportion to memory
        )
        loop = asyncio.get_running_loop()
        self._channel = self._new_channel()
        self._sandbox = await self._factory.create(spec)
        if self.egress != spec.egress and isinstance(self._sandbox, EgressControlled):
            await self._sandbox.set_egress(self.egress or ())  # changed while the sandbox was being made
        self._output_fd = self._sandbox.output
        os.set_blocking(self._output_fd, False)
        loop.add_reader(self._output_fd, self._drain_output)
        self._server = RuntimeApiServer(self._channel, self._forwarder())
        socket_ = self._sandbox.runtime_api_socket
        assert socket_ is not None
        self._tasks.append(loop.create_task(self._server.serve(socket_)))
        self._tasks.append(loop.create_task(self._watch_exit(self._sandbox, self._channel)))

    def _new_channel(self) -> RuntimeChannel:
        return RuntimeChannel()

    def _init_limit_s(self) -> float:
        return INIT_LIMIT_S

    async def _adopt(self, spare: Spare) -> None:
        """Take over a spare's sandbox, runtime and Runtime API, and make them this function's."""
        image = self.image
        if image.interpreter.note:
            self._note = image.interpreter.note
            self._log.write(image.interpreter.note)
        handover = spare.take()
        loop = asyncio.get_running_loop()
        self._sandbox, self._channel, self._server = handover.sandbox, handover.channel, handover.server
        # A spare answers nothing but the Runtime API until it knows whose it is.
        self._server.forward = self._forwarder()
        self._tasks.append(handover.serve_task)
        self._output_fd = handover.output_fd
        loop.add_reader(self._output_fd, self._drain_output)
        self._tasks.append(loop.create_task(self._watch_exit(self._sandbox, self._channel)))
        env = self.function_environment()
        env["AWS_LAMBDA_RUNTIME_API"] = self._sandbox.runtime_api_address or "127.0.0.1:9001"
        sandbox = self._sandbox
        if not isinstance(sandbox, SpecializableSandbox):
            raise SandboxError(f"sandbox {sandbox.id} cannot be specialized")
        await sandbox.specialize(image.code_dir, image.memory_mb, label=f"fn-{image.function_name}"[:48])
        answer = json.dumps({"env": env, "handler": image.handler}).encode()
        if not handover.specialization.answer(answer):
            raise SandboxError("the spare runtime stopped waiting for its function")

    def _forwarder(self) -> Forwarder | None:
        """The Lambda API bound to this environment's identity: the function, with its execution role."""
        if self._lambda_api is None:
            return None
        return partial(self._lambda_api, Caller(self.image.function_arn, self.image.role))

    def _mounts(self) -> list[Mount]:
        image = self.image
        mounts = [Mount(image.code_dir, "/var/task"), *mounts_for(image.runtime_dir, image.interpreter)]
        if image.layers_dir is not None:
            mounts.append(Mount(image.layers_dir, "/opt"))
        return mounts

    async def _watch_exit(self, sandbox: Sandbox, channel: RuntimeChannel) -> None:
        self._exit_status = await sandbox.wait()
        self._drain_output(FINAL_READ_BYTES)
        if self.lifecycle.state is EnvironmentState.READY:
            # Between invocations (a thread of the function called os._exit, the process was killed):
            # no invocation is lost, and none may land here; the pool replaces the environment.
            self._emit(
                f"lambdad: the runtime exited between invocations ({self._exit_text()}); "
                "the next invocation starts a new execution environment"
            )
            self._log.flush()
            log.info("environment %s of %s: runtime exited while idle", self.id, self.image.function_arn)
            self.lifecycle.move(Move.FAIL)
        channel.close(f"runtime exited: {self._exit_text()}")

    # --- invoke -----------------------------------------------------------------------------------

    async def invoke(
        self, invocation: Invocation, timeout_s: float | None = None, *, redeliverable: bool = False
    ) -> InvokeOutcome:
        """Run one invocation; never raises for the function's own failures.

        ``redeliverable``: raise RuntimeGone (the environment failed) if the runtime turns out to have
        exited before the invocation reached it, instead of answering Runtime.ExitError.
        """
        self._enter()
        return await self._run(invocation, timeout_s, None, redeliverable)

    def invoke_streaming(
        self,
        invocation: Invocation,
        timeout_s: float | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> InvokeStream:
        """Start one invocation whose response is passed on chunk by chunk as the function sends it.

        The environment stays BUSY until the function has finished (END/REPORT written), whether or not
        the caller reads the stream to its end; ``on_done`` then runs exactly once (the pool release).
        A buffered response arrives as one chunk. Raises (before anything runs) unless READY.
        """
        self._enter()
        stream = InvokeStream()

        async def run() -> None:
            outcome: InvokeOutcome | None = None
            try:
                outcome = await self._run(invocation, timeout_s, stream.put)
            except Exception:
                log.exception("streamed invocation %s failed", invocation.request_id)
                if self.lifecycle.can(Move.FAIL):
                    self.lifecycle.move(Move.FAIL)
            finally:
                stream.end(outcome)
                if on_done is not None:
                    on_done()

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.append(task)
        task.add_done_callback(self._forget_task)
        return stream

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    def _enter(self) -> None:
        if self._init_error is None:
            self.lifecycle.move(Move.INVOKE)  # IllegalMove unless READY: one invocation at a time
        # else: init failed; this invocation reports that failure and the environment is discarded.

    async def _run(
        self,
        invocation: Invocation,
        timeout_s: float | None,
        sink: Callable[[bytes], None] | None,
        redeliverable: bool = False,
    ) -> InvokeOutcome:
        """The invocation after ``_enter``; with a ``sink``, the response goes there as it arrives."""
        request_id = invocation.request_id
        timeout = timeout_s if timeout_s is not None else float(self.image.timeout_s)
        self._open_capture(request_id)
        first_invoke = self._init_duration_ms is not None
        init_duration = self._init_duration_ms
        self._init_duration_ms = None
        self._emit(reports.start_line(request_id, self.image.version))
        started = time.monotonic()
        status: str | None = None
        function_error = False
        error_type: str | None = None
        result: InvocationResult | None = None
        if self._init_error is not None:
            payload, function_error, status = self._init_error.payload, True, "error"
            error_type = self._init_error.error_type
        else:
            assert self._channel is not None
            try:
                result = await asyncio.wait_for(self._channel.invoke(invocation), timeout)
                function_error = result.kind is not ResultKind.SUCCESS
                error_type = result.error_type
                if result.stream is not None:
                    payload, error_type, status = await self._read_stream(
                        result.stream, started + timeout, sink
                    )
                    function_error = error_type is not None
                else:
                    payload = result.payload
                    if sink is not None and not function_error:
                        sink(payload)
            except TimeoutError:
                status = "timeout"
                function_error = True
                error_type = "Sandbox.Timedout"
                payload = reports.timeout_error(request_id, timeout)
                self._emit(reports.timeout_log_line(request_id, timeout))
            except ChannelClosed:
                await asyncio.sleep(0)  # let the exit watcher record the status
                if redeliverable and not self._channel.delivered(invocation):
                    self._emit(
                        f"lambdad: the runtime had exited ({self._exit_text()}) before invocation "
                        f"{request_id} reached it; it runs in a new execution environment"
                    )
                    self._log.flush()
                    self._close_capture(request_id)
                    self._settle("error")
                    raise RuntimeGone(request_id) from None
                status = "error"
                function_error = True
                error_type = "Runtime.ExitError"
                payload = reports.exit_error(request_id, self._exit_text())
                self._emit(reports.exit_message(request_id, self._exit_text()))
                self._emit("Runtime.ExitError")
        duration_ms = (time.monotonic() - started) * 1000
        self._final_read()
        self._report_dropped()
        memory_used = self._memory_used_mb()
        self._emit(reports.end_line(request_id))
        self._emit(
            reports.report_line(
                request_id,
                duration_ms,
                self.image.memory_mb,
                memory_used,
                init_duration if first_invoke and self._init_error is None else None,
                status,
            )
        )
        self._log.flush()
        tail = self._close_capture(request_id)
        self.last_used = time.monotonic()
        self._settle(status)
        return InvokeOutcome(
            request_id=request_id,
            payload=payload,
            function_error=function_error,
            log_text=tail.text() if tail is not None else "",
            duration_ms=duration_ms,
            billed_ms=reports.billed_ms(duration_ms),
            max_memory_used_mb=memory_used,
            init_duration_ms=init_duration if first_invoke else None,
            status=status,
            result=result,
            error_type=error_type if function_error else None,
        )

    def _final_read(self) -> None:
        """Read what the runtime wrote before it answered: it belongs to the invocation that ends."""
        self._drain_output(FINAL_READ_BYTES)

    def _open_capture(self, request_id: str) -> None:
        """Start the invocation's log tail (with init's output, on a first invocation)."""
        self._capture, self._init_lines = self._init_lines, Tail()

    def _close_capture(self, request_id: str) -> Tail | None:
        tail, self._capture = self._capture, None
        return tail

    def _settle(self, status: str | None) -> None:
        """After an invocation: ready for the next, or failed (a timeout or a crash ends it)."""
        if status is None and self.lifecycle.state is EnvironmentState.BUSY:
            self.lifecycle.move(Move.FINISH)
        elif self.lifecycle.can(Move.FAIL):
            self.lifecycle.move(Move.FAIL)

    async def _read_stream(
        self, stream: ResponseStream, deadline: float, sink: Callable[[bytes], None] | None
    ) -> tuple[bytes, str | None, str | None]:
        """Read a streamed response up to the deadline (TimeoutError after it): the body (or, after a
        mid-stream failure, the error document), the error type, and the REPORT status."""
        parts: list[bytes] = []
        size = 0
        while (
            chunk := await asyncio.wait_for(stream.next(), max(0.0, deadline - time.monotonic()))
        ) is not None:
            size += len(chunk)
            if size > MAX_STREAMED_RESPONSE:
                # AWS ends a streamed response that passes its limit; the function is stopped here.
                message = (
                    "Response payload size exceeded maximum allowed payload size "
                    f"({MAX_STREAMED_RESPONSE} bytes)."
                )
                body = json.dumps({"errorMessage": message, "errorType": OVERSIZED_RESPONSE_ERROR_TYPE})
                return body.encode(), OVERSIZED_RESPONSE_ERROR_TYPE, "error"
            if sink is not None:
                sink(chunk)
            else:
                parts.append(chunk)
        if stream.truncated:
            raise ChannelClosed("the runtime's streamed response ended early")
        if stream.error_type is not None:
            return stream.error_body or b"", stream.error_type, None
        return b"".join(parts), None, None

    # --- shutdown ---------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop everything this environment started (idempotent)."""
        if self.lifecycle.state is EnvironmentState.DEAD:
            return
        if self.lifecycle.can(Move.STOP):
            self.lifecycle.move(Move.STOP)
        # What the runtime wrote so far belongs in the log; what it writes while being torn down (a
        # runtime whose Runtime API vanished logs a failed `next`) does not.
        if self._output_fd is not None:
            self._drain_output(FINAL_READ_BYTES)
            self._report_dropped()
            asyncio.get_running_loop().remove_reader(self._output_fd)
            os.close(self._output_fd)
            self._output_fd = None
        if self._channel is not None:
            self._channel.close("the execution environment is shutting down")
        if self._server is not None:
            self._server.close()  # before destroy(), which closes the socket the server listens on
        if self._sandbox is not None:
            await self._sandbox.destroy()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._log.close()
        self.lifecycle.move(Move.DESTROYED)

    # --- output -----------------------------------------------------------------------------------

    def _drain_output(self, limit: int = READ_LIMIT) -> None:
        """Read what the runtime has written (a bounded chunk per call: the event loop calls again while
        there is more) and log it line by line, as far as the log's budget takes it."""
        if self._output_fd is None:
            return
        if self._log.over_budget(min(limit, READ_LIMIT)):
            # Short of a chunk's budget, the output is dropped in the kernel: a flood then costs lambdad a
            # splice per turn, not a copy and a split of every byte (measured: a victim's p99 under a 1 GB
            # flood). Short of a chunk, not of ``limit``: the final read of an invocation asks for more.
            discarded = discard_available(self._output_fd, max(limit, DISCARD_PIPE_BYTES))
            if discarded:
                self._dropped += discarded
                for line in self._lines.break_line():
                    self._emit(line)
                self._pause_output()
            return
        chunk = read_available(self._output_fd, limit)
        if not chunk:
            return
        admitted = self._log.admit(len(chunk))
        lines = self._lines.feed(chunk[:admitted])
        if admitted < len(chunk):
            self._dropped += len(chunk) - admitted
            lines += self._lines.break_line()
            self._pause_output()
        for line in lines:
            self._emit(line)

    def _pause_output(self) -> None:
        """Stop watching the output pipe for ``DISCARD_PAUSE_S``, with the pipe widened: a flood over
        budget then costs lambdad about a hundred wake-ups a second, however fast the function writes
        (measured: 1.65 s of lambdad's CPU per GB discarded 64 KB at a time)."""
        fd = self._output_fd
        if fd is None or self._output_paused:
            return
        if not self._pipe_widened:
            widen(fd)
            self._pipe_widened = True
        loop = asyncio.get_running_loop()
        loop.remove_reader(fd)
        self._output_paused = True

        def resume() -> None:
            self._output_paused = False
            if self._output_fd == fd:  # not closed by a shutdown meanwhile
                loop.add_reader(fd, self._drain_output)

        loop.call_later(DISCARD_PAUSE_S, resume)

    def _report_dropped(self) -> None:
        """Say once (per invocation, init or shutdown) how much output the log's budget dropped."""
        if self._dropped:
            self._emit(
                f"lambdad: {self._dropped} bytes of output were dropped: the function's log takes at most "
                f"{self._log.rate_bytes} bytes per second"
            )
            self._dropped = 0

    def _emit(self, line: str) -> None:
        self._log.write(line)
        if self._capture is not None:
            self._capture.add(line)

    def _memory_used_mb(self) -> int:
        if self._sandbox is None:
            return 0
        try:
            return max(1, round(self._sandbox.memory_peak_bytes() / MB))
        except Exception:
            return 0

    def _exit_text(self) -> str:
        if self._sandbox is not None and self._sandbox.oom_killed():
            return "signal: killed"
        return reports.describe_exit(self._exit_status) if self._exit_status is not None else "exit status 1"


ENVIRONMENT_FAILED = (
    "The execution environment could not be started on this server; its operator has the details."
)


def _init_failure(error_type: str, message: str) -> InvocationResult:
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    return InvocationResult(ResultKind.INIT_ERROR, body, error_type, "application/json")
