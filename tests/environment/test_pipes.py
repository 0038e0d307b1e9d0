"""Reading and discarding a sandbox's output pipe."""

from __future__ import annotations

import asyncio
import os

from lambdad.environment.pipes import discard_available, read_available


def test_discarding_empties_the_pipe_up_to_the_limit_and_reports_the_end() -> None:
    async def scenario() -> None:
        read_end, write_end = os.pipe2(os.O_NONBLOCK)
        loop = asyncio.get_running_loop()
        loop.add_reader(read_end, lambda: None)
        try:
            os.write(write_end, b"x" * 50_000)
            assert discard_available(read_end, limit=20_000) == 20_000
            assert discard_available(read_end) == 30_000
            assert discard_available(read_end) == 0  # empty, writer still there
            os.write(write_end, b"after\n")
            assert read_available(read_end) == b"after\n"  # nothing of what was discarded
            os.close(write_end)
            assert discard_available(read_end) is None  # end of file: the reader is removed
            assert not loop.remove_reader(read_end)
        finally:
            os.close(read_end)

    asyncio.run(scenario())


def test_reading_returns_what_is_there_then_none_at_the_end() -> None:
    async def scenario() -> None:
        read_end, write_end = os.pipe2(os.O_NONBLOCK)
        asyncio.get_running_loop().add_reader(read_end, lambda: None)
        try:
            assert read_available(read_end) == b""  # nothing yet
            os.write(write_end, b"last words\n")
            os.close(write_end)
            assert read_available(read_end, limit=4) == b"last"
            assert read_available(read_end) == b" words\n"  # the end came with data: the data
            assert read_available(read_end) is None
        finally:
            os.close(read_end)

    asyncio.run(scenario())
