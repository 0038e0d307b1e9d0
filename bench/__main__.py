"""Run every benchmark and print each figure as a ratio to its baseline measured in the same run."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from bench import (
    async_events,
    authentication,
    before_after,
    cluster,
    cold_start,
    control_plane,
    event_sources,
    function_url,
    server_cpu,
    warm_invoke,
)
from bench.common import Progress, Row


def _control_plane(progress: Progress) -> list[Row]:
    progress("control plane: lambdad vs a bare Starlette endpoint...")
    rows = []
    for what, p50, p99, base50, base99 in control_plane.run():
        rows.append(Row(f"{what} p50", "bare Starlette", "ms", p50, base50))
        rows.append(Row(f"{what} p99", "bare Starlette", "ms", p99, base99))
    return rows


BENCHMARKS: list[tuple[str, Callable[[Progress], list[Row]]]] = [
    ("control plane", _control_plane),
    ("cold start", cold_start.run),
    ("warm invoke", warm_invoke.run),
    ("authentication", authentication.run),
    ("server CPU", server_cpu.run),
    ("function URL", function_url.run),
    ("Event queue", async_events.run),
    ("event sources", event_sources.run),
    ("cluster", cluster.run),
    ("single server before/after the cluster", before_after.run),
]


def _figure(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}" if value < 1 else f"{value:.2f}"


def _table(rows: list[Row], seconds: float) -> Table:
    table = Table(
        title="lambdad benchmarks: lambdad / a baseline measured in this run (lower is better unless noted)",
        caption=f"measured in {seconds:.0f} s",
    )
    for column in ("what", "unit", "lambdad", "vs", "baseline", "ratio", "target"):
        table.add_column(column, justify="left" if column in ("what", "vs") else "right")
    for row in rows:
        if row.note:
            table.add_row(row.what, "", "-", row.baseline, "-", row.note, "")
            continue
        ratio = row.ratio
        ratio_text = "-" if ratio is None else f"{ratio:.2f}x"
        if row.higher_is_better:
            ratio_text += " (higher is better)"
        target = ""
        if row.target is not None:
            met = "[green]met[/]" if row.met else "[red]missed[/]"
            target = f"{'>=' if row.higher_is_better else '<='} {row.target:.1f}x {met}"
        table.add_row(
            row.what, row.unit, _figure(row.value), row.baseline, _figure(row.base), ratio_text, target
        )
    return table


def main() -> None:
    # A pipe gets a wide table rather than rich's 80-column default.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    started = time.monotonic()
    rows: list[Row] = []
    with console.status("starting...") as status:
        for name, benchmark in BENCHMARKS:
            status.update(f"{name}...")
            try:
                rows += benchmark(status.update)
            except Exception as error:  # one broken benchmark still lets the others report
                console.print(f"[red]{name} failed:[/] {type(error).__name__}: {error}")
                rows.append(
                    Row(name, "", "", None, None, note=f"failed: {type(error).__name__}: {error}"[:120])
                )
    console.print(_table(rows, time.monotonic() - started))


if __name__ == "__main__":
    main()
