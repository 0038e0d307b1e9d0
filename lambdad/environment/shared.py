"""An execution environment that runs several invocations at once (Lambda Managed Instances).

A function with ``CapacityProviderConfig`` has ``PerExecutionEnvironmentMaxConcurrency`` N: its runtime
gets ``AWS_LAMBDA_MAX_CONCURRENCY=N`` and starts N workers, and the environment takes up to N invocations
at once through a ``SharedRuntimeChannel``. What differs from an ordinary environment, as AWS documents
Managed Instances:

- busy is a count: the environment is BUSY while any invocation is in flight, READY when none is;
- each invocation has its own START/END/REPORT lines and its own log tail. Each worker writes to an
  output stream of its own (``workers.WorkerOutput``), whose lines go to the invocation that worker runs.
  What still comes through the shared pipe (the runtime's main process, a runtime that ignores the
  socket) goes to the invocation whose request id the line carries, or to the one invocation in flight;
  a line neither tells stays in the log stream only;
- a timeout fails that invocation only: the environment and its other invocations go on (AWS does not
  stop the function's code either); a runtime that exits fails them all and ends the environment;
- init may take up to 130 s or the function's timeout, whichever is longer.

Ordinary functions never take this class (``ExecutionEnvironment`` is theirs, unchanged).
"""

from __future__ import annotations

import re

from lambdad.environment.credentials import RoleCredentials
from lambdad.environment.environment import MAX_AGE_S, ExecutionEnvironment, LambdaApi
from lambdad.environment.image import FunctionImage
from lambdad.environment.lifecycle import EnvironmentState, Move
from lambdad.environment.output import Tail
from lambdad.environment.workers import SANDBOX_DIR, SOCKET_VARIABLE, WorkerOutput, tcp_ports_of
from lambdad.observability.logs import LogStore
from lambdad.runtime_api import RuntimeChannel, SharedRuntimeChannel
from lambdad.sandbox import Mount, SandboxFactory

#: A request id (a UUID) in a line of output: the line is that invocation's.
_REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MANAGED_INIT_LIMIT_S = 130.0  # AWS's init limit for Managed Instances (or the function's timeout if longer)
MAX_CONCURRENCY_VARIABLE = "AWS_LAMBDA_MAX_CONCURRENCY"


class SharedExecutionEnvironment(ExecutionEnvironment):
    """One environment serving up to ``image.max_concurrency`` invocations at once."""

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
        super().__init__(
            image,
            factory,
            logs,
            initialization_type=initialization_type,
            lambda_api=lambda_api,
            lambda_endpoint=lambda_endpoint,
            credentials=credentials,
            max_age_s=max_age_s,
        )
        self.max_concurrency = self.image.max_concurrency
        self.in_flight = 0  # invocations entered and not yet settled
        self._captures: dict[str, Tail] = {}  # each in-flight invocation's log tail, by request id
        self._workers: WorkerOutput | None = None  # the workers' own output streams
        self._ports: dict[int, int] = {}  # worker pid -> its Runtime API connection's port

    @property
    def reusable(self) -> bool:
        """Whether it can take another invocation (room for one is the pool's count to keep)."""
        busy_or_not = self.lifecycle.state in (EnvironmentState.READY, EnvironmentState.BUSY)
        return busy_or_not and not self.retired

    def function_environment(self) -> dict[str, str]:
        env = super().function_environment()
        env[MAX_CONCURRENCY_VARIABLE] = str(self.max_concurrency)
        if self._workers is not None:
            env[SOCKET_VARIABLE] = self._workers.sandbox_path
        return env

    async def _create_sandbox(self) -> None:
        self._workers = WorkerOutput(self._worker_line, self._log.admit)
        await super()._create_sandbox()

    def _mounts(self) -> list[Mount]:
        mounts = super()._mounts()
        if self._workers is not None:  # writable only by lambdad (the directory is root's, 0755)
            mounts.append(Mount(self._workers.host_dir, SANDBOX_DIR, read_only=False))
        return mounts

    async def shutdown(self) -> None:
        await super().shutdown()
        if self._workers is not None:
            self._workers.close()

    def _final_read(self) -> None:
        super()._final_read()
        if self._workers is not None:
            self._workers.drain()
            self._dropped += self._workers.dropped
            self._workers.dropped = 0

    def _worker_line(self, pid: int, line: str) -> None:
        """A line a worker wrote: the invocation it runs has it, else it is routed as a shared line."""
        # Before any invocation (init) no lookup: a worker's init output needs none, and costs none.
        request_id = self._request_of(pid) if self._captures else None
        tail = self._captures.get(request_id) if request_id is not None else None
        if tail is None:
            self._emit(line)
            return
        self._log.write(line)
        tail.add(line)

    def _request_of(self, pid: int) -> str | None:
        """The request id the worker ``pid`` runs (or ran last), through its Runtime API connection."""
        server = self._server
        if server is None:
            return None
        port = self._ports.get(pid)
        if port is not None and (request_id := server.last_request_of(port)) is not None:
            return request_id
        for port in tcp_ports_of(pid):
            if (request_id := server.last_request_of(port)) is not None:
                self._ports[pid] = port
                return request_id
        return None

    def _new_channel(self) -> RuntimeChannel:
        return SharedRuntimeChannel(self.max_concurrency)

    def _init_limit_s(self) -> float:
        return max(MANAGED_INIT_LIMIT_S, float(self.image.timeout_s))

    def _enter(self) -> None:
        if self._init_error is not None:
            return  # this invocation reports the init failure; the environment is discarded
        if self.in_flight == 0 or self.lifecycle.state is not EnvironmentState.BUSY:
            self.lifecycle.move(Move.INVOKE)  # IllegalMove unless READY (a failed one takes no more)
        self.in_flight += 1

    def _open_capture(self, request_id: str) -> None:
        self._captures[request_id], self._init_lines = self._init_lines, Tail()

    def _close_capture(self, request_id: str) -> Tail | None:
        return self._captures.pop(request_id, None)

    def _settle(self, status: str | None) -> None:
        if self._init_error is None:
            self.in_flight -= 1
        if status == "error":  # the runtime exited (or init failed): no invocation can run here any more
            if self.lifecycle.can(Move.FAIL):
                self.lifecycle.move(Move.FAIL)
        elif self.in_flight == 0 and self.lifecycle.state is EnvironmentState.BUSY:
            self.lifecycle.move(Move.FINISH)

    def _emit(self, line: str) -> None:
        self._log.write(line)
        if self._capture is not None:  # init
            self._capture.add(line)
            return
        captures = self._captures
        for request_id, tail in captures.items():
            if request_id in line:
                tail.add(line)
                return
        if len(captures) == 1 and _REQUEST_ID.search(line) is None:  # not another's late line
            next(iter(captures.values())).add(line)
