"""A real runtime client (awslambdaric, no-op handler) driving next+response round trips on one connection."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lambdad.runtime_api import Invocation, RuntimeApiServer, RuntimeChannel
from lambdad.runtimes import find_interpreter, launch_command, standard_environment
from tests.runtimes.harness import listening_socket, runtime_dir

ROUNDS = 500


def test_awslambdaric_round_trips_are_fast_and_reuse_one_connection(tmp_path: Path) -> None:
    (tmp_path / "noop.py").write_text("def handler(event, context):\n    return None\n")
    interpreter = find_interpreter("python3.11")
    rdir = runtime_dir("python3.11", interpreter)

    async def scenario() -> tuple[float, float, int]:
        channel = RuntimeChannel()
        server = RuntimeApiServer(channel)
        sock = listening_socket()
        serving = asyncio.create_task(server.serve(sock))
        paths = {"task_root": str(tmp_path), "runtime_dir": str(rdir)}
        command = launch_command("python3.11", interpreter, "noop.handler", **paths)
        env = standard_environment(
            runtime="python3.11",
            handler="noop.handler",
            function_name="noop",
            runtime_api=f"127.0.0.1:{sock.getsockname()[1]}",
            **paths,
        )
        proc = await asyncio.create_subprocess_exec(*command.argv, env={**env, **command.env}, cwd=tmp_path)
        try:
            assert await asyncio.wait_for(channel.wait_ready(), 30) is None
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(ROUNDS):
                result = await channel.invoke(
                    Invocation(f"r{i}", b"{}", int(time.time() * 1000) + 9000, "arn")
                )
                assert result.payload == b"null"
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            return wall, cpu, len(server._connections)
        finally:
            proc.kill()
            await proc.wait()
            channel.close()
            server.close()
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
            sock.close()

    wall, cpu, connections = asyncio.run(asyncio.wait_for(scenario(), 120))
    print(f"\n{ROUNDS / wall:.0f} round trips/s; host CPU {cpu / ROUNDS * 1e6:.0f} us per round trip")
    assert connections == 1, "awslambdaric keeps one connection alive"
    assert ROUNDS / wall > 200, "far slower than the ~2500/s measured on the reference machine"
