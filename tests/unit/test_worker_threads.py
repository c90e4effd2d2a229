"""How many threads (and so database connections) a worker uses."""

import threading
import time

import pytest

from container_manager.worker import Worker
from tests.unit.factories import make_host, make_job


def _threads_while_running(concurrency):
    worker = Worker(worker_id=f"t{concurrency}", concurrency=concurrency, poll_interval=0.05)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:
        time.sleep(0.5)
        names = [t.name for t in threading.enumerate()]
    finally:
        worker.request_stop()
        runner.join(10)
    return (sum(n.startswith(f"cm-worker-t{concurrency}-") for n in names),
            sum(n == f"cm-heartbeat-t{concurrency}" for n in names))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("concurrency,jobs,driving", [(1, 1, 0), (3, 1, 1), (3, 5, 3)])
def test_a_worker_has_one_thread_per_job_slot_above_1_plus_its_heartbeat(
    monkeypatch, concurrency, jobs, driving
):
    """Each thread has its own Django connection: at most concurrency + 2 in all, 2 with
    concurrency 1. Driving threads start with the work (one per job in hand, at most
    concurrency), never ahead of it (issue 10). The threads of an in-memory test database
    are those of any other database here (the worker would otherwise keep to one thread)."""
    from container_manager import worker as worker_module

    monkeypatch.setattr(worker_module, "shares_one_connection", lambda: False)
    host = make_host(f"threads-{concurrency}-{jobs}", executor_config={"run_seconds": 60})
    for _ in range(jobs):
        make_job(host)
    assert _threads_while_running(concurrency) == (driving, 1)
