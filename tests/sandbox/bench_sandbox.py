"""Sandbox start-up benchmark (a helper, not a test): python -m tests.sandbox.bench_sandbox [N].

Measures, for ``python3 -I -S -c pass`` and ``/bin/true``:
  * bare: subprocess spawn + exit, no sandbox;
  * create: ``factory.create()`` until it returns (the process is running);
  * cycle: create + process exit + ``destroy()``.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lambdad.sandbox import NetworkMode, SandboxFactory, create_factory
from tests.sandbox.support import PYTHON, make_code_dir, py_spec, read_all


def ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p90 = samples[int(len(samples) * 0.9) - 1]
    return f"median {statistics.median(samples) * 1000:6.2f} ms  p90 {p90 * 1000:6.2f} ms"


async def measure(factory: SandboxFactory, argv: list[str], network: NetworkMode, n: int, code: Path) -> None:
    create, cycle = [], []
    spec = py_spec("", code, argv=argv, network=network)
    for i in range(n + 3):
        start = time.perf_counter()
        sandbox = await factory.create(spec)
        created = time.perf_counter()
        status = await sandbox.wait()
        await sandbox.destroy()
        done = time.perf_counter()
        read_all(sandbox.output)
        import os

        os.close(sandbox.output)
        assert status == 0
        if i >= 3:  # warm-up
            create.append(created - start)
            cycle.append(done - start)
    label = f"{factory.name}/{network.value}"
    print(f"  {label:20} create {ms(create)} | cycle {ms(cycle)}")


def bare(argv: list[str], n: int) -> None:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(argv, check=True)
        samples.append(time.perf_counter() - start)
    print(f"  {'bare':20} spawn+exit {ms(samples)}")


async def main(n: int) -> None:
    code = make_code_dir(Path(tempfile.mkdtemp()) / "code")
    commands = {"python3 -I -S -c pass": [PYTHON, "-I", "-S", "-c", "pass"], "/bin/true": ["/bin/true"]}
    for title, argv in commands.items():
        print(title)
        bare(argv, n)
        factory = create_factory("namespaces")
        try:
            for network in (NetworkMode.NONE, NetworkMode.DEFAULT, NetworkMode.HOST):
                await measure(factory, argv, network, n, code)
        finally:
            await factory.close()
        process = create_factory("process", drop_privileges=False)
        await measure(process, argv, NetworkMode.HOST, n, code)
        await process.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
