"""The procrastinate side of benchmarks/queue_vs_procrastinate.py: a no-op task.

The database comes from ``BENCH_PROCRASTINATE_DSN``; ``BENCH_PROCRASTINATE_SYNC=1``
makes the task a plain function (run in a thread) instead of a coroutine.
"""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_PROCRASTINATE_DSN", "")))

if os.environ.get("BENCH_PROCRASTINATE_SYNC") == "1":

    @app.task(name="noop")
    def noop() -> None:
        return None

else:

    @app.task(name="noop")
    async def noop() -> None:
        return None
