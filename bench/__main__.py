"""Run every benchmark and print each figure as a ratio to its baseline measured in the same run."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from bench import control_plane


def main() -> None:
    # A pipe gets a wide table rather than rich's 80-column default.
    console = Console() if sys.stdout.isatty() else Console(width=140)
    table = Table(title="lambdad benchmarks (ratios to a baseline measured in this run; lower is better)")
    for column in ("what", "p50 ms", "p99 ms", "baseline p50", "baseline p99", "p50 ratio", "p99 ratio"):
        table.add_column(column, justify="right" if column != "what" else "left")
    with console.status("control plane: lambdad vs a bare Starlette endpoint..."):
        rows = control_plane.run()
    for what, p50, p99, base50, base99 in rows:
        table.add_row(
            f"{what} (vs bare Starlette)",
            f"{p50:.2f}",
            f"{p99:.2f}",
            f"{base50:.2f}",
            f"{base99:.2f}",
            f"{p50 / base50:.2f}x",
            f"{p99 / base99:.2f}x",
        )
    console.print(table)


if __name__ == "__main__":
    main()
